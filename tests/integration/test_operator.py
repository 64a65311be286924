"""The real kopf operator against kmock's in-memory Kubernetes API.

Evidence comes from the project's synthetic generator (a real in-memory store), so these tests
exercise kopf, the handlers, the use case and the engine together. Learned about kmock 0.8:
bundled resources must be loaded or kopf waits forever for v1/namespaces and v1/events; run
cluster-wide; cancel the operator task to stop it fast.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from tests.integration import rbac
from tests.integration.operator_harness import (
    INCIDENT,
    RESOURCE,
    Counting,
    T,
    alert_payload,
    create_fi,
    fi_body,
    handled,
    merge_patch,
    operator,
    post_alerts,
    resumed,
    wait_status,
    wait_until,
)
from tests.net import free_port, post_json
from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.models import Incident
from thinkfl_operator.demo.synthetic import generate
from thinkfl_operator.kube.sandbox import sandbox
from thinkfl_operator.telemetry.store import Store


@pytest.mark.asyncio
async def test_created_incident_is_diagnosed_with_every_status_field(api: Any) -> None:
    factory = Counting()
    async with operator(api, factory):
        await create_fi(api, fi_body(
            "checkout-slow", {"service": "frontend", "time": T, "engine": "heuristic"}))
        status = await wait_status(api, "checkout-slow", ("Diagnosed", "Failed"))
    assert status["phase"] == "Diagnosed", status
    assert status["rootCauses"][0]["service"] == "recommendationservice"
    assert all(isinstance(c["score"], int) and isinstance(c["rank"], int) for c in status["rootCauses"])
    assert len(status["rootCauses"]) >= 3
    assert status["engine"] == "heuristic" and status["observedGeneration"] == 1
    assert status["summary"].startswith("recommendationservice")
    assert status["path"][-1].startswith(f"{status['usage']['toolCalls']}. print_results(") and status["traces"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Diagnosed"] == "True"
    assert status["startedAt"].endswith("Z") and status["completedAt"].endswith("Z")
    assert factory.calls == 1


@pytest.mark.asyncio
async def test_invalid_spec_fails_at_once_with_the_reason(api: Any) -> None:
    factory = Counting()
    async with operator(api, factory):
        await create_fi(api, fi_body(
            "bad-time", {"service": "frontend", "time": "2023-13-01"}))
        status = await wait_status(api, "bad-time", ("Diagnosed", "Failed"))
    assert status["phase"] == "Failed"
    condition = {c["type"]: c for c in status["conditions"]}["Diagnosed"]
    assert condition["status"] == "False" and condition["reason"] == "InvalidSpec"
    assert 'spec.time "2023-13-01"' in condition["message"]
    assert factory.calls == 0


@pytest.mark.asyncio
async def test_diagnosed_incident_is_not_diagnosed_again_after_a_restart(api: Any) -> None:
    first = Counting()
    async with operator(api, first):
        await create_fi(api, fi_body("once", {"service": "frontend", "time": T}))
        await wait_status(api, "once", ("Diagnosed",))
    assert first.calls == 1
    second = Counting()
    async with operator(api, second) as restarted:  # it restarts and resumes every object
        await resumed(restarted, "once")
    assert second.calls == 0
    assert api.objects[RESOURCE, "default", "once"]["status"]["phase"] == "Diagnosed"


@pytest.mark.asyncio
async def test_rediagnose_annotation_diagnoses_again_once_per_value(api: Any) -> None:
    factory = Counting()
    async with operator(api, factory):
        await create_fi(api, fi_body("again", {"service": "frontend", "time": T}))
        await wait_status(api, "again", ("Diagnosed",))
        assert factory.calls == 1
        await merge_patch(api, "again", {"metadata": {"annotations": {"thinkfl.dev/rediagnose": "1"}}})
        await wait_until(api, "again", lambda o: o["metadata"]["annotations"].get(
            "thinkfl.dev/rediagnosed") == "1")
        assert factory.calls == 2
        await merge_patch(api, "again", {"metadata": {"labels": {"team": "sre"}}})  # not a request
        # kopf handled the label change (every handler for it ran) ...
        await handled(api, "again", lambda last: last.get("metadata", {}).get("labels") == {"team": "sre"})
    assert factory.calls == 2  # ... and none of them diagnosed
    restarted = Counting()
    async with operator(api, restarted) as running:  # answered stays answered after a restart
        await resumed(running, "again")
    assert restarted.calls == 0


@pytest.mark.asyncio
async def test_spec_change_diagnoses_again(api: Any) -> None:
    factory = Counting()
    async with operator(api, factory):
        await create_fi(api, fi_body("edited", {"service": "frontend", "time": T}))
        await wait_status(api, "edited", ("Diagnosed",))
        await merge_patch(api, "edited", {"metadata": {"generation": 2},
                                           "spec": {"engine": "heuristic"}})
        await wait_until(api, "edited", lambda o: o["status"].get("observedGeneration") == 2)
    assert factory.calls == 2
    assert api.objects[RESOURCE, "default", "edited"]["status"]["phase"] == "Diagnosed"


@pytest.mark.asyncio
async def test_rbac_grants_exactly_what_the_operator_calls(api: Any) -> None:
    """Every (group, resource, verb) the operator used against the API is granted by the chart's
    rules for a cluster-wide install, and nothing else is: the webhook creates an incident, its
    record goes to a ConfigMap (create), an SRE's label is checked against it (get), and a
    re-diagnosis replaces it (patch)."""
    port = free_port()
    async with operator(api, Counting(), http_port=port):  # the webhook creates the incident
        answer = await post_alerts(port, alert_payload("firing"))
        name = answer["created"][0]
        await wait_status(api, name, ("Diagnosed",))
        await merge_patch(api, name, {"metadata": {"annotations": {
            "thinkfl.dev/root-cause": f"service/{INCIDENT.faulty_service}"}}})
        await wait_until(api, name, lambda obj: any(
            c["type"] == "Confirmed" for c in obj.get("status", {}).get("conditions", [])))
        await merge_patch(api, name, {"metadata": {"annotations": {"thinkfl.dev/rediagnose": "1"}}})
        await wait_until(api, name, lambda obj: obj["metadata"].get("annotations", {}).get(
            "thinkfl.dev/rediagnosed") == "1")
    assert rbac.used(api) == rbac.granted({})


@pytest.mark.asyncio
async def test_pod_nodes_come_from_the_api_when_asked_and_rbac_grants_exactly_that(api: Any) -> None:
    """With topology.readPods, a pod's node unknown to the spans and to Prometheus comes from
    the pods listed through the API, and the chart grants exactly what that adds (list pods)."""
    from tests.fakes.trace_api import TraceApiServer
    from thinkfl_operator.config.settings import OperatorSettings, TracesSettings
    from thinkfl_operator.kube import live_stores
    from thinkfl_operator.kubeapi.pods import PodNodes

    nodeless = INCIDENT.spans.assign(node="")  # spans that do not say where pods run
    for pod in sorted(set(INCIDENT.spans["pod"])):
        await post_json(api, "/api/v1/namespaces/default/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "namespace": "default"},
            "spec": {"nodeName": f"api-{INCIDENT.nodes[pod]}"}})
    settings = Settings(operator=OperatorSettings(pod_nodes_from_api=True),
                        traces=TracesSettings(search_limit=10_000, baseline_limit=10_000))
    with TraceApiServer(nodeless, flavor="jaeger", apis={"v1"}) as jaeger:
        settings = settings.model_copy(update={
            "traces": settings.traces.model_copy(update={"url": jaeger.url})})
        async with operator(api, live_stores(PodNodes(host=str(api.url))), settings):
            await create_fi(api, fi_body("placed", {"service": "frontend", "time": T}))
            status = await wait_status(api, "placed", ("Diagnosed", "Failed"), seconds=30)
    assert status["phase"] == "Diagnosed", status
    top = status["rootCauses"][0]
    assert top["service"] == "recommendationservice"
    assert top["node"] == f"api-{INCIDENT.nodes[top['pod']]}"
    used, granted = rbac.used(api) - {("", "pods", "create")}, rbac.granted({"topology": {"readPods": True}})
    # What the first RBAC test checks exactly, and what readPods adds: list pods, and it is used.
    assert used <= granted and granted - rbac.granted({}) == {("", "pods", "list")} <= used


@pytest.mark.asyncio
async def test_alertmanager_webhook_creates_incidents_the_operator_diagnoses(api: Any) -> None:
    port = free_port()
    async with operator(api, Counting(), http_port=port):
        first = await post_alerts(port, alert_payload("firing"))
        assert len(first["created"]) == 1 and first["existing"] == []
        name = first["created"][0]
        status = await wait_status(api, name, ("Diagnosed", "Failed"))
        again = await post_alerts(port, alert_payload("firing"))  # Alertmanager repeats
        resolved = await post_alerts(port, alert_payload("resolved", fingerprint="77aa"))
        bad = await post_alerts(port, {"alerts": "nope"}, expect=400)
    assert status["phase"] == "Diagnosed", status
    obj = api.objects[RESOURCE, "default", name]
    assert obj["spec"]["service"] == "frontend" and obj["spec"]["time"] == T
    assert "p95 latency" in obj["spec"]["description"]
    assert again == {"created": [], "existing": [name], "rejected": [], "skipped": [], "resolved": 0}
    assert resolved["created"] == [] and resolved["resolved"] == 1
    assert "'alerts' is not a list" in bad


@pytest.mark.asyncio
async def test_operator_metrics_count_phases_diagnoses_and_backend_errors(api: Any) -> None:
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    from tests.fakes.trace_api import Fault, TraceApiServer
    from thinkfl_operator.config.settings import OperatorSettings, TracesSettings
    from thinkfl_operator.telemetry.live import open_live

    settings = Settings(operator=OperatorSettings(retries=0, retry_delay_s=0.05),
                        traces=TracesSettings(retries=0))
    port = free_port()
    with TraceApiServer(INCIDENT.spans, flavor="jaeger", apis={"v1"},
                        faults=[Fault(status=500, times=None, path="/api/traces")]) as jaeger:
        def store(incident: Incident, cfg: Settings) -> Store:
            if incident.service == "broken":
                traces = cfg.traces.model_copy(update={"url": jaeger.url})
                return open_live(traces, cfg.prometheus, incident.service, incident.time_s)
            return INCIDENT.store()

        async with operator(api, store, settings, http_port=port) as running:
            await create_fi(api, fi_body("ok", {"service": "frontend", "time": T}))
            await create_fi(api, fi_body("down", {"service": "broken", "time": T}))
            await create_fi(api, fi_body("bad", {"service": "x", "time": "2023-13-01"}))
            for name in ("ok", "down", "bad"):
                phase = (await wait_status(api, name, ("Diagnosed", "Failed"), seconds=30))["phase"]
                # The last status patch comes back as a watch event the phase count sees.
                async with asyncio.timeout(15):
                    while running.metrics.phase(("default", name)) != phase:
                        await asyncio.sleep(0.02)
            async with aiohttp.ClientSession() as session, session.get(
                    f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == 200
                text = await response.text()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("thinkfl_incidents", (("phase", "Diagnosed"),))] == 1
    assert samples[("thinkfl_incidents", (("phase", "Failed"),))] == 2
    assert samples[("thinkfl_diagnosis_seconds_count", (("engine", "heuristic"),))] == 1
    assert samples[("thinkfl_backend_errors_total", (("backend", "jaeger"),))] == 1


@pytest.mark.asyncio
async def test_unreachable_backend_is_retried_then_diagnosed(api: Any) -> None:
    """The tracing backend answers 500 twice: the incident is retried (kopf TemporaryError)
    and then diagnosed from the live store, not failed."""
    from tests.fakes.trace_api import Fault, TraceApiServer
    from thinkfl_operator.config.settings import OperatorSettings, TracesSettings
    from thinkfl_operator.telemetry.live import open_live

    settings = Settings(operator=OperatorSettings(retries=3, retry_delay_s=0.05),
                        traces=TracesSettings(retries=0, search_limit=10_000, baseline_limit=10_000))
    attempts = []
    with TraceApiServer(INCIDENT.spans, flavor="jaeger", apis={"v1"},
                        faults=[Fault(status=500, times=2, path="/api/traces")]) as jaeger:
        def live(incident: Incident, cfg: Settings) -> Store:
            attempts.append(incident)
            traces = cfg.traces.model_copy(update={"url": jaeger.url})
            return open_live(traces, cfg.prometheus, incident.service, incident.time_s)

        async with operator(api, live, settings):
            await create_fi(api, fi_body(
                "flaky", {"service": "frontend", "time": T}))
            status = await wait_status(api, "flaky", ("Diagnosed", "Failed"), seconds=30)
    assert status["phase"] == "Diagnosed", status
    assert status["rootCauses"][0]["service"] == "recommendationservice"
    assert len(attempts) == 3  # two failed tries, then the answer


@pytest.mark.asyncio
async def test_backend_down_for_good_ends_failed_with_the_reason(api: Any) -> None:
    from tests.fakes.trace_api import Fault, TraceApiServer
    from thinkfl_operator.config.settings import OperatorSettings, TracesSettings
    from thinkfl_operator.telemetry.live import open_live

    settings = Settings(operator=OperatorSettings(retries=1, retry_delay_s=0.05),
                        traces=TracesSettings(retries=0))
    with TraceApiServer(INCIDENT.spans, flavor="jaeger", apis={"v1"},
                        faults=[Fault(status=500, times=None, path="/api/traces")]) as jaeger:
        url = jaeger.url

        def live(incident: Incident, cfg: Settings) -> Store:
            traces = cfg.traces.model_copy(update={"url": jaeger.url})
            return open_live(traces, cfg.prometheus, incident.service, incident.time_s)

        async with operator(api, live, settings):
            await create_fi(api, fi_body(
                "down", {"service": "frontend", "time": T}))
            status = await wait_status(api, "down", ("Failed",), seconds=30)
    condition = {c["type"]: c for c in status["conditions"]}["Diagnosed"]
    assert condition["reason"] == "BackendUnavailable"
    assert url in condition["message"]


@pytest.mark.asyncio
async def test_two_hundred_incidents_at_once_all_finish_within_the_concurrency_limit() -> None:
    import threading

    from thinkfl_operator.config.settings import OperatorSettings
    from thinkfl_operator.telemetry.memory import MemoryStore

    small = generate(fault="cpu_contention", service="cartservice", minutes=12, traces_per_minute=8)
    lock, active, peak, calls = threading.Lock(), [0], [0], [0]

    class Tracked(MemoryStore):
        """The small incident's store, counting diagnoses in flight (first span read to the
        topology lookup at the end)."""

        def spans_between(self, start_us: int, end_us: int) -> Any:
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            return super().spans_between(start_us, end_us)

        def metric_pods(self) -> list[str]:
            with lock:
                active[0] -= 1
            return super().metric_pods()

    def factory(incident: Incident, settings: Settings) -> Store:
        calls[0] += 1
        return Tracked(small.spans, small.metrics, small.nodes)

    limit = 3
    names = [f"load-{i:03d}" for i in range(200)]
    spec = {"service": "frontend", "time": "2026-11-01T10:40:00Z"}
    # The sandbox's emulator forgets the requests it served: kmock matches each new request
    # against all it kept, which would make this test quadratic.
    async with sandbox(Settings(operator=OperatorSettings(concurrency=limit)), factory) as cluster:
        await asyncio.gather(*(cluster.create(name, spec) for name in names))
        objects = await asyncio.gather(*(cluster.wait(name, timeout_s=180) for name in names))
    phases = {obj["status"]["phase"] for obj in objects}
    assert phases == {"Diagnosed"}
    assert calls[0] == 200  # each exactly once
    assert 1 <= peak[0] <= limit


@pytest.mark.asyncio
async def test_operator_stopped_mid_diagnosis_finishes_it_once(api: Any) -> None:
    """Stopping the operator while a diagnosis runs: kopf lets the handler finish and write
    its result; the restarted operator does not diagnose it again."""
    from thinkfl_operator.telemetry.memory import MemoryStore

    stopping = threading.Event()

    class Slow(MemoryStore):
        def spans_between(self, start_us: int, end_us: int) -> Any:
            # Until the operator has been told to stop: the stop arrives mid-diagnosis.
            assert stopping.wait(timeout=30), "the operator was never stopped"
            return super().spans_between(start_us, end_us)

    calls = [0]

    def slow(incident: Incident, settings: Settings) -> Store:
        calls[0] += 1
        return Slow(INCIDENT.spans, INCIDENT.metrics, INCIDENT.nodes)

    async with operator(api, slow, stopping=stopping):
        await create_fi(api, fi_body("midway", {"service": "frontend", "time": T}))
        async with asyncio.timeout(15):
            while not calls[0]:
                await asyncio.sleep(0.05)
    assert calls[0] == 1
    assert api.objects[RESOURCE, "default", "midway"]["status"]["phase"] == "Diagnosed"
    again = Counting()
    async with operator(api, again) as running:
        await resumed(running, "midway")
    assert again.calls == 0


@pytest.mark.asyncio
async def test_incident_left_diagnosing_by_a_crash_is_finished_after_the_restart(api: Any) -> None:
    """A crash can leave an incident in Diagnosing (written before a retry); the next operator
    resumes it and finishes it."""
    factory = Counting()
    await create_fi(api, fi_body(
        "crashed", {"service": "frontend", "time": T},
        status={"phase": "Diagnosing", "observedGeneration": 1}))
    async with operator(api, factory):
        status = await wait_status(api, "crashed", ("Diagnosed", "Failed"))
    assert status["phase"] == "Diagnosed" and factory.calls == 1
