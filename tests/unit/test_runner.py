"""The operator's use case without kopf: which incidents need a diagnosis, and what each try of
one writes (status, Events, retry) for every way it can end."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.fakes.openai_replay import Fault, ReplayServer
from tests.fakes.thinkfl_policy import WalkPolicy
from tests.fakes.trace_api import Fault as TraceFault
from tests.fakes.trace_api import TraceApiServer
from thinkfl_operator.config.settings import LLMSettings, OperatorSettings, Settings, TracesSettings
from thinkfl_operator.core.errors import NoEvidence
from thinkfl_operator.core.models import Incident
from thinkfl_operator.demo.synthetic import generate
from thinkfl_operator.feedback.record import decode_record
from thinkfl_operator.incident.spec import diagnosis_digest
from thinkfl_operator.kube import live_stores, runner
from thinkfl_operator.telemetry.http import BackendUnavailable, NotFound
from thinkfl_operator.telemetry.live import open_live
from thinkfl_operator.telemetry.store import Store

INCIDENT = generate(fault="network_delay", service="recommendationservice")
T = "2026-11-01T10:40:00Z"
SPEC = {"service": "frontend", "time": T}


def body(spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None,
         annotations: dict[str, str] | None = None, generation: int = 1) -> dict[str, Any]:
    return {"metadata": {"name": "inc", "namespace": "default", "uid": "u-1",
                         "generation": generation, "creationTimestamp": T,
                         "annotations": annotations or {}},
            "spec": spec if spec is not None else dict(SPEC), "status": status or {}}


def memory(incident: Incident, settings: Settings) -> Store:
    return INCIDENT.store()


def raising(exc: Exception) -> runner.StoreFactory:
    def factory(incident: Incident, settings: Settings) -> Store:
        raise exc
    return factory


def settings(**operator: Any) -> Settings:
    return Settings(operator=OperatorSettings(**{"retries": 2, "retry_delay_s": 10, **operator}))


def condition(status: dict[str, Any], kind: str = "Diagnosed") -> dict[str, Any]:
    return {c["type"]: c for c in status["conditions"]}[kind]


# which incidents need a diagnosis ------------------------------------------------------------
def test_needs_diagnosis_until_answered_for_this_spec_and_request() -> None:
    done = {"phase": "Diagnosed", "specDigest": diagnosis_digest(SPEC), "observedGeneration": 1}
    assert runner.needs_diagnosis(body()["metadata"], SPEC, {})
    assert runner.needs_diagnosis(body()["metadata"], SPEC, {"phase": "Diagnosing"})
    assert not runner.needs_diagnosis(body()["metadata"], SPEC, done)
    assert not runner.needs_diagnosis(body()["metadata"], SPEC, {**done, "phase": "Failed"})
    assert runner.needs_diagnosis(body()["metadata"], {**SPEC, "engine": "auto"}, done)
    feedback = {**SPEC, "feedback": {"service": "cartservice"}}  # bumps the generation only
    assert not runner.needs_diagnosis(body(generation=2)["metadata"], feedback, done)


def test_rediagnose_annotation_asks_once_per_value_and_its_removal_asks_nothing() -> None:
    done = {"phase": "Diagnosed", "specDigest": diagnosis_digest(SPEC)}
    asked = body(annotations={runner.REDIAGNOSE: "1"})["metadata"]
    answered = body(annotations={runner.REDIAGNOSE: "1", runner.REDIAGNOSED: "1"})["metadata"]
    removed = body(annotations={runner.REDIAGNOSED: "1"})["metadata"]
    assert runner.needs_diagnosis(asked, SPEC, done)
    assert not runner.needs_diagnosis(answered, SPEC, done)
    assert not runner.needs_diagnosis(removed, SPEC, done)


def test_request_key_tells_a_recreated_object_apart() -> None:
    first = body()["metadata"]
    again = {**first, "uid": "u-2"}
    assert runner.request_key(first) != runner.request_key(again)
    assert runner.request_key({**first, "generation": 2}) != runner.request_key(first)


def test_starting_shows_diagnosing_only_when_there_is_work() -> None:
    shown = runner.starting(body()["metadata"], SPEC, {})
    assert shown is not None and shown["phase"] == "Diagnosing" and shown["rootCauses"] is None
    assert condition(shown)["status"] == "Unknown" and condition(shown)["reason"] == "InProgress"
    done = {"phase": "Diagnosed", "specDigest": diagnosis_digest(SPEC)}
    assert runner.starting(body()["metadata"], SPEC, done) is None
    assert runner.starting(body()["metadata"], SPEC, {"phase": "Diagnosing"}) is None


def test_retry_delay_doubles_and_is_capped() -> None:
    cfg = settings(retry_delay_s=30)
    assert [runner.retry_delay(cfg, n) for n in range(7)] == [30, 60, 120, 240, 480, 600, 600]


# how a try ends ------------------------------------------------------------------------------
def test_a_diagnosis_writes_the_answer_and_its_events() -> None:
    out = runner.run(body(), settings(), memory, 0)
    assert out.status["phase"] == "Diagnosed" and out.status["attempts"] is None  # one try: the field goes
    assert out.status["rootCauses"][0]["service"] == "recommendationservice"
    assert out.status["specDigest"] == diagnosis_digest(SPEC)
    # The record goes to a ConfigMap (the handler writes it); an older inline one is removed.
    assert decode_record(out.record)["answer"] and out.status["record"] is None
    assert [e[1] for e in out.events] == ["Diagnosed"] and not out.retry
    assert out.diagnosis is not None and not out.failure


@pytest.mark.parametrize(("spec", "factory", "reason", "words"), [
    ({"service": "frontend", "time": "2023-13-01"}, memory, "InvalidSpec", 'spec.time "2023-13-01"'),
    (SPEC, raising(NoEvidence("no spans in the window")), "NoEvidence", "no spans"),
    (SPEC, raising(NotFound("trace abc not found in Jaeger at http://j", backend="Jaeger",
                            url="http://j", path="/api/traces/abc")), "NotFound", "trace abc"),
    (SPEC, raising(KeyError("boom")), "InternalError", "KeyError"),
    ({**SPEC, "engine": "thinkfl"}, memory, "InvalidConfiguration", "needs an LLM endpoint"),
])
def test_what_retrying_cannot_fix_fails_at_once_with_the_reason(
        spec: dict[str, Any], factory: runner.StoreFactory, reason: str, words: str) -> None:
    out = runner.run(body(spec), settings(), factory, 0)
    assert out.status["phase"] == "Failed" and not out.retry and out.failure == reason
    assert condition(out.status)["reason"] == reason and words in condition(out.status)["message"]
    assert out.events == [("Warning", "Failed", f"{reason}: {condition(out.status)['message']}")]
    assert out.status["completedAt"]


def test_an_operator_without_a_tracing_backend_says_what_to_configure() -> None:
    out = runner.run(body(), settings(), live_stores(), 0)
    assert out.failure == "InvalidConfiguration"
    assert "THINKFL_TRACES__URL" in condition(out.status)["message"]


def test_an_unreachable_backend_is_retried_then_fails_naming_it() -> None:
    down = raising(BackendUnavailable("Jaeger at http://j is unreachable: HTTP 503", backend="Jaeger",
                                      url="http://j", path="/api/traces"))
    cfg = settings(retries=2, retry_delay_s=10)
    first, second, last = (runner.run(body(), cfg, down, n) for n in range(3))
    assert first.retry and first.delay_s == 10 and second.delay_s == 20
    assert first.status["phase"] == "Diagnosing" and first.status["attempts"] == 1
    assert condition(first.status)["reason"] == "Retrying"
    assert "try 2 of 3 in 10 s" in condition(first.status)["message"]
    assert first.backend == "jaeger" and not first.events
    assert not last.retry and last.failure == "BackendUnavailable" and last.status["attempts"] == 3
    assert "gave up after 3 tries" in condition(last.status)["message"]
    assert "http://j" in condition(last.status)["message"]


def test_a_slow_backend_ends_failed_when_the_deadline_passes() -> None:
    cfg = Settings(operator=OperatorSettings(deadline_s=0.5),
                   traces=TracesSettings(retries=5, backoff_s=0.2, timeout_s=10))
    with TraceApiServer(INCIDENT.spans, flavor="jaeger", apis={"v1"},
                        faults=[TraceFault(status=None, delay_s=3, times=None)]) as jaeger:
        def live(incident: Incident, settings: Settings) -> Store:
            traces = settings.traces.model_copy(update={"url": jaeger.url})
            return open_live(traces, settings.prometheus, incident.service, incident.time_s)

        started = time.monotonic()
        out = runner.run(body(), cfg, live, 0)
        seconds = time.monotonic() - started
    assert out.failure == "DeadlineExceeded", out.status
    assert "0.5 s budget" in condition(out.status)["message"]
    assert "Jaeger" in condition(out.status)["message"]
    assert seconds < 2.5  # the request's own 10 s timeout was cut to the budget


def test_auto_answers_at_once_while_the_model_is_unreachable_then_with_the_model() -> None:
    llm = LLMSettings(retries=0, backoff_s=0)
    with ReplayServer([Fault(503)], when_exhausted=WalkPolicy()) as server:
        cfg = Settings(engine="auto", llm=llm.model_copy(update={"base_url": server.base_url}),
                       operator=OperatorSettings(retries=2, retry_delay_s=5))
        first = runner.run(body(), cfg, memory, 0)
        second = runner.run(body(status=first.status), cfg, memory, 1)
    assert first.retry and first.backend == "llm" and first.diagnosis is None
    assert first.status["phase"] == "Diagnosed" and first.status["engine"] == "heuristic"
    fallback = condition(first.status, "LLMFallback")
    assert fallback["reason"] == runner.MODEL_RETRYING and "try 2 of 3" in fallback["message"]
    assert runner.provisional(first.status)
    assert runner.needs_diagnosis(body()["metadata"], SPEC, first.status)
    assert [e[1] for e in first.events] == ["LLMFallback", "Diagnosed"]
    assert not second.retry and second.status["engine"] == "thinkfl"
    assert condition(second.status, "LLMFallback")["status"] == "False"
    assert [e[1] for e in second.events] == ["Diagnosed"]


def test_auto_keeps_the_deterministic_answer_after_the_last_try() -> None:
    llm = LLMSettings(retries=0, backoff_s=0)
    with ReplayServer([Fault(503)], when_exhausted="repeat_last") as server:
        cfg = Settings(engine="auto", llm=llm.model_copy(update={"base_url": server.base_url}),
                       operator=OperatorSettings(retries=1, retry_delay_s=5))
        first = runner.run(body(), cfg, memory, 0)
        last = runner.run(body(status=first.status), cfg, memory, 1)
    assert first.retry and not last.retry and last.diagnosis is not None
    assert last.status["phase"] == "Diagnosed" and not runner.provisional(last.status)
    assert condition(last.status, "LLMFallback")["reason"] == "DeterministicEngineAnswered"
    still = "the model is still unreachable after 2 tries; the deterministic answer stands"
    assert last.events == [("Warning", "LLMFallback", still)]


def test_thinkfl_with_the_model_down_for_good_fails_llm_unavailable() -> None:
    llm = LLMSettings(retries=0, backoff_s=0)
    with ReplayServer([Fault(503)], when_exhausted="repeat_last") as server:
        url = server.base_url
        cfg = Settings(engine="thinkfl", llm=llm.model_copy(update={"base_url": url}),
                       operator=OperatorSettings(retries=0))
        out = runner.run(body(), cfg, memory, 0)
    assert out.failure == "LLMUnavailable" and out.backend == "llm"
    assert url in condition(out.status)["message"]


def test_a_failed_retry_keeps_the_provisional_answer_and_the_last_one_makes_it_final() -> None:
    llm = LLMSettings(retries=0, backoff_s=0)
    down = raising(BackendUnavailable("Jaeger at http://j is unreachable: HTTP 503",
                                      backend="Jaeger", url="http://j", path="/api/traces"))
    with ReplayServer([Fault(503)], when_exhausted="repeat_last") as server:
        cfg = Settings(engine="auto", llm=llm.model_copy(update={"base_url": server.base_url}),
                       operator=OperatorSettings(retries=2, retry_delay_s=5))
        first = runner.run(body(), cfg, memory, 0)
    shown = first.status
    second = runner.run(body(status=shown), cfg, down, 1)  # Jaeger down on the retry
    assert second.retry and "phase" not in second.status  # the answer shown is not touched
    assert runner.provisional({**shown, **second.status})
    assert "the last try failed" in condition({**shown, **second.status}, "LLMFallback")["message"]
    last = runner.run(body(status={**shown, **second.status}), cfg, down, 2)
    final = {**shown, **last.status}
    assert not last.retry and not last.failure and final["phase"] == "Diagnosed"
    assert final["rootCauses"] == shown["rootCauses"] and not runner.provisional(final)
    assert condition(final, "LLMFallback")["reason"] == "DeterministicEngineAnswered"
    assert [e[1] for e in last.events] == ["LLMFallback"]
    assert "the deterministic answer stands" in last.events[0][2]


def test_a_slow_model_is_out_of_time_not_unreachable() -> None:
    """The budget runs out while the model is still answering: ``auto`` gives the deterministic
    answer at once and does not retry a working model; ``thinkfl`` fails DeadlineExceeded."""
    from tests.fakes.openai_replay import Reply

    llm = LLMSettings(retries=0, backoff_s=0, request_timeout_s=30)
    with ReplayServer([Reply("<tool_call>{}</tool_call>", delay_s=3)],
                      when_exhausted="repeat_last") as server:
        base = Settings(llm=llm.model_copy(update={"base_url": server.base_url}),
                        operator=OperatorSettings(retries=3, deadline_s=0.8))
        auto = runner.run(body(), base.model_copy(update={"engine": "auto"}), memory, 0)
        only = runner.run(body(), base.model_copy(update={"engine": "thinkfl"}), memory, 0)
    assert not auto.retry and auto.status["engine"] == "heuristic"
    assert condition(auto.status, "LLMFallback")["reason"] == "DeterministicEngineAnswered"
    assert "still answering" in condition(auto.status, "LLMFallback")["message"]
    assert only.failure == "DeadlineExceeded" and not only.retry
