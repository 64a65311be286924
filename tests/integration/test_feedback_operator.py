"""SRE feedback on diagnosed incidents, through the real kopf operator against kmock: the answer
is graded (never re-diagnosed), refused labels say why, and /metrics shows live accuracy."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.test_operator import (
    INCIDENT,
    RESOURCE,
    Counting,
    T,
    _create,
    _free_port,
    _incident,
    _merge_patch,
    _status,
    api,
    operator,
)
from thinkfl_operator.feedback.record import decode_record

__all__ = ["api"]  # the kmock fixture, shared with the operator tests

TRUE_SERVICE = INCIDENT.faulty_service
TRUE_POD = INCIDENT.faulty_pod


async def _condition(api: Any, name: str, kind: str = "Confirmed", seconds: float = 10.0) -> dict[str, Any]:
    for _ in range(int(seconds / 0.05)):
        await asyncio.sleep(0.05)
        status = api.objects[RESOURCE, "default", name].get("status") or {}
        found = [c for c in status.get("conditions") or [] if c["type"] == kind]
        if found:
            return dict(found[0])
    raise AssertionError(f"{name} has no {kind} condition: {dict(api.objects[RESOURCE, 'default', name])}")


async def _diagnosed(api: Any, name: str) -> dict[str, Any]:
    await _create(api, _incident(name, {"service": "frontend", "time": T}))
    return await _status(api, name, ("Diagnosed",))


@pytest.mark.asyncio
async def test_feedback_in_the_spec_grades_the_answer_without_diagnosing_again(api: Any) -> None:
    factory = Counting()
    async with operator(api, factory):
        status = await _diagnosed(api, "graded")
        record = decode_record(status["record"])
        assert TRUE_POD in record["topology"]["pods"] and record["conversations"]
        await _merge_patch(api, "graded", {"metadata": {"generation": 2}, "spec": {"feedback": {
            "service": TRUE_SERVICE, "faultType": "network_delay", "by": "alice"}}})
        condition = await _condition(api, "graded")
        await asyncio.sleep(0.5)
    status = dict(api.objects[RESOURCE, "default", "graded"]["status"])
    assert condition["status"] == "True" and condition["reason"] == "FeedbackGraded"
    assert f"true cause {TRUE_SERVICE} ranked 1" in condition["message"] and "alice" in condition["message"]
    grade = dict(status["grade"])
    assert grade["rank"] == 1 and grade["score"] == 100 and "service" in grade["matched"]
    assert all(isinstance(v, int) for v in grade["factors"].values())
    assert factory.calls == 1  # feedback never re-runs the diagnosis
    assert status["observedGeneration"] == 2 and status["phase"] == "Diagnosed"
    restarted = Counting()
    async with operator(api, restarted):  # nor does a restart after it
        await asyncio.sleep(1.5)
    assert restarted.calls == 0


@pytest.mark.asyncio
async def test_root_cause_annotation_grades_and_a_pod_brings_its_service(api: Any) -> None:
    async with operator(api, Counting()):
        await _diagnosed(api, "annotated")
        await _merge_patch(api, "annotated", {"metadata": {"annotations": {
            "thinkfl.dev/root-cause": f"pod/{TRUE_POD}"}}})
        condition = await _condition(api, "annotated")
    grade = dict(api.objects[RESOURCE, "default", "annotated"]["status"]["grade"])
    assert condition["status"] == "True", condition
    assert grade["rank"] == 1 and {"service", "pod"} <= set(grade["matched"])


@pytest.mark.asyncio
@pytest.mark.parametrize(("annotation", "expected"), [
    ("svc:cartservice", '"svc:cartservice" is not service/NAME, pod/NAME or node/NAME'),
    ("service/no-such-service", "no-such-service"),
])
async def test_invalid_feedback_gets_a_false_condition_with_the_reason(
        api: Any, annotation: str, expected: str) -> None:
    async with operator(api, Counting()):
        await _diagnosed(api, "wrong")
        await _merge_patch(api, "wrong", {"metadata": {"annotations": {
            "thinkfl.dev/root-cause": annotation}}})
        condition = await _condition(api, "wrong")
    assert condition["status"] == "False" and condition["reason"] == "InvalidFeedback"
    assert expected in condition["message"], condition["message"]
    status = api.objects[RESOURCE, "default", "wrong"]["status"]
    assert status.get("grade") is None and status["phase"] == "Diagnosed"  # nothing lost


@pytest.mark.asyncio
async def test_feedback_given_at_creation_is_graded_with_the_diagnosis(api: Any) -> None:
    async with operator(api, Counting()):
        await _create(api, _incident(
            "early", {"service": "frontend", "time": T, "feedback": {"service": "frontend"}}))
        condition = await _condition(api, "early")
    assert condition["status"] == "True"
    assert dict(api.objects[RESOURCE, "default", "early"]["status"]["grade"])["rank"] >= 1


@pytest.mark.asyncio
async def test_metrics_report_live_accuracy_over_confirmed_incidents(api: Any) -> None:
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    port = _free_port()
    truths = {"acc-1": f"service/{TRUE_SERVICE}", "acc-2": f"pod/{TRUE_POD}",
              "acc-3": "service/frontend"}
    async with operator(api, Counting(), http_port=port):
        for name, truth in truths.items():
            await _diagnosed(api, name)
            await _merge_patch(api, name, {"metadata": {"annotations": {"thinkfl.dev/root-cause": truth}}})
            await _condition(api, name)
        ranks = [dict(api.objects[RESOURCE, "default", n]["status"]["grade"]).get("rank") for n in truths]
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    engine = (("engine", "heuristic"),)
    assert ranks[:2] == [1, 1] and ranks[2] is not None and ranks[2] > 1
    assert samples[("thinkfl_confirmed_incidents", engine)] == 3
    assert samples[("thinkfl_accuracy_recall", (("engine", "heuristic"), ("k", "1")))] == pytest.approx(2 / 3)
    assert samples[("thinkfl_accuracy_mrr", engine)] == pytest.approx((2 + 1 / ranks[2]) / 3)
