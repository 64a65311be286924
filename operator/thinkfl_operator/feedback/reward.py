"""The GRPO reward of one ThinkFL completion: its answer graded against an exported row's label.

Pure (no torch), for ``examples/openrlhf/reward_func.py``. The answer is the last
``print_results`` call of the completion naming a cause, read with the production parser (any
reply form the model uses); a pod without its service counts for the service its name says
(the reward has no topology). Candidates naming the same service (or node) again are merged,
as production ranking merges them, so repeating one name cannot earn the format factor. The
score is the multi-factor grader's, in [0, 1]; a completion without an answer scores 0.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from thinkfl_operator.core.models import PRINT_RESULTS, Candidate, RootCause
from thinkfl_operator.engines.thinkfl.parser import parse_reply
from thinkfl_operator.evaluation.grader import grade
from thinkfl_operator.feedback.legacy import candidates_of
from thinkfl_operator.telemetry.naming import service_of_pod

LABEL_KEYS = ("service", "pod", "node")
#: Characters of the prompt's end looked for when the query does not start with the prompt.
_TAIL = 200


def completion_of(query: str, prompt: str) -> str:
    """The model's part of ``query`` (OpenRLHF's prompt + response text), so the tool list in
    the system prompt is never read as an answer."""
    if query.startswith(prompt):
        return query[len(prompt):]
    tail = prompt[-_TAIL:]
    found = query.rfind(tail) if tail else -1
    return query[found + len(tail):] if found >= 0 else query


def answer_of(completion: str) -> list[RootCause]:
    """The last ``print_results`` naming a cause, ranked as written (see the module docstring)."""
    calls = [call for call in parse_reply(completion).calls if call.name == PRINT_RESULTS]
    for call in reversed(calls):
        found = candidates_of(call.arguments)
        if found:
            return _ranked(found)
    return []


def label_names(label: str) -> dict[str, str]:
    """The label's service/pod/node (``ValueError`` when it is not a row's JSON label)."""
    value = json.loads(label)
    if not isinstance(value, dict) or not any(isinstance(value.get(k), str) and value[k]
                                              for k in LABEL_KEYS):
        raise ValueError(f"a ThinkFL label is a JSON object naming a service, pod or node: {label!r}")
    return {k: str(value.get(k) or "") for k in LABEL_KEYS}


def reward(completion: str, label: str) -> float:
    """The grade of the completion's answer against ``label`` (a row's ``label``), in [0, 1]."""
    return grade(answer_of(completion), **label_names(label)).score


def rewards(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[str]) -> list[float]:
    """``reward`` for each (query, prompt, label) of an OpenRLHF batch."""
    return [reward(completion_of(q, p), label) for q, p, label in zip(queries, prompts, labels, strict=True)]


def _ranked(candidates: list[Candidate]) -> list[RootCause]:
    """One entry per service (or node), in order; a repeat fills in the pod or node the first
    mention left out, as ``ranking.rank`` does."""
    merged: dict[str, Candidate] = {}
    for cand in candidates:
        service = cand.service or (service_of_pod(cand.pod) if cand.pod else "")
        key = service or f"node:{cand.node}"
        old = merged.get(key)
        merged[key] = Candidate(node=(old.node if old else "") or cand.node, service=service,
                                pod=(old.pod if old else "") or cand.pod,
                                reason=old.reason if old else cand.reason)
    return [RootCause(rank=i, node=c.node, service=c.service, pod=c.pod, reason=c.reason, score=0)
            for i, c in enumerate(merged.values(), 1)]
