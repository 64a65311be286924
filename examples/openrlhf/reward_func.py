"""OpenRLHF custom reward for GRPO on ThinkFL records written by ``thinkfl export``.

Give this file's path to OpenRLHF as the reward (``--reward.remote_url`` in current OpenRLHF,
``--remote_rm_url`` before its dotted flags); see README.md beside it. OpenRLHF loads the
function ``reward_func(queries, prompts, labels)``: ``queries`` are prompt + completion texts,
``prompts`` the chat-templated prompts (a row's ``input``), ``labels`` the rows' ``label``
strings. Each completion's last ``print_results`` call is read with the operator's own reply
parser and graded against the label by its multi-factor grader
(``thinkfl_operator.feedback.reward``), so training rewards what production measures.

Needs ``thinkfl-operator`` installed in the training environment (``pip install`` this
repository). torch is imported only when OpenRLHF calls ``reward_func``: ``rewards`` is pure.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from thinkfl_operator.feedback.reward import rewards

#: ``tensor``: return one tensor, as OpenRLHF did until May 2025 (v0.8.3 and before, with
#: ``--remote_rm_url``); otherwise the ``{"rewards", "scores", "extra_logs"}`` dict it reads now.
RETURNS = os.environ.get("THINKFL_REWARD_RETURNS", "dict")

__all__ = ["reward_func", "rewards"]


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[str],
                **_: Any) -> Any:
    """The grades of a batch, in [0, 1], as OpenRLHF expects them (torch tensors)."""
    import torch  # only where OpenRLHF runs this

    values = torch.tensor(rewards(queries, prompts, labels), dtype=torch.float32)
    if RETURNS == "tensor":
        return values
    return {"rewards": values, "scores": values, "extra_logs": {"thinkfl_grade": values}}
