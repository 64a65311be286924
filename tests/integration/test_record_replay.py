"""A diagnosis kept as a record and replayed: the real ``openai`` client against the replay server.

The ThinkFL engine diagnoses the synthetic incident with a scripted model (``WalkPolicy``); its
record goes through the status encoding and back, and is replayed against a fresh server playing
the same model. With the same model and the recorded evidence, the replay must show the model the
same conversations and reach the same answer, without any store behind the tools.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from tests.fakes.openai_replay import ReplayServer
from tests.fakes.thinkfl_policy import WalkPolicy, call
from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.models import Diagnosis, Incident
from thinkfl_operator.demo.synthetic import generate
from thinkfl_operator.engines.diagnose import make_engine
from thinkfl_operator.engines.thinkfl.engine import NoAnswer
from thinkfl_operator.feedback.record import build_record, decode_record, encode_record
from thinkfl_operator.feedback.replay import NOT_RECORDED, replay
from thinkfl_operator.telemetry.memory import MemoryStore


def configured(base_url: str, **llm: Any) -> Settings:
    """Default settings with the LLM at ``base_url``, two traces, fast retries."""
    settings = Settings()
    update = {"base_url": base_url, "retries": 1, "backoff_s": 0.01, "request_timeout_s": 2.0,
              "deadline_s": 10.0, "max_traces": 2, **llm}
    return settings.model_copy(update={"llm": settings.llm.model_copy(update=update)})


@cache
def synthetic() -> tuple[MemoryStore, Incident]:
    incident = generate(fault="network_delay", service="recommendationservice")
    return incident.store(), Incident(time_s=incident.time_s)


def diagnosed(engine: str, extra_services: int = 2) -> tuple[Diagnosis, dict[str, Any], int]:
    """The synthetic incident diagnosed by ``engine``, its record through the status text, and
    how many model replies it took (the model names ``extra_services`` services besides the
    deepest span's)."""
    store, incident = synthetic()
    with ReplayServer(when_exhausted=WalkPolicy(extra_services)) as server:
        diagnosis = make_engine(engine, configured(server.base_url)).diagnose(store, incident)
        replies = server.calls
    return diagnosis, decode_record(encode_record(build_record(diagnosis, incident))), replies


def services(diagnosis: Diagnosis) -> list[str]:
    return [cause.service for cause in diagnosis.root_causes]


def test_a_replayed_thinkfl_record_reaches_the_same_answer_the_same_way() -> None:
    original, record, replies = diagnosed("thinkfl")
    assert original.engine == "thinkfl" and len(record["conversations"]) == 2

    with ReplayServer(when_exhausted=WalkPolicy()) as server:
        replayed = replay(record, configured(server.base_url))
        requests = server.requests

    assert services(replayed) == services(original)
    # The pods the model named (the engine's deterministic padding may add more; a replay's not).
    assert replayed.top is not None and original.top is not None
    assert replayed.top.pod == original.top.pod != ""
    assert replayed.transcript == original.transcript
    assert len(requests) == replies == replayed.usage.llm_calls
    assert replayed.traces == original.traces
    searches = [s for s in replayed.steps if s.tool != "print_results"]
    assert searches and all(s.summary == "answered from the record" for s in searches)


def test_a_deterministic_record_opens_the_models_conversation_with_the_recorded_one() -> None:
    original, record, _ = diagnosed("heuristic")
    with ReplayServer(when_exhausted=WalkPolicy()) as server:
        replayed = replay(record, configured(server.base_url))
        first = server.requests[0]["messages"]

    assert first == record["conversations"][0][:2]
    assert replayed.top is not None
    assert set(services(replayed)) <= set(original.topology.services)
    # The model's first call, the search of the root span, is answered from the deterministic walk.
    assert replayed.steps[0].summary == "answered from the record"


def test_an_unrecorded_call_is_answered_honestly() -> None:
    _, record, _ = diagnosed("thinkfl")
    record["conversations"] = record["conversations"][:1]
    answer = call("print_results", {"root_causes": [{"service": "frontend"}]}, "<tool_call>")
    with ReplayServer([call("search_traces", {"parent_span_id": "0000000000000bad"}), answer]) as server:
        replayed = replay(record, configured(server.base_url))

    tool_turns = [m["content"] for m in replayed.transcript if m["role"] == "tool"]
    assert tool_turns == [f"[]\n(the child spans of 0000000000000bad are {NOT_RECORDED})"]
    assert services(replayed) == ["frontend"]


def test_a_model_without_an_answer_on_the_record_raises_no_answer() -> None:
    _, record, _ = diagnosed("thinkfl")
    with ReplayServer(["I cannot tell."], when_exhausted="repeat_last") as server, \
            pytest.raises(NoAnswer, match="no usable answer on the replayed record"):
        replay(record, configured(server.base_url, think_steps=1, rethink_steps=0, final_steps=1))


def test_the_recorded_answer_is_compared_like_for_like_with_the_replay() -> None:
    """The model names two services; production pads its answer with the deterministic order
    to three. Graded on that padding, the recorded answer would rank the padded cause 3rd; a
    replay is never padded, so the recorded rank it is compared with is the model's own: both
    miss it."""
    from thinkfl_operator.feedback.grading import grade_answer
    from thinkfl_operator.feedback.label import Feedback
    from thinkfl_operator.feedback.report import replayed_ranks
    from thinkfl_operator.feedback.rows import check_row, make_row

    original, record, _ = diagnosed("thinkfl", extra_services=0)
    assert [c.padded for c in original.root_causes] == [False, False, True]
    assert [a["padded"] for a in record["answer"]] == [False, False, True]
    label = Feedback(service=original.root_causes[2].service)  # the padded one was the cause
    row = make_row("default/padded", record, label, grade_answer(original.root_causes, label))
    assert row["grade"]["rank"] == 3  # as production served it
    with ReplayServer(when_exhausted=WalkPolicy(extra_services=0)) as server:
        [result] = replayed_ranks([check_row(row)], configured(server.base_url))
    assert (result.served, result.recorded, result.replayed, result.padding) == (3, None, None, 1)
