"""Diagnoses in worker processes (``operator.worker_processes``, the default of ``thinkfl run``).

The real operator in ``kube.sandbox`` against kmock's emulator, with ``processes=True``: each
diagnosis runs in a worker process forked from a server that imported the use case once. The
store factories here are module-level classes, so they pickle; what they do in a worker (the
process they ran in, a store opened) is written to files under ``tmp_path``, since a worker's
memory is not this process's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import kopf
import pytest

from tests.integration.operator_harness import INCIDENT, T
from thinkfl_operator.config.settings import OperatorSettings, Settings
from thinkfl_operator.core.models import Incident
from thinkfl_operator.kube.handlers import register
from thinkfl_operator.kube.sandbox import SameEvidence, sandbox
from thinkfl_operator.telemetry.store import Store

SPEC = {"service": "frontend", "time": T}


class Recorded:
    """The incident's evidence; the id and niceness of each process that opened a store, one
    line each."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def __call__(self, incident: Incident, settings: Settings) -> Store:
        with self.log.open("a") as out:
            out.write(f"{os.getpid()} {os.nice(0)}\n")
        return INCIDENT.store()

    def lines(self) -> list[tuple[int, int]]:
        if not self.log.exists():
            return []
        return [(int(pid), int(nice)) for pid, nice in map(str.split, self.log.read_text().splitlines())]

    def pids(self) -> list[int]:
        return [pid for pid, _ in self.lines()]


class KillsItsWorkerOnce(Recorded):
    """The first store opened kills the worker process opening it (as the kernel's OOM killer
    would); the next ones are the incident's evidence."""

    def __call__(self, incident: Incident, settings: Settings) -> Store:
        first = not self.pids()
        store = super().__call__(incident, settings)
        if first:
            os.kill(os.getpid(), signal.SIGKILL)
        return store


class Hangs(Recorded):
    """A store that never comes: the diagnosis waits until its process is ended."""

    def __call__(self, incident: Incident, settings: Settings) -> Store:
        super().__call__(incident, settings)
        while True:
            time.sleep(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that ended but was not reaped yet is a zombie: ended all the same.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    return False


async def _until(check: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_incidents_are_diagnosed_in_worker_processes(tmp_path: Path) -> None:
    factory = Recorded(tmp_path / "pids")
    async with sandbox(Settings(), factory, processes=True) as cluster:
        for name in ("first", "second"):
            await cluster.create(name, SPEC)
        done = [await cluster.wait(name, timeout_s=60) for name in ("first", "second")]
        events = await cluster.events_until("second", ("Diagnosed",))
    assert [obj["status"]["phase"] for obj in done] == ["Diagnosed", "Diagnosed"]
    assert {obj["status"]["rootCauses"][0]["service"] for obj in done} == {"recommendationservice"}
    assert [e["reason"] for e in events] == ["Started", "Diagnosed"]
    pids = factory.pids()
    assert len(pids) == 2 and os.getpid() not in pids
    # Niced (operator.worker_nice, 10 by default) below this process.
    assert {nice for _, nice in factory.lines()} == {os.nice(0) + 10}


@pytest.mark.asyncio
async def test_a_worker_killed_mid_diagnosis_is_retried_in_a_new_one(tmp_path: Path) -> None:
    factory = KillsItsWorkerOnce(tmp_path / "pids")
    settings = Settings(operator=OperatorSettings(retries=2, retry_delay_s=0.1))
    async with sandbox(settings, factory, processes=True) as cluster:
        await cluster.create("killed", SPEC)
        retrying = await cluster.wait("killed", ("Diagnosing",), timeout_s=60)
        obj = await cluster.wait("killed", timeout_s=60)
    assert obj["status"]["phase"] == "Diagnosed" and obj["status"]["attempts"] == 2, obj["status"]
    killed, diagnosed = factory.pids()
    assert killed != diagnosed and not _alive(killed)
    assert retrying["status"]["phase"] == "Diagnosing"


@pytest.mark.asyncio
async def test_a_worker_lost_on_the_last_try_ends_failed_worker_lost(tmp_path: Path) -> None:
    factory = KillsItsWorkerOnce(tmp_path / "pids")
    settings = Settings(operator=OperatorSettings(retries=0))
    async with sandbox(settings, factory, processes=True) as cluster:
        await cluster.create("lost", SPEC)
        obj = await cluster.wait("lost", timeout_s=60)
    conditions = {c["type"]: c for c in obj["status"]["conditions"]}
    assert obj["status"]["phase"] == "Failed" and conditions["Diagnosed"]["reason"] == "WorkerLost"
    assert "the worker process diagnosing it died" in conditions["Diagnosed"]["message"]


@pytest.mark.asyncio
async def test_stopping_the_operator_ends_a_diagnosis_in_progress(tmp_path: Path) -> None:
    factory = Hangs(tmp_path / "pids")
    async with sandbox(Settings(), factory, processes=True) as cluster:
        await cluster.create("hanging", SPEC)
        await cluster.wait("hanging", ("Diagnosing",), timeout_s=60)
        await _until(factory.pids)
    (worker,) = factory.pids()
    await _until(lambda: not _alive(worker))


def test_a_store_factory_that_cannot_cross_processes_is_refused_at_once() -> None:
    with pytest.raises(TypeError, match="cannot be sent to worker processes"):
        register(kopf.OperatorRegistry(), Settings(), lambda *_: INCIDENT.store(), processes=True)


def test_same_evidence_of_a_synthetic_incident_crosses_processes() -> None:
    registered = register(kopf.OperatorRegistry(), Settings(), SameEvidence(INCIDENT.store),
                          processes=True)
    asyncio.run(registered.stop())
