"""The real operator against an in-process Kubernetes API: kmock's emulator on 127.0.0.1.

``thinkfl demo --operator`` and ``bench/operator_throughput.py`` run it::

    async with sandbox(settings, open_store) as cluster:
        await cluster.create("checkout-slow", {"service": "frontend", "time": "..."})
        obj = await cluster.wait("checkout-slow")          # Diagnosed or Failed
        events = await cluster.events("checkout-slow")

Nothing is patched: kopf logs in to the emulator's URL, lists and watches it, patches status and
posts Events over HTTP; incidents are created with a POST as ``kubectl apply`` would, and read
back with GET and a watch as ``kubectl get``/``describe``/``get -w`` would. Learned about kmock
0.8: load its bundled resources or kopf waits forever for v1/namespaces and v1/events; run
cluster-wide (``GET /api/v1/namespaces`` answers 500); cancel the operator task to stop it fast;
it keeps every version of every object, so memory grows with the load.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import kmock
import kopf

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core import rfc3339
from thinkfl_operator.core.models import Incident
from thinkfl_operator.incident.status import TERMINAL
from thinkfl_operator.kube.crd import resource_info
from thinkfl_operator.kube.handlers import register
from thinkfl_operator.kube.runner import StoreFactory
from thinkfl_operator.kube.sandbox_api import KubectlEmulator
from thinkfl_operator.kubeapi.client import GROUP, PLURAL, VERSION
from thinkfl_operator.kubeapi.incidents import IncidentApi
from thinkfl_operator.telemetry.store import Store

KIND = "FailureIncident"
RESOURCE = f"{GROUP}/{VERSION}/{PLURAL}"
API_VERSION = f"{GROUP}/{VERSION}"
STARTUP_TIMEOUT_S = 30.0


class Emulator(KubectlEmulator):
    """kmock's emulator plus what an API server does on writes that kopf and kubectl rely on:
    a name from ``generateName`` (kopf names its Events so), a ``uid`` and a
    ``creationTimestamp`` on create, and a new ``resourceVersion`` on every write (kmock's
    documented way: inherit for special field treatment). Without versions kopf cannot tell a
    stale watch event from the current object: it patches the body and the status in two
    requests, and would handle the event of the first as if the second had not happened.

    It also forgets the requests it has finished serving (unless ``keep_requests``, for tests
    that read them back): kmock keeps every request for test assertions and matches each new one
    against that whole log, so a long run slows down quadratically (200 incidents: ~85 s
    instead of ~15 s, all of it in kmock's matching). What a real kubectl reads besides (list
    kinds, field selectors, Tables, OpenAPI, discovery names) is ``sandbox_api``'s.
    """

    #: Keep every request served (kmock's default), for tests that assert on them.
    keep_requests = False

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._serving: set[int] = set()  # ids of the requests not answered yet (watches stay)
        self._versions = itertools.count(1)

    async def _handle(self, request: kmock.Request) -> Any:
        writes = (kmock.action.CREATE, kmock.action.UPDATE)
        if request.action in writes and isinstance(request.data, dict):
            meta = request.data.setdefault("metadata", {})
            meta["resourceVersion"] = str(next(self._versions))
        if request.action == kmock.action.CREATE and isinstance(request.data, dict):
            meta = request.data["metadata"]
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", rfc3339.format_utc(datetime.now(UTC)))
        self._serving.add(id(request))
        if not self.keep_requests:
            self._requests[:] = [r for r in self._requests if id(r) in self._serving]
        try:
            return await super()._handle(request)
        finally:
            self._serving.discard(id(request))

    def watched(self, plural: str) -> bool:
        """True while someone watches ``plural`` (iterating kmock yields the requests kept)."""
        return any(r.action == kmock.action.WATCH and r.resource is not None
                   and r.resource.plural == plural for r in self)


@dataclass(frozen=True)
class SameEvidence:
    """A store factory that gives every incident ``make()``; it pickles when ``make`` does (a
    bound ``SyntheticIncident.store``), so the diagnoses can run in worker processes."""

    make: Callable[[], Store]

    def __call__(self, incident: Incident, settings: Settings) -> Store:
        return self.make()


class Cluster:
    """The running emulator and operator, seen through the Kubernetes API as a client sees it."""

    def __init__(self, url: str, session: aiohttp.ClientSession, api: Emulator | None = None) -> None:
        self.api = api  # None when the emulator serves from another process
        self.url = url.rstrip("/")
        self._session = session
        #: name → monotonic time the watch first saw each phase of it.
        self.reached: dict[str, dict[str, float]] = {}
        self._changed = asyncio.Condition()
        #: Set once our own watch is established.
        self.watched = asyncio.Event()

    def path(self, namespace: str, name: str = "") -> str:
        base = f"{self.url}/apis/{API_VERSION}/namespaces/{namespace}/{PLURAL}"
        return f"{base}/{name}" if name else base

    async def create(self, name: str, spec: Mapping[str, Any], namespace: str = "default") -> float:
        """POST a FailureIncident (what ``kubectl apply`` sends); the monotonic time it returned."""
        body = {"apiVersion": API_VERSION, "kind": KIND,
                "metadata": {"name": name, "namespace": namespace, "generation": 1}, "spec": dict(spec)}
        async with self._session.post(self.path(namespace), json=body) as response:
            if response.status not in (200, 201):
                raise RuntimeError(f"creating {namespace}/{name}: HTTP {response.status}: "
                                   f"{(await response.text())[:300]}")
        return time.monotonic()

    async def patch(self, name: str, patch: Mapping[str, Any], namespace: str = "default") -> None:
        """A JSON merge patch (what ``kubectl annotate`` / ``kubectl patch --type merge`` send)."""
        headers = {"Content-Type": "application/merge-patch+json"}
        async with self._session.patch(self.path(namespace, name), json=dict(patch),
                                       headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"patching {namespace}/{name}: HTTP {response.status}: "
                                   f"{(await response.text())[:300]}")

    async def delete(self, name: str, namespace: str = "default") -> None:
        """``kubectl delete fi NAME``; the watch forgets the phases it saw of it."""
        async with self._session.delete(self.path(namespace, name)) as response:
            if response.status not in (200, 202):
                raise RuntimeError(f"deleting {namespace}/{name}: HTTP {response.status}: "
                                   f"{(await response.text())[:300]}")

    async def get(self, name: str, namespace: str = "default") -> dict[str, Any]:
        """GET one FailureIncident (``kubectl get fi NAME -o json``)."""
        return await self._json(self.path(namespace, name))

    async def incidents(self, namespace: str = "default") -> list[dict[str, Any]]:
        """GET the namespace's FailureIncidents (``kubectl get fi``)."""
        items: list[dict[str, Any]] = (await self._json(self.path(namespace)))["items"]
        return items

    async def events(self, name: str, namespace: str = "default") -> list[dict[str, Any]]:
        """The Events posted about one incident, oldest first (what ``kubectl describe`` lists)."""
        listed = await self._json(f"{self.url}/api/v1/namespaces/{namespace}/events")
        mine = [e for e in listed["items"] if e.get("involvedObject", {}).get("kind") == KIND
                and e["involvedObject"].get("name") == name]
        return sorted(mine, key=lambda e: str(e.get("firstTimestamp") or ""))

    async def events_until(self, name: str, reasons: tuple[str, ...] = TERMINAL,
                           timeout_s: float = 5.0, namespace: str = "default") -> list[dict[str, Any]]:
        """The incident's Events once one has a reason in ``reasons`` (kopf posts them from a
        queue, so they can arrive just after the status); what there is after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            events = await self.events(name, namespace)
            if any(e.get("reason") in reasons for e in events) or time.monotonic() > deadline:
                return events
            await asyncio.sleep(0.02)

    async def wait(self, name: str, phases: tuple[str, ...] = TERMINAL,
                   timeout_s: float = 60.0, namespace: str = "default") -> dict[str, Any]:
        """The object once the watch saw it in one of ``phases``; TimeoutError after ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s), self._changed:
                await self._changed.wait_for(lambda: self.first(name, phases) is not None)
        except TimeoutError:
            raise TimeoutError(f"{namespace}/{name} not {' or '.join(phases)} after {timeout_s:.0f} s; "
                               f"phases seen: {sorted(self.reached.get(name, {})) or 'none'}") from None
        return await self.get(name, namespace)

    def first(self, name: str, phases: tuple[str, ...] = TERMINAL) -> float | None:
        """The monotonic time the watch first saw ``name`` in one of ``phases``, if it did."""
        seen = [t for p, t in self.reached.get(name, {}).items() if p in phases]
        return min(seen) if seen else None

    async def _json(self, url: str) -> dict[str, Any]:
        async with self._session.get(url) as response:
            if response.status != 200:
                raise RuntimeError(f"GET {url}: HTTP {response.status}: {(await response.text())[:300]}")
            payload: dict[str, Any] = await response.json()
            return payload

    async def watch(self) -> None:
        """``kubectl get fi -A -w``: record when each object first shows each phase."""
        url = f"{self.url}/apis/{API_VERSION}/{PLURAL}?watch=true"
        async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as response:
            self.watched.set()
            buffer = b""
            async for chunk in response.content.iter_any():
                now = time.monotonic()
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in filter(None, (ln.strip() for ln in lines)):
                    event = json.loads(line)
                    await self._seen(event.get("type"), event.get("object") or {}, now)

    async def _seen(self, kind: str | None, obj: Mapping[str, Any], now: float) -> None:
        phase = (obj.get("status") or {}).get("phase")
        name = (obj.get("metadata") or {}).get("name")
        if kind == "DELETED" and name:
            self.reached.pop(name, None)
        elif phase and name and phase not in self.reached.setdefault(name, {}):
            self.reached[name][phase] = now
            async with self._changed:
                self._changed.notify_all()


