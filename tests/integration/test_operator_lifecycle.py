"""An incident's life through the real operator, as a user watching `kubectl get fi -w` sees it.

Runs in ``kube.sandbox``: the real kopf operator against kmock's emulator (which adds uids, as an
API server does), with a watch recording when each phase first showed. Covers what the basic
operator tests do not: the Diagnosing phase shown while the engine works, a deleted incident
created again, a crash in the use case, engine ``auto`` while the model is down, the deadline,
and the rediagnose annotation taken away across restarts.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from tests.fakes.openai_replay import Fault, ReplayServer
from tests.fakes.thinkfl_policy import WalkPolicy
from tests.fakes.trace_api import Fault as TraceFault
from tests.fakes.trace_api import TraceApiServer
from tests.integration.operator_harness import (
    INCIDENT,
    Counting,
    T,
    create_fi,
    fi_body,
    handled,
    last_handled,
    merge_patch,
    operator,
    resumed,
    wait_status,
    wait_until,
)
from thinkfl_operator.config.settings import LLMSettings, OperatorSettings, Settings, TracesSettings
from thinkfl_operator.core.models import Incident
from thinkfl_operator.kube.sandbox import Cluster, sandbox
from thinkfl_operator.telemetry.live import open_live
from thinkfl_operator.telemetry.memory import MemoryStore
from thinkfl_operator.telemetry.store import Store

SPEC = {"service": "frontend", "time": T}


class Gated(MemoryStore):
    """The incident's evidence once the test opens ``gate``: until then the diagnosis waits, and
    the phase before the answer stays on show."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__(INCIDENT.spans, INCIDENT.metrics, INCIDENT.nodes)
        self.gate = gate

    def spans_between(self, start_us: int, end_us: int) -> Any:
        assert self.gate.wait(timeout=30), "the test never opened the gate"
        return super().spans_between(start_us, end_us)


