"""The operator's connections: an incident's own closed when its diagnosis ends, the shared ones
opened once per process and closed when the operator stops; outside the operator, an engine
closes the model client it opened.

The operator as ``thinkfl run`` builds it (``kube.operator_registry``: its login through the
kubeconfig, live evidence from the settings, one LLM client), in this process against kmock's
API, with spans from a Jaeger stand-in and the model from a replaying OpenAI-compatible server.
Connections are counted as the kernel lists them: this process's established TCP sockets to a
stand-in's port (``/proc/self/net/tcp``), so a session a client still holds open shows however
it was made. The tests keep the objects that hold clients (the stores, the registry) alive, so
an unclosed one is not closed by the garbage collector instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kopf
import kubernetes
import pytest

from tests.fakes.openai_replay import ReplayServer
from tests.fakes.thinkfl_policy import WalkPolicy
from tests.fakes.trace_api import TraceApiServer
from tests.net import post_json
from thinkfl_operator.config.settings import LLMSettings, OperatorSettings, Settings, TracesSettings
from thinkfl_operator.core.models import Incident
from thinkfl_operator.demo.synthetic import generate
from thinkfl_operator.engines.diagnose import make_engine
from thinkfl_operator.engines.thinkfl.engine import open_chat
from thinkfl_operator.kube import live_stores, operator_registry
from thinkfl_operator.kube.sandbox import RESOURCE, sandbox
from thinkfl_operator.telemetry.store import Store

INCIDENT = generate(fault="network_delay", service="recommendationservice")
TIME = "2026-11-01T10:40:00Z"
ESTABLISHED = "01"  # the state column of /proc/net/tcp


def connections_to(url: str) -> int:
    """This process's (and its worker processes') established TCP connections to the port of
    ``url``, once the garbage collector has closed those nothing refers to any more (what is
    counted is what a client still holds open: a collected connection is closed either way).

    Without the collection a connection may be counted that is only garbage: one held by a
    reference cycle (an answer kept by its exception's traceback, as Jaeger's api_v3 probe's
    404 once was) is outside its session's pool, so ``close()`` cannot reach it."""
    gc.collect()
    port = urlsplit(url).port
    inodes = set()
    for pid in _family():
        with contextlib.suppress(OSError):  # ended since the listing
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):  # closed since the listing
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes.add(target[len("socket:["):-1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table, encoding="ascii") as rows:
            next(rows)  # the header
            for row in rows:
                fields = row.split()
                remote, state, inode = fields[2], fields[3], fields[9]
                if state == ESTABLISHED and inode in inodes and int(remote.rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


def _family() -> set[int]:
    """This process and its descendants (the diagnoses' worker processes and the server they
    are forked from)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(") ", 1)[1].split()[1])
    family, grown = {os.getpid()}, True
    while grown:
        more = {pid for pid, parent in parents.items() if parent in family} - family
        family |= more
        grown = bool(more)
    return family


@pytest.fixture
def kubeconfig(api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A kubeconfig naming kmock's API where the official client looks; its default
    configuration, which loading one sets for the whole process, is reset afterwards."""
    path = tmp_path / "kubeconfig"
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: kmock, cluster: {{server: "{str(api.url).rstrip('/')}"}}}}]
users: [{{name: tester, user: {{token: not-checked}}}}]
contexts: [{{name: kmock, context: {{cluster: kmock, user: tester}}}}]
current-context: kmock
""")
    # What KUBECONFIG says, but the client reads that variable once, when it is imported.
    monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    yield
    kubernetes.client.Configuration.set_default(None)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[kopf.OperatorRegistry]:
    """The operator of ``operator_registry(settings)``; stopped (not cancelled: its cleanup
    handlers run) when the block ends. The registry is yielded so that the caller keeps it, and
    the clients its handlers hold, from being collected (which would close them too)."""
    stop = asyncio.Event()
    registry = operator_registry(settings)
    task = asyncio.create_task(kopf.operator(registry=registry, clusterwide=True, standalone=True,
                                             stop_flag=stop))
    try:
        yield registry
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def diagnosed(api: Any, name: str) -> dict[str, Any]:
    """Create the incident as ``kubectl create`` would; its status once Diagnosed or Failed."""
    await post_json(api, "/apis/thinkfl.dev/v1alpha1/namespaces/default/failureincidents", {
        "apiVersion": "thinkfl.dev/v1alpha1", "kind": "FailureIncident",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"service": "frontend", "time": TIME}})
    for _ in range(600):
        status = dict(api.objects[RESOURCE, "default", name].get("status") or {})
        if status.get("phase") in ("Diagnosed", "Failed"):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never ended: {dict(api.objects[RESOURCE, 'default', name])}")


class Kept:
    """The live store factory, keeping every store it opened (so none is collected, which
    would close its connections too)."""

    def __init__(self) -> None:
        self.stores: list[Store] = []
        self._open = live_stores()

    def __call__(self, incident: Incident, settings: Settings) -> Store:
        self.stores.append(self._open(incident, settings))
        return self.stores[-1]


@pytest.mark.asyncio
async def test_each_incident_closes_the_connections_of_its_store() -> None:
    kept = Kept()
    with TraceApiServer(INCIDENT.spans, flavor="jaeger", apis={"v1"}) as jaeger:
        settings = Settings(engine="heuristic", traces=TracesSettings(url=jaeger.url))
        async with sandbox(settings, kept) as cluster:
            for name in ("first", "second"):
                await cluster.create(name, {"service": "frontend", "time": TIME})
                obj = await cluster.wait(name)
                assert obj["status"]["phase"] == "Diagnosed", obj["status"]
                assert connections_to(jaeger.url) == 0
        assert len(kept.stores) == 2 and jaeger.requests  # the stores, alive, did fetch spans


@pytest.mark.asyncio
@pytest.mark.parametrize("where", [OperatorSettings(http_port=0, concurrency=1),
                                   OperatorSettings(http_port=0, worker_processes=False)],
                         ids=["worker-process", "threads"])
async def test_the_model_client_is_opened_once_and_closed_when_the_operator_stops(
        api: Any, kubeconfig: None, where: OperatorSettings) -> None:
    """Two incidents one after the other through the operator ``thinkfl run`` builds: after
    each, one connection to the model (the client of the one worker process, or of the
    operator's process with threads, reused by the second) and none to the tracing backend;
    once the operator stops, none to either."""
    with TraceApiServer(INCIDENT.spans, flavor="jaeger", apis={"v1"}) as jaeger, \
            ReplayServer(when_exhausted=WalkPolicy()) as llm:
        settings = Settings(engine="auto", llm=LLMSettings(base_url=llm.base_url),
                            traces=TracesSettings(url=jaeger.url), operator=where)
        open_after: list[tuple[int, int]] = []
        async with running(settings) as registry:
            for name in ("first", "second"):
                status = await diagnosed(api, name)
                assert status["phase"] == "Diagnosed" and status["engine"] == "thinkfl", status
                open_after.append((connections_to(jaeger.url), connections_to(llm.base_url)))
        stopped = (connections_to(jaeger.url), connections_to(llm.base_url))
        del registry  # held until here: its clients were closed by its cleanup, not collected
    assert llm.calls >= 2  # each incident talked to the model
    assert open_after == [(0, 1), (0, 1)]
    assert stopped == (0, 0)


def test_an_engine_closes_the_model_client_it_opened_not_a_shared_one() -> None:
    """Outside the operator (``thinkfl diagnose``) the engine opens its own client and closing
    the engine closes it; a client it was given stays open for its owner."""
    incident = Incident(time_s=INCIDENT.time_s, service="frontend")
    with ReplayServer(when_exhausted=WalkPolicy()) as llm:
        settings = Settings(llm=LLMSettings(base_url=llm.base_url))
        own = make_engine("thinkfl", settings)
        shared = open_chat(settings)
        given = make_engine("thinkfl", settings, chat=shared)
        for engine in (own, given):
            assert engine.diagnose(INCIDENT.store(), incident).engine == "thinkfl"
        opened = connections_to(llm.base_url)
        own.close()
        given.close()
        left = connections_to(llm.base_url)
        shared.close()
        assert (opened, left, connections_to(llm.base_url)) == (2, 1, 0)