@contextlib.asynccontextmanager
async def emulator(kind: type[Emulator] = Emulator) -> AsyncIterator[Emulator]:
    """kmock's emulator (``kind``: Emulator or a subclass) serving the bundled resources and
    FailureIncidents on 127.0.0.1."""
    async with kind() as api, kmock.Server(api):
        with warnings.catch_warnings():  # kmock 0.8 reads its bundle with a deprecated call
            warnings.simplefilter("ignore", DeprecationWarning)
            api.resources.load_bundled()
        api.resources[RESOURCE] = resource_info()
        yield api


def serve_emulator(ready: Any, stop: Any) -> None:
    """The emulator in a process of its own (its work measured apart, as a real API server's
    would be): its URL sent on the pipe end ``ready``; served until the event ``stop`` is set."""
    async def serve() -> None:
        async with emulator() as api:
            ready.send(str(api.url))
            while not stop.is_set():
                await asyncio.sleep(0.1)

    asyncio.run(serve())


@contextlib.asynccontextmanager
async def sandbox(settings: Settings, open_store: StoreFactory, quiet: bool = True,
                  processes: bool = False, api_url: str | None = None) -> AsyncIterator[Cluster]:
    """kmock's Kubernetes API on 127.0.0.1 with the real operator running against it.

    Yields once the operator watches FailureIncidents; on exit the operator task is cancelled and
    the server stopped. ``quiet`` keeps kopf's own log lines below WARNING out of the output.
    Diagnoses run in threads of this process unless ``processes`` (then ``open_store`` must
    pickle, e.g. ``SameEvidence``): the demo's and the tests' factories are closures.
    ``api_url`` is an emulator serving elsewhere (``serve_emulator``); else one runs here.
    """
    kopf_logger = logging.getLogger("kopf")
    level = kopf_logger.level
    if quiet:
        kopf_logger.setLevel(logging.WARNING)
    # Nothing on a host port: the webhook and metrics port of the operator is not served here.
    settings = settings.model_copy(
        update={"operator": settings.operator.model_copy(update={"http_port": 0})})
    registry = kopf.OperatorRegistry()
    async with contextlib.AsyncExitStack() as stack:
        # (An emulator is falsy while it keeps no request: compare with None.)
        api = None if api_url else await stack.enter_async_context(emulator())
        url = str(api.url) if api is not None else str(api_url)

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=url, insecure=True)

        registered = register(registry, settings, open_store, api=IncidentApi(host=url),
                              processes=processes)
        ready = asyncio.Event()
        operator = asyncio.create_task(
            kopf.operator(registry=registry, clusterwide=True, standalone=True, ready_flag=ready),
            name="sandbox-operator")
        async with aiohttp.ClientSession() as session:
            cluster = Cluster(url, session, api)
            watch: asyncio.Task[None] | None = None
            try:
                # Before our own watch, which would also count as one.
                await _started(lambda: api.watched(PLURAL) if api is not None else ready.is_set(), operator)
                watch = asyncio.create_task(cluster.watch(), name="sandbox-watch")
                await asyncio.wait_for(cluster.watched.wait(), STARTUP_TIMEOUT_S)
                yield cluster
            finally:
                for task in (operator, watch):
                    if task is not None:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                await registered.stop()  # the cancelled operator runs no cleanup handler
                kopf_logger.setLevel(level)


async def _started(watching: Callable[[], bool], operator: asyncio.Task[None]) -> None:
    """Wait until kopf watches FailureIncidents (``watching``: the emulator here saw its watch,
    or kopf said it is ready); raise at once if the operator died."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not watching():
        if operator.done():
            operator.result()  # re-raises what stopped it
            raise RuntimeError("the operator stopped before it watched any incident")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the operator did not watch {RESOURCE} within {STARTUP_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.01)


async def diagnose_one(settings: Settings, open_store: StoreFactory, name: str, spec: Mapping[str, Any],
                       timeout_s: float = 60.0) -> tuple[dict[str, Any], list[dict[str, Any]], float]:
    """One incident through a fresh sandbox: the object in its terminal phase, its Events, and
    the seconds from the create to that phase."""
    async with sandbox(settings, open_store) as cluster:
        created = await cluster.create(name, spec)
        obj = await cluster.wait(name, timeout_s=timeout_s)
        events = await cluster.events_until(name)
        return obj, events, (cluster.first(name) or time.monotonic()) - created