async def _until(check: Any, timeout_s: float = 15.0) -> None:
    """Once ``check()`` holds (awaited when it is a coroutine); fails after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)


async def _handled_by_kopf(cluster: Cluster, name: str) -> bool:
    """kopf stored the configuration it handled: every handler for the incident's creation
    finished, none waits for a retry."""
    return bool(last_handled(await cluster.get(name)))


def _condition(obj: dict[str, Any], kind: str = "Diagnosed") -> dict[str, Any]:
    conditions = {c["type"]: c for c in obj["status"]["conditions"]}
    assert kind in conditions, obj["status"]["conditions"]
    return conditions[kind]


def _reasons(events: list[dict[str, Any]]) -> list[str]:
    return [e["reason"] for e in events]


@pytest.mark.asyncio
async def test_diagnosing_shows_while_the_engine_works() -> None:
    gate = threading.Event()
    gated = Gated(gate)
    async with sandbox(Settings(), lambda *_: gated) as cluster:
        await cluster.create("watched", SPEC)
        seen = await cluster.wait("watched", ("Diagnosing",), timeout_s=30)
        gate.set()
        done = await cluster.wait("watched", timeout_s=30)
    assert _condition(seen)["status"] == "Unknown" and _condition(seen)["reason"] == "InProgress"
    assert seen["status"]["startedAt"] and not seen["status"].get("rootCauses")
    assert done["status"]["phase"] == "Diagnosed"
    assert (cluster.first("watched", ("Diagnosing",)) or 0) < (cluster.first("watched") or 0)


@pytest.mark.asyncio
async def test_a_queued_incident_shows_pending_until_a_worker_takes_it() -> None:
    gate = threading.Event()
    gated = Gated(gate)
    settings = Settings(operator=OperatorSettings(concurrency=1))
    names = ["first", "second", "third"]
    async with sandbox(settings, lambda *_: gated) as cluster:
        for name in names:
            await cluster.create(name, SPEC)
        for name in names:  # the one worker holds one of them while the others come in
            await cluster.wait(name, ("Pending", "Diagnosing"), timeout_s=30)
        gate.set()
        done = [await cluster.wait(name, timeout_s=30) for name in names]
    assert {obj["status"]["phase"] for obj in done} == {"Diagnosed"}
    queued = [n for n in names if cluster.first(n, ("Pending",)) is not None]
    assert queued, cluster.reached  # one worker, three incidents: some had to wait
    for name in queued:
        pending, diagnosing = cluster.first(name, ("Pending",)), cluster.first(name, ("Diagnosing",))
        assert pending is not None and diagnosing is not None
        assert pending < diagnosing < (cluster.first(name) or 0), cluster.reached[name]


@pytest.mark.asyncio
async def test_a_deleted_incident_created_again_is_diagnosed_again() -> None:
    factory = Counting()
    async with sandbox(Settings(), factory) as cluster:
        await cluster.create("again", SPEC)
        first = await cluster.wait("again")
        await cluster.delete("again")
        await _until(lambda: "again" not in cluster.reached)  # the watch's DELETED event
        await cluster.create("again", SPEC)
        second = await cluster.wait("again")
    assert first["metadata"]["uid"] != second["metadata"]["uid"]
    assert second["status"]["phase"] == "Diagnosed" and factory.calls == 2


@pytest.mark.asyncio
async def test_a_crash_in_the_use_case_ends_failed_with_an_event_not_endless_retries() -> None:
    calls = []

    def broken(incident: Incident, settings: Settings) -> Store:
        calls.append(incident)
        raise RuntimeError("evidence store exploded")

    async with sandbox(Settings(), broken) as cluster:
        await cluster.create("crash", SPEC)
        obj = await cluster.wait("crash")
        events = await cluster.events_until("crash", ("Failed",))
        await _until(lambda: _handled_by_kopf(cluster, "crash"))  # no retry is pending
    assert obj["status"]["phase"] == "Failed" and len(calls) == 1
    assert _condition(obj)["reason"] == "InternalError"
    assert "RuntimeError: evidence store exploded" in _condition(obj)["message"]
    assert _reasons(events) == ["Started", "Failed"]


@pytest.mark.asyncio
async def test_auto_answers_while_the_model_is_down_then_gives_the_models_answer() -> None:
    """The model's endpoint answers 503 once: the deterministic answer is written at once
    (provisional, LLMFallback ModelRetrying), the model is asked again after the retry delay,
    and its answer replaces the deterministic one."""
    with ReplayServer([Fault(503)], when_exhausted=WalkPolicy()) as llm:
        settings = Settings(engine="auto", llm=LLMSettings(base_url=llm.base_url, retries=0),
                            operator=OperatorSettings(retries=3, retry_delay_s=0.5))
        async with sandbox(settings, lambda *_: INCIDENT.store()) as cluster:
            await cluster.create("model-down", SPEC)
            provisional = await cluster.wait("model-down", ("Diagnosed",))
            for _ in range(200):
                final = await cluster.get("model-down")
                if final["status"].get("engine") == "thinkfl":
                    break
                await asyncio.sleep(0.05)

            async def both_answers_posted() -> bool:  # kopf posts Events from a queue
                return _reasons(await cluster.events("model-down")).count("Diagnosed") >= 2

            await _until(both_answers_posted)
            events = await cluster.events("model-down")
    assert provisional["status"]["engine"] == "heuristic"
    assert _condition(provisional, "LLMFallback")["reason"] == "ModelRetrying"
    assert final["status"]["engine"] == "thinkfl" and final["status"]["model"] == "ThinkFL"
    assert _condition(final, "LLMFallback")["status"] == "False", final["status"]["conditions"]
    assert final["status"]["attempts"] == 2
    assert _reasons(events) == ["Started", "LLMFallback", "Diagnosed", "Diagnosed"], events


@pytest.mark.asyncio
async def test_a_backend_slower_than_the_deadline_fails_the_incident_in_time() -> None:
    settings = Settings(operator=OperatorSettings(deadline_s=1.0),
                        traces=TracesSettings(timeout_s=30, retries=0))
    with TraceApiServer(INCIDENT.spans, flavor="jaeger", apis={"v1"},
                        faults=[TraceFault(status=None, delay_s=5, times=None)]) as jaeger:
        def live(incident: Incident, cfg: Settings) -> Store:
            traces = cfg.traces.model_copy(update={"url": jaeger.url})
            return open_live(traces, cfg.prometheus, incident.service, incident.time_s)

        async with sandbox(settings, live) as cluster:
            created = await cluster.create("slow-backend", SPEC)
            obj = await cluster.wait("slow-backend", timeout_s=30)
            took = (cluster.first("slow-backend") or 0) - created
    assert obj["status"]["phase"] == "Failed" and took < 4, (took, obj["status"])
    assert _condition(obj)["reason"] == "DeadlineExceeded"
    assert "ran out of its 1 s budget (asking Jaeger" in _condition(obj)["message"]


def _removed(annotations: dict[str, str]) -> bool:
    """The request answered (the operator's own annotation handled) and then taken away."""
    return annotations.get("thinkfl.dev/rediagnosed") == "x" and "thinkfl.dev/rediagnose" not in annotations


@pytest.mark.asyncio
async def test_removing_the_rediagnose_annotation_does_not_diagnose_again_on_restarts(api: Any) -> None:
    factory = Counting()
    async with operator(api, factory):
        await create_fi(api, fi_body("asked", SPEC))
        await wait_status(api, "asked", ("Diagnosed",))
        await merge_patch(api, "asked", {"metadata": {"annotations": {"thinkfl.dev/rediagnose": "x"}}})
        await wait_until(api, "asked", lambda o: o["metadata"]["annotations"].get(
            "thinkfl.dev/rediagnosed") == "x")
        await merge_patch(api, "asked", {"metadata": {"annotations": {"thinkfl.dev/rediagnose": None}}})
        # kopf handled the annotation's removal (every handler for it ran) ...
        await handled(api, "asked", lambda last: _removed(last.get("metadata", {}).get("annotations") or {}))
    assert factory.calls == 2  # ... and none diagnosed again
    for _ in range(2):
        restarted = Counting()
        async with operator(api, restarted) as running:
            await resumed(running, "asked")
        assert restarted.calls == 0
