"""The real kopf operator against the ``api`` fixture's emulator, for the operator tests.

``kube.sandbox.sandbox`` runs the operator too, and the tests use it where it does the job; this
harness is for what it does not offer: the recording emulator of the ``api`` fixture kept across
operator restarts, the operator's HTTP port (webhook, metrics), its ``Registered`` metrics, and a
signal that a restarted operator has run its resume handlers on an incident.

Waiting helpers poll the emulator until a condition holds and fail the test after a timeout. To
show that the operator did *not* act, wait for a sign that it handled the event first:
``handled`` (kopf stored the handled configuration, after every handler for the change ran) or
``resumed`` (every resume handler ran).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kopf
from pydantic import SecretStr

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.models import Incident
from thinkfl_operator.demo.synthetic import generate
from thinkfl_operator.kube.handlers import KOPF_PREFIX, Registered, register
from thinkfl_operator.kube.metrics import OperatorMetrics
from thinkfl_operator.kubeapi.client import GROUP, PLURAL, VERSION
from thinkfl_operator.kubeapi.incidents import IncidentApi
from thinkfl_operator.telemetry.store import Store

RESOURCE = "thinkfl.dev/v1alpha1/failureincidents"
INCIDENT = generate(fault="network_delay", service="recommendationservice")
T = "2026-11-01T10:40:00Z"
WEBHOOK_TOKEN = "operator-test-token"
#: Where kopf keeps the configuration it last handled (its diff base) on each object.
LAST_HANDLED = f"{KOPF_PREFIX}/last-handled-configuration"


class Counting:
    """The store factory, counting how often the operator asked for evidence."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, incident: Incident, settings: Settings) -> Store:
        self.calls += 1
        return INCIDENT.store()


@dataclass
class Running:
    """A running operator: what ``register`` set up, and the incidents (namespace, name) whose
    resume handlers have all run (a handler of the harness, registered after the operator's:
    kopf runs a cause's handlers in that order, one after the other)."""

    registered: Registered
    resumed: set[tuple[str, str]] = field(default_factory=set)

    @property
    def metrics(self) -> OperatorMetrics:
        return self.registered.metrics


def fi_body(name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None,
            status: dict[str, Any] | None = None) -> dict[str, Any]:
    """A FailureIncident as ``kubectl create -f`` sends it."""
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
                   settings: Settings | None = None, http_port: int = 0,
                   stopping: threading.Event | None = None) -> AsyncIterator[Running]:
    """The real operator against kmock; its HTTP port only when ``http_port`` is given, and its
    webhook creating incidents in kmock through the Kubernetes client. ``stopping`` is set
    once the operator task has been told to stop."""
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
    running = Running(registered)

    @kopf.on.resume(GROUP, VERSION, PLURAL, id="harness-resumed", registry=registry)
    def resumed_all(name: str, namespace: str, **_: Any) -> None:
        running.resumed.add((namespace, name))

    task = asyncio.create_task(kopf.operator(registry=registry, clusterwide=True, standalone=True))
    try:
        yield running
    finally:
        task.cancel()
        if stopping is not None:
            stopping.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await registered.stop()


async def resumed(running: Running, *names: str, timeout_s: float = 20.0) -> None:
    """Once a (re)started operator has run every resume handler on ``names``: what a restart
    test waits for before asserting that nothing was diagnosed again."""
    wanted = {("default", name) for name in names}
    async with asyncio.timeout(timeout_s):
        while not wanted <= running.resumed:
            await asyncio.sleep(0.05)


def obj(api: Any, name: str) -> dict[str, Any]:
    """The incident as the emulator holds it now."""
    return dict(api.objects[RESOURCE, "default", name])


async def wait_until(api: Any, name: str, done: Callable[[dict[str, Any]], bool],
                     seconds: float = 15.0) -> dict[str, Any]:
    """The incident once ``done(it)``; fails the test after ``seconds``."""
    for _ in range(int(seconds / 0.05)):
        await asyncio.sleep(0.05)  # the operator's turn first, as a caller polling in a loop expects
        current = obj(api, name)
        if done(current):
            return current
    raise AssertionError(f"{name} never got there: {obj(api, name)}")


async def wait_status(api: Any, name: str, phases: tuple[str, ...], seconds: float = 15.0) -> dict[str, Any]:
    """The incident's status once its phase is one of ``phases``."""
    current = await wait_until(api, name, lambda o: (o.get("status") or {}).get("phase") in phases,
                               seconds)
    return dict(current.get("status") or {})


def last_handled(current: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration kopf last handled on the object (spec, labels, annotations): stored
    once every handler of a change has run; empty before."""
    annotations = (current.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(LAST_HANDLED)
    return json.loads(text) if text else {}


async def handled(api: Any, name: str, check: Callable[[dict[str, Any]], bool],
                  seconds: float = 15.0) -> dict[str, Any]:
    """The incident once kopf has handled a change it can be told by: ``check`` holds on the
    configuration it last handled (e.g. a label just set). No handler for that change is
    still running or waiting for a retry then."""
    return await wait_until(api, name, lambda o: check(last_handled(o)), seconds)


async def wait_condition(api: Any, name: str, kind: str = "Confirmed", seconds: float = 10.0) -> dict[str, Any]:
    """The incident's condition ``kind`` once it has one."""
    def found(o: dict[str, Any]) -> bool:
        return any(c["type"] == kind for c in (o.get("status") or {}).get("conditions") or [])

    current = await wait_until(api, name, found, seconds)
    return dict(next(c for c in current["status"]["conditions"] if c["type"] == kind))


def _collection_url(api: Any) -> str:
    return f"{str(api.url).rstrip('/')}/apis/thinkfl.dev/v1alpha1/namespaces/default/failureincidents"


async def create_fi(api: Any, body: dict[str, Any]) -> None:
    """What `kubectl create -f` sends: a POST to the API (kmock then emits the watch event)."""
    async with aiohttp.ClientSession() as session, session.post(_collection_url(api), json=body) as response:
        assert response.status in (200, 201), await response.text()


async def merge_patch(api: Any, name: str, patch: dict[str, Any]) -> None:
    """What `kubectl annotate` / `kubectl patch --type merge` send: a PATCH to the API."""
    url = f"{_collection_url(api)}/{name}"
    async with aiohttp.ClientSession() as session, session.patch(
            url, json=patch, headers={"Content-Type": "application/merge-patch+json"}) as response:
        assert response.status == 200, await response.text()


async def diagnosed(api: Any, name: str) -> dict[str, Any]:
    """Create incident ``name`` and return its status once Diagnosed."""
    await create_fi(api, fi_body(name, {"service": "frontend", "time": T}))
    return await wait_status(api, name, ("Diagnosed",))


def alert_payload(status: str, fingerprint: str = "1a30ba71cca2921f") -> dict[str, Any]:
    """Alertmanager's webhook body (version 4) with one alert."""
    return {"version": "4", "status": status, "receiver": "thinkfl", "groupKey": "{}:{}",
            "alerts": [{"status": status, "labels": {"alertname": "HighLatency", "service": "frontend"},
                        "annotations": {"summary": "p95 latency of frontend above 500 ms"},
                        "startsAt": T, "endsAt": "0001-01-01T00:00:00Z",
                        "fingerprint": fingerprint}]}


async def post_alerts(port: int, payload: Any, expect: int = 200) -> Any:
    """POST to the operator's webhook, once its port is up (it starts with the operator)."""
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


def plain(value: Any) -> Any:
    """kmock's stored object as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
