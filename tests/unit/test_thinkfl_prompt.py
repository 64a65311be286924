"""The ThinkFL prompt is the training text byte for byte, and it never varies between incidents."""

from __future__ import annotations

import importlib
import json
import re

import pytest

from tests.unit.seed import seed_conversation
from thinkfl_operator.core.models import Span
from thinkfl_operator.engines.thinkfl import prompt
from thinkfl_operator.engines.thinkfl.prompt import (
    CALL_FORMAT,
    FINAL_ONLY,
    FINAL_PROMPT,
    REPEATED_CALL,
    RETHINK_PROMPT,
    SYSTEM_PROMPT,
    TOOL_NAMES,
    UNKNOWN_TOOL,
    UNPARSABLE_REPLY,
    USER_PREFIX,
    first_user_message,
)


def _seed_root(**changes: object) -> Span:
    """The root span of the seed's first user message."""
    fields: dict[str, object] = {
        "trace_id": "f25cf75421090eef9c6c14270f1eb385",
        "span_id": "a260c8c867cf4b1c",
        "parent_span": "",
        "cmdb_id": "frontend-2",
        "service": "frontend",
        "operation_name": "hipstershop.Frontend/Recv.",
        "timestamp": 1647758897785,
        "duration": 17244804,
        "status_code": "0",
        "type": "http",
    }
    fields.update(changes)
    return Span(**fields)  # type: ignore[arg-type]


@pytest.mark.shared_data
def test_system_prompt_is_the_seed_system_message_exactly() -> None:
    system = seed_conversation()[0]
    assert system["role"] == "system"
    assert SYSTEM_PROMPT == system["content"]


@pytest.mark.shared_data
def test_user_prefix_is_the_seed_first_user_sentences() -> None:
    user = seed_conversation()[1]
    assert user["role"] == "user"
    assert user["content"].startswith(USER_PREFIX)
    assert USER_PREFIX.count("\n") == 2 and USER_PREFIX.endswith("root cause.\n")


@pytest.mark.shared_data
def test_first_user_message_of_the_seed_root_reads_like_the_seed() -> None:
    seed_lines = seed_conversation()[1]["content"].split("\n")
    message = first_user_message(_seed_root(), index=5159784)
    lines = message.split("\n")
    assert lines[:2] == seed_lines[:2]
    assert lines[2].split() == seed_lines[2].split()  # header: same columns, same order
    assert lines[3].split() == seed_lines[3].split()  # row: index then values, NaN parent
    assert len(lines) == 4


def test_first_user_message_has_a_pandas_layout_table() -> None:
    header, row = first_user_message(_seed_root()).split("\n")[2:]
    assert header.split() == ["timestamp", "cmdb_id", "span_id", "trace_id", "duration", "type",
                              "status_code", "operation_name", "parent_span"]
    assert re.match(r"^0\s+1647758897785\s+frontend-2\s+a260c8c867cf4b1c\s", row)
    assert row.rstrip().endswith("NaN")
    assert len(header) == len(row)  # right-aligned columns end at the same place


def test_prompt_constants_do_not_change_between_calls() -> None:
    before = (SYSTEM_PROMPT, USER_PREFIX)
    first = first_user_message(_seed_root())
    other = first_user_message(_seed_root(span_id="ffffffffffffffff", timestamp=1), index=3)
    assert first == first_user_message(_seed_root())
    assert first.startswith(USER_PREFIX) and other.startswith(USER_PREFIX)
    assert (prompt.SYSTEM_PROMPT, prompt.USER_PREFIX) == before
    reloaded = importlib.reload(prompt)
    assert (reloaded.SYSTEM_PROMPT, reloaded.USER_PREFIX) == before


def test_system_prompt_names_the_three_tools_and_ends_with_the_call_format() -> None:
    assert SYSTEM_PROMPT.startswith("You are a software operations engineer.")
    assert SYSTEM_PROMPT.endswith(CALL_FORMAT)
    tools = json.loads(SYSTEM_PROMPT.split("\n\n")[2])
    assert tuple(t["function"]["name"] for t in tools) == TOOL_NAMES


def test_stage_prompts_name_the_tools_each_stage_allows() -> None:
    assert "inspect deeper into the trace tree" in RETHINK_PROMPT
    assert "search_traces" in RETHINK_PROMPT and "search_fluctuating_metrics" in RETHINK_PROMPT
    assert "rethink the above" in FINAL_PROMPT and "print_results" in FINAL_PROMPT
    assert "search_" not in FINAL_PROMPT and "search_" not in FINAL_ONLY
    assert UNPARSABLE_REPLY.endswith(CALL_FORMAT)
    assert "already" in REPEATED_CALL
    note = UNKNOWN_TOOL.format(name="kill_pod", allowed="print_results")
    assert "kill_pod" in note and "print_results" in note
