"""SRE feedback on diagnosed incidents, through the real kopf operator against kmock: the answer
is graded (never re-diagnosed), refused labels say why, and /metrics shows live accuracy."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.operator_harness import (
    INCIDENT,
    RESOURCE,
    Counting,
    T,
    create_fi,
    diagnosed,
    fi_body,
    handled,
    merge_patch,
    operator,
    resumed,
    wait_condition,
    wait_status,
    wait_until,
)
from tests.net import free_port
from thinkfl_operator.feedback.home import text_of
from thinkfl_operator.feedback.record import decode_record

TRUE_SERVICE = INCIDENT.faulty_service
TRUE_POD = INCIDENT.faulty_pod


async def _events(api: Any, name: str, reason: str, seconds: float = 5.0) -> list[dict[str, Any]]:
    """The Events posted about ``name`` (as ``kubectl describe`` lists them), once one has
    ``reason``: kopf posts them from a queue, just after the status."""
    import aiohttp

    url = f"{str(api.url).rstrip('/')}/api/v1/namespaces/default/events"
    mine: list[dict[str, Any]] = []
    for _ in range(int(seconds / 0.05)):
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            items = (await response.json())["items"]
        mine = [e for e in items if e.get("involvedObject", {}).get("name") == name]
        if any(e.get("reason") == reason for e in mine):
            break
        await asyncio.sleep(0.05)
    return mine


@pytest.mark.asyncio
async def test_feedback_in_the_spec_grades_the_answer_without_diagnosing_again(api: Any) -> None:
    factory = Counting()
    async with operator(api, factory):
        status = await diagnosed(api, "graded")
        assert "record" not in status  # the record is in the ConfigMap the incident owns
        configmap = api.objects["v1/configmaps", "default", status["recordConfigMap"]]
        assert configmap["metadata"]["ownerReferences"][0]["name"] == "graded"
        record = decode_record(text_of(configmap))
        assert TRUE_POD in {e["pod"] for e in record["topology"]} and record["conversations"]
        await merge_patch(api, "graded", {"metadata": {"generation": 2}, "spec": {"feedback": {
            "service": TRUE_SERVICE, "faultType": "network_delay", "by": "alice"}}})
        condition = await wait_condition(api, "graded")
        # kopf handled the feedback (every handler for the change ran, their status written).
        await handled(api, "graded", lambda last: last.get("spec", {}).get("feedback", {}).get("by") == "alice")
        status = dict(api.objects[RESOURCE, "default", "graded"]["status"])
        assert status["observedGeneration"] == 2
        before = dict(status["grade"])
        await merge_patch(api, "graded", {"metadata": {"generation": 3}, "spec": {"feedback": {
            "note": "tc qdisc on the node"}}})  # the grade stays; the generation is observed
        for _ in range(100):
            await asyncio.sleep(0.05)
            if api.objects[RESOURCE, "default", "graded"]["status"].get("observedGeneration") == 3:
                break
    status = dict(api.objects[RESOURCE, "default", "graded"]["status"])
    assert condition["status"] == "True" and condition["reason"] == "FeedbackGraded"
    assert f"true cause {TRUE_SERVICE} ranked 1" in condition["message"] and "alice" in condition["message"]
    grade = dict(status["grade"])
    assert grade["rank"] == 1 and grade["score"] == 100 and "service" in grade["matched"]
    assert all(isinstance(v, int) for v in grade["factors"].values())
    assert factory.calls == 1  # feedback never re-runs the diagnosis
    assert status["observedGeneration"] == 3 and status["phase"] == "Diagnosed"
    assert grade == before
    confirmed = [e for e in await _events(api, "graded", "Confirmed") if e["reason"] == "Confirmed"]
    assert len(confirmed) == 1 and confirmed[0]["type"] == "Normal"
    assert f"true cause {TRUE_SERVICE} ranked 1" in confirmed[0]["message"]
    restarted = Counting()
    async with operator(api, restarted) as running:  # nor does a restart after it
        await resumed(running, "graded")
    assert restarted.calls == 0


@pytest.mark.asyncio
async def test_root_cause_annotation_grades_and_a_pod_brings_its_service(api: Any) -> None:
    async with operator(api, Counting()):
        await diagnosed(api, "annotated")
        await merge_patch(api, "annotated", {"metadata": {"annotations": {
            "thinkfl.dev/root-cause": f"pod/{TRUE_POD}"}}})
        condition = await wait_condition(api, "annotated")
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
        await diagnosed(api, "wrong")
        await merge_patch(api, "wrong", {"metadata": {"annotations": {
            "thinkfl.dev/root-cause": annotation}}})
        condition = await wait_condition(api, "wrong")
    assert condition["status"] == "False" and condition["reason"] == "InvalidFeedback"
    assert expected in condition["message"], condition["message"]
    status = api.objects[RESOURCE, "default", "wrong"]["status"]
    assert status.get("grade") is None and status["phase"] == "Diagnosed"  # nothing lost


@pytest.mark.asyncio
async def test_invalid_spec_feedback_gets_a_false_condition_naming_the_field(api: Any) -> None:
    async with operator(api, Counting()):
        await diagnosed(api, "typo")
        await merge_patch(api, "typo", {"metadata": {"generation": 2}, "spec": {"feedback": {
            "service": "recomendationservice", "by": "alice"}}})  # what the API server admits
        condition = await wait_condition(api, "typo")
        events = await _events(api, "typo", "InvalidFeedback")
    assert condition["status"] == "False" and condition["reason"] == "InvalidFeedback"
    assert condition["message"].startswith('spec.feedback.service "recomendationservice" is not in '
                                           "this incident's observed topology")
    assert 'did you mean "recommendationservice"?' in condition["message"]
    assert [e["type"] for e in events if e["reason"] == "InvalidFeedback"] == ["Warning"]
    status = api.objects[RESOURCE, "default", "typo"]["status"]
    assert status.get("grade") is None and status["phase"] == "Diagnosed"


@pytest.mark.asyncio
async def test_feedback_on_a_failed_incident_says_there_is_nothing_to_grade(api: Any) -> None:
    async with operator(api, Counting()):
        await create_fi(api, fi_body("failed", {"service": "frontend", "time": "2023-13-01"}))
        await wait_status(api, "failed", ("Failed",))
        await merge_patch(api, "failed", {"metadata": {"annotations": {
            "thinkfl.dev/root-cause": f"service/{TRUE_SERVICE}"}}})
        condition = await wait_condition(api, "failed")
    assert condition["status"] == "False" and condition["reason"] == "NotDiagnosed"
    assert api.objects[RESOURCE, "default", "failed"]["status"].get("grade") is None


@pytest.mark.asyncio
@pytest.mark.parametrize("given", ["annotation", "spec"])
async def test_removed_feedback_takes_back_the_grade(api: Any, given: str) -> None:
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    label: dict[str, Any] = (
        {"metadata": {"annotations": {"thinkfl.dev/root-cause": f"service/{TRUE_SERVICE}"}}}
        if given == "annotation" else
        {"metadata": {"generation": 2}, "spec": {"feedback": {"service": TRUE_SERVICE}}})
    removal: dict[str, Any] = (
        {"metadata": {"annotations": {"thinkfl.dev/root-cause": None}}} if given == "annotation"
        else {"metadata": {"generation": 3}, "spec": {"feedback": None}})
    port = free_port()
    async with operator(api, Counting(), http_port=port):
        await diagnosed(api, "taken-back")
        await merge_patch(api, "taken-back", label)
        assert (await wait_condition(api, "taken-back"))["status"] == "True"
        await merge_patch(api, "taken-back", removal)  # kubectl annotate fi taken-back x-
        await wait_until(api, "taken-back", lambda o: any(
            c["type"] == "Confirmed" and c["status"] == "False" for c in o["status"].get("conditions") or []))
        condition = await wait_condition(api, "taken-back")
        events = await _events(api, "taken-back", "FeedbackRemoved")
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    status = api.objects[RESOURCE, "default", "taken-back"]["status"]
    assert condition["reason"] == "FeedbackRemoved" and status.get("grade") is None
    assert status["observedGeneration"] == (3 if given == "spec" else 1)
    assert [e["type"] for e in events if e["reason"] == "FeedbackRemoved"] == ["Normal"]
    confirmed = [s.value for family in text_string_to_metric_families(text) for s in family.samples
                 if s.name == "thinkfl_confirmed_incidents"]
    assert sum(confirmed) == 0  # out of the live accuracy too


@pytest.mark.asyncio
async def test_feedback_given_at_creation_is_graded_with_the_diagnosis(api: Any) -> None:
    async with operator(api, Counting()):
        await create_fi(api, fi_body(
            "early", {"service": "frontend", "time": T, "feedback": {"service": "frontend"}}))
        condition = await wait_condition(api, "early")
    assert condition["status"] == "True"
    assert dict(api.objects[RESOURCE, "default", "early"]["status"]["grade"])["rank"] >= 1


@pytest.mark.asyncio
async def test_metrics_report_live_accuracy_over_confirmed_incidents(api: Any) -> None:
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    port = free_port()
    truths = {"acc-1": f"service/{TRUE_SERVICE}", "acc-2": f"pod/{TRUE_POD}",
              "acc-3": "service/frontend"}
    async with operator(api, Counting(), http_port=port):
        for name, truth in truths.items():
            await diagnosed(api, name)
            await merge_patch(api, name, {"metadata": {"annotations": {"thinkfl.dev/root-cause": truth}}})
            await wait_condition(api, name)
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


@pytest.mark.asyncio
async def test_someone_elses_configmap_of_the_records_name_is_left_alone(api: Any) -> None:
    """A ConfigMap named like the incident's record but not owned by it is not overwritten: the
    answer stands, a Warning says the record was not kept, and feedback says there is none."""
    from tests.net import post_json

    theirs = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "taken-record", "namespace": "default"}, "data": {"mine": "yes"}}
    await post_json(api, "/api/v1/namespaces/default/configmaps", theirs)
    async with operator(api, Counting()):
        status = await diagnosed(api, "taken")
        await merge_patch(api, "taken", {"metadata": {"annotations": {
            "thinkfl.dev/root-cause": f"service/{TRUE_SERVICE}"}}})
        condition = await wait_condition(api, "taken")
        events = await _events(api, "taken", "RecordNotSaved")
    assert status["phase"] == "Diagnosed" and "recordConfigMap" not in status
    [warning] = [e for e in events if e["reason"] == "RecordNotSaved"]
    assert warning["type"] == "Warning" and "is not this incident's record" in warning["message"]
    assert dict(api.objects["v1/configmaps", "default", "taken-record"]["data"]) == {"mine": "yes"}
    assert (condition["status"], condition["reason"]) == ("False", "NoRecord")
