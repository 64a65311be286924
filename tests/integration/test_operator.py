"""The real kopf operator against kmock's in-memory Kubernetes API.

Evidence comes from the project's synthetic generator (a real in-memory store), so these tests
exercise kopf, the handlers, the use case and the engine together. Learned about kmock 0.8:
bundled resources must be loaded or kopf waits forever for v1/namespaces and v1/events; run
cluster-wide; cancel the operator task to stop it fast.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import kopf
import pytest
from pydantic import SecretStr

from tests.integration.conftest import free_port, post_json
from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.models import Incident
from thinkfl_operator.demo.synthetic import generate
from thinkfl_operator.kube.handlers import Registered, register
from thinkfl_operator.kube.sandbox import sandbox
from thinkfl_operator.kubeapi.incidents import IncidentApi
from thinkfl_operator.telemetry.store import Store

RESOURCE = "thinkfl.dev/v1alpha1/failureincidents"
INCIDENT = generate(fault="network_delay", service="recommendationservice")
T = "2026-11-01T10:40:00Z"
WEBHOOK_TOKEN = "operator-test-token"


class Counting:
    """The store factory, counting how often the operator asked for evidence."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, incident: Incident, settings: Settings) -> Store:
        self.calls += 1
        return INCIDENT.store()


def _incident(name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None,
              status: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "thinkfl.dev/v1alpha1", "kind": "FailureIncident",
        "metadata": {"name": name, "namespace": "default", "generation": 1,
                     "creationTimestamp": T, "annotations": annotations or {}},
        "spec": spec,
    }
    if status is not None:
        body["status"] = status
    return body


