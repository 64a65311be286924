"""The GRPO reward for OpenRLHF (``examples/openrlhf/reward_func.py``), without torch: a
completion's last answer graded against an exported row's label by the multi-factor grader."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.fakes.thinkfl_policy import call
from tests.modules import from_file
from tests.unit.export_cases import confirmed_rows
from thinkfl_operator.engines.thinkfl import prompt
from thinkfl_operator.feedback.reward import answer_of, completion_of, reward

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "openrlhf" / "reward_func.py"
LABEL = json.dumps({"service": "cartservice", "pod": "cartservice-2", "node": "node-6"})


def answer(*causes: dict[str, str]) -> str:
    return call("print_results", {"root_causes": list(causes)}, "<tool_call>")


def example() -> ModuleType:
    """The example loaded as OpenRLHF loads it: from its path."""
    return from_file(EXAMPLE, "reward_func")


@pytest.mark.parametrize(("completion", "expected"), [
    # 0.1 format + 0.4 service + 0.3 pod + 0.2 node, each by 1/rank
    (answer({"pod": "cartservice-2", "node": "node-6"}, {"service": "frontend"},
            {"service": "adservice"}), 1.0),
    (answer({"service": "frontend"}, {"service": "cartservice", "pod": "cartservice-2"},
            {"node": "node-6"}), 0.1 + 0.4 / 2 + 0.3 / 2 + 0.2 / 3),
    (answer({"service": "frontend"}, {"service": "adservice"}, {"service": "emailservice"}), 0.1),
    ("I think it is the cart.", 0.0),
    (call("search_traces", {"parent_span_id": "ab"}), 0.0),  # a call, not an answer
])
def test_the_reward_is_the_multi_factor_grade(completion: str, expected: float) -> None:
    assert reward(completion, LABEL) == pytest.approx(expected, abs=1e-4)


def test_the_last_answer_counts_in_any_reply_form() -> None:
    first = answer({"service": "frontend"}, {"service": "adservice"}, {"service": "emailservice"})
    last = answer({"service": "cartservice"}, {"service": "frontend"}, {"service": "adservice"})
    assert [c.service for c in answer_of(first + "\nOn second thought:\n" + last)] == \
        ["cartservice", "frontend", "adservice"]
    older = ("Action: print_results\nAction Input: {'root_causes': [{'service': 'cartservice'}, "
             "{'service': 'frontend'}, {'service': 'adservice'}]}")  # an older prompt's form
    assert reward(older, '{"service": "cartservice"}') == 1.0


def test_repeating_a_name_does_not_make_three_candidates() -> None:
    same = answer({"service": "cartservice"}, {"pod": "cartservice-2"}, {"service": "cartservice"})
    assert [(c.service, c.pod) for c in answer_of(same)] == [("cartservice", "cartservice-2")]
    assert reward(same, '{"service": "cartservice"}') == pytest.approx(0.4 / 0.5)  # no format credit


def test_the_prompts_tool_list_is_never_read_as_the_answer() -> None:
    prompt_text = f"<|system|>{prompt.SYSTEM_PROMPT}<|user|>root span<|assistant|>"
    completion = answer({"service": "cartservice"}, {"service": "frontend"}, {"service": "adservice"})
    assert completion_of(prompt_text + completion, prompt_text) == completion
    # Decoding may not give the prompt back byte for byte (a BOS token before it): its end is found.
    assert completion_of("<s>" + prompt_text + completion, prompt_text) == completion


def test_a_label_that_names_nothing_is_an_error() -> None:
    for label in ("{}", '"cartservice"', '{"service": ""}'):
        with pytest.raises(ValueError, match="a ThinkFL label is a JSON object naming"):
            reward(answer({"service": "cartservice"}), label)


def test_the_example_scores_exported_rows_without_torch() -> None:
    module = example()
    assert not hasattr(module, "torch")  # imported only inside reward_func, where OpenRLHF runs
    rows = confirmed_rows()
    prompts = ["<|prompt|>" + row["input"][1]["content"] for row in rows]
    labels = [row["label"] for row in rows]
    first = json.loads(labels[0])
    perfect = answer({"pod": first["pod"], "node": first["node"]}, {"service": "frontend"},
                     {"service": "adservice"})
    scores = module.rewards([p + perfect for p in prompts], prompts, labels)
    assert scores[0] == 1.0 and 0.0 <= scores[1] < 1.0
    assert module.RETURNS in ("dict", "tensor")