@contextlib.asynccontextmanager
async def operator(server: Any, factory: Callable[[Incident, Settings], Store],
                   settings: Settings | None = None, http_port: int = 0) -> AsyncIterator[Registered]:
    """The real operator against kmock; its HTTP port only when ``http_port`` is given, and its
    webhook creating incidents in kmock through the Kubernetes client."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=str(server.url), insecure=True)

    settings = settings or Settings()
    settings = settings.model_copy(update={
        "operator": settings.operator.model_copy(update={"http_port": http_port}),
        "alerts": settings.alerts.model_copy(update={"token": SecretStr(WEBHOOK_TOKEN)})})
    registered = register(registry, settings, factory,  # threads: the tests count calls here
                          api=IncidentApi(host=str(server.url)), processes=False)
    task = asyncio.create_task(kopf.operator(registry=registry, clusterwide=True, standalone=True))
    try:
        yield registered
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await registered.stop()


async def resumed(registered: Registered, *names: str, settle_s: float = 0.5) -> None:
    """Once a (re)started operator has seen ``names`` (their listing reached its handlers), and
    ``settle_s`` more for the resume handlers that run after: what a restart test waits for
    before asserting that nothing was diagnosed again."""
    for _ in range(400):
        if all(registered.metrics.phase(("default", name)) for name in names):
            await asyncio.sleep(settle_s)
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the operator never saw {names}")


async def _status(api: Any, name: str, phases: tuple[str, ...], seconds: float = 15.0) -> dict[str, Any]:
    for _ in range(int(seconds / 0.05)):
        await asyncio.sleep(0.05)
        status = dict(api.objects[RESOURCE, "default", name].get("status") or {})
        if status.get("phase") in phases:
            return status
    raise AssertionError(f"{name} never reached {phases}: {dict(api.objects[RESOURCE, 'default', name])}")


@pytest.mark.asyncio
async def test_created_incident_is_diagnosed_with_every_status_field(api: Any) -> None:
    factory = Counting()
    async with operator(api, factory):
        await _create(api, _incident(
            "checkout-slow", {"service": "frontend", "time": T, "engine": "heuristic"}))
        status = await _status(api, "checkout-slow", ("Diagnosed", "Failed"))
    assert status["phase"] == "Diagnosed", status
    assert status["rootCauses"][0]["service"] == "recommendationservice"
    assert all(isinstance(c["score"], int) and isinstance(c["rank"], int) for c in status["rootCauses"])
    assert len(status["rootCauses"]) >= 3
    assert status["engine"] == "heuristic" and status["observedGeneration"] == 1
    assert status["summary"].startswith("recommendationservice")
    assert status["steps"][-1]["tool"] == "print_results" and status["traces"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Diagnosed"] == "True"
    assert status["startedAt"].endswith("Z") and status["completedAt"].endswith("Z")
    assert factory.calls == 1


@pytest.mark.asyncio
async def test_invalid_spec_fails_at_once_with_the_reason(api: Any) -> None:
    factory = Counting()
    async with operator(api, factory):
        await _create(api, _incident(
            "bad-time", {"service": "frontend", "time": "2023-13-01"}))
        status = await _status(api, "bad-time", ("Diagnosed", "Failed"))
    assert status["phase"] == "Failed"
    condition = {c["type"]: c for c in status["conditions"]}["Diagnosed"]
    assert condition["status"] == "False" and condition["reason"] == "InvalidSpec"
    assert 'spec.time "2023-13-01"' in condition["message"]
    assert factory.calls == 0


@pytest.mark.asyncio
async def test_diagnosed_incident_is_not_diagnosed_again_after_a_restart(api: Any) -> None:
    first = Counting()
    async with operator(api, first):
        await _create(api, _incident("once", {"service": "frontend", "time": T}))
        await _status(api, "once", ("Diagnosed",))
    assert first.calls == 1
    second = Counting()
    async with operator(api, second) as restarted:  # it restarts and resumes every object
        await resumed(restarted, "once")
    assert second.calls == 0
    assert api.objects[RESOURCE, "default", "once"]["status"]["phase"] == "Diagnosed"


def _collection_url(api: Any) -> str:
    return f"{str(api.url).rstrip('/')}/apis/thinkfl.dev/v1alpha1/namespaces/default/failureincidents"


async def _create(api: Any, body: dict[str, Any]) -> None:
    """What `kubectl create -f` sends: a POST to the API (kmock then emits the watch event)."""
    import aiohttp

    async with aiohttp.ClientSession() as session, session.post(_collection_url(api), json=body) as response:
        assert response.status in (200, 201), await response.text()


async def _merge_patch(api: Any, name: str, patch: dict[str, Any]) -> None:
    """What `kubectl annotate` / `kubectl patch --type merge` send: a PATCH to the API."""
    import aiohttp

    url = f"{_collection_url(api)}/{name}"
    async with aiohttp.ClientSession() as session, session.patch(
            url, json=patch, headers={"Content-Type": "application/merge-patch+json"}) as response:
        assert response.status == 200, await response.text()


@pytest.mark.asyncio
async def test_rediagnose_annotation_diagnoses_again_once_per_value(api: Any) -> None:
    factory = Counting()
    async with operator(api, factory):
        await _create(api, _incident("again", {"service": "frontend", "time": T}))
        await _status(api, "again", ("Diagnosed",))
        assert factory.calls == 1
        await _merge_patch(api, "again", {"metadata": {"annotations": {"thinkfl.dev/rediagnose": "1"}}})
        for _ in range(200):
            await asyncio.sleep(0.05)
            annotations = api.objects[RESOURCE, "default", "again"]["metadata"]["annotations"]
            if annotations.get("thinkfl.dev/rediagnosed") == "1":
                break
        assert factory.calls == 2
        await _merge_patch(api, "again", {"metadata": {"labels": {"team": "sre"}}})  # not a request
        await asyncio.sleep(1.0)
    assert factory.calls == 2
    restarted = Counting()
    async with operator(api, restarted) as running:  # answered stays answered after a restart
        await resumed(running, "again")
    assert restarted.calls == 0


@pytest.mark.asyncio
async def test_spec_change_diagnoses_again(api: Any) -> None:
    factory = Counting()
    async with operator(api, factory):
        await _create(api, _incident("edited", {"service": "frontend", "time": T}))
        await _status(api, "edited", ("Diagnosed",))
        await _merge_patch(api, "edited", {"metadata": {"generation": 2},
                                           "spec": {"engine": "heuristic"}})
        for _ in range(200):
            await asyncio.sleep(0.05)
            if api.objects[RESOURCE, "default", "edited"]["status"].get("observedGeneration") == 2:
                break
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
        answer = await _post_alerts(port, _alert_payload("firing"))
        name = answer["created"][0]
        await _status(api, name, ("Diagnosed",))
        await _merge_patch(api, name, {"metadata": {"annotations": {
            "thinkfl.dev/root-cause": f"service/{INCIDENT.faulty_service}"}}})
        await _until(api, name, lambda obj: any(
            c["type"] == "Confirmed" for c in obj.get("status", {}).get("conditions", [])))
        await _merge_patch(api, name, {"metadata": {"annotations": {"thinkfl.dev/rediagnose": "1"}}})
        await _until(api, name, lambda obj: obj["metadata"].get("annotations", {}).get(
            "thinkfl.dev/rediagnosed") == "1")
    assert _used(api) == _granted({})


async def _until(api: Any, name: str, done: Callable[[dict[str, Any]], bool],
                 seconds: float = 15.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if done(dict(api.objects[RESOURCE, "default", name])):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never got there: {dict(api.objects[RESOURCE, 'default', name])}")


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
            await _create(api, _incident("placed", {"service": "frontend", "time": T}))
            status = await _status(api, "placed", ("Diagnosed", "Failed"), seconds=30)
    assert status["phase"] == "Diagnosed", status
    top = status["rootCauses"][0]
    assert top["service"] == "recommendationservice"
    assert top["node"] == f"api-{INCIDENT.nodes[top['pod']]}"
    used, granted = _used(api) - {("", "pods", "create")}, _granted({"topology": {"readPods": True}})
    # What the first RBAC test checks exactly, and what readPods adds: list pods, and it is used.
    assert used <= granted and granted - _granted({}) == {("", "pods", "list")} <= used


def _used(api: Any) -> set[tuple[str, str, str]]:
    """(group, resource, verb) of every request the emulator served, discovery left out."""
    used = set()
    for request in api._requests:  # the recording emulator keeps every request it served
        resource = request.resource
        if resource is None or resource.plural is None:
            continue  # discovery: no RBAC needed
        plural = resource.plural + (f"/{request.subresource}" if request.subresource else "")
        used.add((resource.group, plural, _VERBS[str(request.action).split(".")[-1]]))
    return used


def _granted(values: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(group, resource, verb) the chart's Roles and ClusterRoles grant with ``values``,
    rendered by the real Helm engine."""
    from pathlib import Path

    import helm_python as helm
    import yaml

    chart = helm.Chart.load(Path(__file__).resolve().parents[2] / "helm" / "thinkfl-operator")
    rendered = chart.render(values, name="thinkfl-operator", namespace="thinkfl")
    granted = set()
    for name, text in rendered.items():
        if not name.endswith(".yaml"):
            continue  # NOTES.txt
        for doc in yaml.safe_load_all(text):
            if doc and doc.get("kind") in ("ClusterRole", "Role"):
                for rule in doc["rules"]:
                    granted |= {(g, r, v) for g in rule["apiGroups"] for r in rule["resources"]
                                for v in rule["verbs"]}
    return granted


def _alert_payload(status: str, fingerprint: str = "1a30ba71cca2921f") -> dict[str, Any]:
    """Alertmanager's webhook body (version 4) with one alert."""
    return {"version": "4", "status": status, "receiver": "thinkfl", "groupKey": "{}:{}",
            "alerts": [{"status": status, "labels": {"alertname": "HighLatency", "service": "frontend"},
                        "annotations": {"summary": "p95 latency of frontend above 500 ms"},
                        "startsAt": T, "endsAt": "0001-01-01T00:00:00Z",
                        "fingerprint": fingerprint}]}


async def _post_alerts(port: int, payload: Any, expect: int = 200) -> Any:
    """POST to the operator's webhook, once its port is up (it starts with the operator)."""
    import aiohttp

    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        break
    async with aiohttp.ClientSession() as session, session.post(
            f"http://127.0.0.1:{port}/alerts", json=payload,
            headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"}) as response:
        assert response.status == expect, await response.text()
        return await response.json() if expect == 200 else await response.text()


@pytest.mark.asyncio
async def test_alertmanager_webhook_creates_incidents_the_operator_diagnoses(api: Any) -> None:
    port = free_port()
    async with operator(api, Counting(), http_port=port):
        first = await _post_alerts(port, _alert_payload("firing"))
        assert len(first["created"]) == 1 and first["existing"] == []
        name = first["created"][0]
        status = await _status(api, name, ("Diagnosed", "Failed"))
        again = await _post_alerts(port, _alert_payload("firing"))  # Alertmanager repeats
        resolved = await _post_alerts(port, _alert_payload("resolved", fingerprint="77aa"))
        bad = await _post_alerts(port, {"alerts": "nope"}, expect=400)
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

        async with operator(api, store, settings, http_port=port):
            await _create(api, _incident("ok", {"service": "frontend", "time": T}))
            await _create(api, _incident("down", {"service": "broken", "time": T}))
            await _create(api, _incident("bad", {"service": "x", "time": "2023-13-01"}))
            for name in ("ok", "down", "bad"):
                await _status(api, name, ("Diagnosed", "Failed"), seconds=30)
            await asyncio.sleep(0.3)  # the last status patch comes back as a watch event
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


_VERBS = {"LIST": "list", "WATCH": "watch", "FETCH": "get", "GET": "get", "CREATE": "create",
          "UPDATE": "patch", "DELETE": "delete"}


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
            await _create(api, _incident(
                "flaky", {"service": "frontend", "time": T}))
            status = await _status(api, "flaky", ("Diagnosed", "Failed"), seconds=30)
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
            await _create(api, _incident(
                "down", {"service": "frontend", "time": T}))
            status = await _status(api, "down", ("Failed",), seconds=30)
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
    import time as clock

    from thinkfl_operator.telemetry.memory import MemoryStore

    class Slow(MemoryStore):
        def spans_between(self, start_us: int, end_us: int) -> Any:
            clock.sleep(1.0)  # long enough for the stop to arrive meanwhile
            return super().spans_between(start_us, end_us)

    calls = [0]

    def slow(incident: Incident, settings: Settings) -> Store:
        calls[0] += 1
        return Slow(INCIDENT.spans, INCIDENT.metrics, INCIDENT.nodes)

    async with operator(api, slow):
        await _create(api, _incident("midway", {"service": "frontend", "time": T}))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if calls[0]:
                break
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
    await _create(api, _incident(
        "crashed", {"service": "frontend", "time": T},
        status={"phase": "Diagnosing", "observedGeneration": 1}))
    async with operator(api, factory):
        status = await _status(api, "crashed", ("Diagnosed", "Failed"))
    assert status["phase"] == "Diagnosed" and factory.calls == 1


def _plain(value: Any) -> Any:
    """kmock's stored object as plain dicts and lists."""
    from collections.abc import Mapping

    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
