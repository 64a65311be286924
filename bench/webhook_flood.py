"""The Alertmanager webhook under a flood: liveness latency, incidents created, refusals.

The real operator (kopf, the webhook on its own thread, kopf's liveness endpoint) runs in a child
process with the default webhook settings and a token, against kmock's Kubernetes API emulator
(``thinkfl_operator.kube.sandbox.Emulator``) in a second child process, so the emulator's own
work is measured apart, as a real API server's would be; evidence is a small synthetic
incident, so the incidents the webhook creates are diagnosed while the flood goes on. This process then sends, within ``--seconds``:

* ``--posts`` authenticated posts (1 to 3 alerts each, fingerprints drawn from ``--distinct``, so
  repeats happen as Alertmanager re-sends groups) from ``--sources`` loopback addresses, each
  client retrying 429 and 503 after ``Retry-After`` as Alertmanager does;
* one payload of 10,000 alerts (read up to ``alerts.maxAlerts``);
* ``--unauthenticated`` posts without the token or with a wrong one.

A thread samples kopf's liveness ``/healthz`` and the webhook's ``/healthz`` every 20 ms. Printed:
their p50/p99/max, incidents created against the distinct fingerprints accepted, the answers by
status, and what the unauthenticated posts created (must be 0). Usage:
    python bench/webhook_flood.py [--posts 2000] [--seconds 30] [--sources 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import logging
import multiprocessing
import random
import socket
import statistics
import sys
import threading
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import kopf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr

from thinkfl_operator.alerts.payload import MAX_ALERTS, incident_name
from thinkfl_operator.config.logs import configure_logging
from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.models import Incident
from thinkfl_operator.demo.synthetic import generate
from thinkfl_operator.kube.handlers import register
from thinkfl_operator.kube.sandbox import RESOURCE, Emulator, resource_info
from thinkfl_operator.kubeapi.incidents import IncidentApi
from thinkfl_operator.telemetry.store import Store

TOKEN = "flood-bench-token"
SMALL = generate(fault="cpu_contention", service="cartservice", minutes=12, traces_per_minute=8)
STARTS_AT = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(SMALL.time_s))
LIST = "/apis/thinkfl.dev/v1alpha1/failureincidents"


def _store(incident: Incident, settings: Settings) -> Store:
    return SMALL.store()


def _api(ready: Any, stop: Any) -> None:
    """kmock's emulator serving FailureIncidents until ``stop``; its URL sent on ``ready``."""
    async def serve() -> None:
        async with Emulator() as api, kmock.Server(api):
            with warnings.catch_warnings():  # kmock 0.8 reads its bundle with a deprecated call
                warnings.simplefilter("ignore", DeprecationWarning)
                api.resources.load_bundled()
            api.resources[RESOURCE] = resource_info()
            ready.send(str(api.url))
            while not stop.is_set():
                await asyncio.sleep(0.1)

    asyncio.run(serve())


def _operator(api_url: str, http_port: int, liveness_port: int, stop: Any) -> None:
    """The operator as ``thinkfl run`` starts it (webhook on 127.0.0.1), against ``api_url``."""
    configure_logging("WARNING")
    logging.getLogger("kopf").setLevel(logging.CRITICAL)  # its shutdown complaints are not ours
    settings = Settings()
    settings = settings.model_copy(update={
        "alerts": settings.alerts.model_copy(update={"token": SecretStr(TOKEN), "namespace": "default"}),
        "operator": settings.operator.model_copy(update={"http_port": http_port})})
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=api_url, insecure=True)

    register(registry, settings, _store, api=IncidentApi(host=api_url), host="127.0.0.1")

    async def serve() -> None:
        task = asyncio.create_task(kopf.operator(
            registry=registry, clusterwide=True, standalone=True,
            liveness_endpoint=f"http://127.0.0.1:{liveness_port}/healthz"))
        while not stop.is_set() and not task.done():
            await asyncio.sleep(0.1)
        task.cancel()
        with contextlib.suppress(BaseException):
            await task

    asyncio.run(serve())


def _alert(fingerprint: str) -> dict[str, Any]:
    return {"status": "firing", "labels": {"alertname": "HighLatency", "service": "frontend"},
            "annotations": {"summary": "p99 latency above 2 s"}, "startsAt": STARTS_AT,
            "endsAt": "0001-01-01T00:00:00Z", "fingerprint": fingerprint}


def _payload(fingerprints: list[str]) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "receiver": "thinkfl", "alerts": [_alert(f) for f in fingerprints]}


class Sampler(threading.Thread):
    """GET a URL every 20 ms (blocking client, own thread) and keep each latency in seconds."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.latencies, self.errors = port, [], 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                connection.request("GET", "/healthz")
                connection.getresponse().read()
                connection.close()
                self.latencies.append(time.perf_counter() - started)
            except OSError:
                self.errors += 1
            self.stop.wait(0.02)


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str],
                statuses: Counter[int], retries: int = 20) -> int:
    """POST as Alertmanager does: 429 and 5xx retried after Retry-After (else 1 s)."""
    status = 0
    for _ in range(retries + 1):
        async with session.post(url, json=body, headers=headers) as response:
            status = response.status
            statuses[status] += 1
            await response.read()
            if status != 429 and status < 500:
                return status
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
    return status


async def _flood(args: argparse.Namespace, port: int) -> tuple[set[str], Counter[int], Counter[int], float]:
    url = f"http://127.0.0.1:{port}/alerts"
    good = {"Authorization": f"Bearer {TOKEN}"}
    rng = random.Random(7)
    pool = [f"{i:016x}" for i in range(args.distinct)]
    accepted: set[str] = set()
    statuses: Counter[int] = Counter()
    refused: Counter[int] = Counter()
    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(f"127.0.0.{2 + s}", 0), limit=0))
                for s in range(args.sources)]
    big = [f"b{i:015x}" for i in range(10_000)]
    started = time.monotonic()

    async def one(i: int) -> None:
        await asyncio.sleep(i * args.seconds / args.posts)
        chosen = rng.sample(pool, rng.randint(1, 3))
        if await _post(sessions[i % len(sessions)], url, _payload(chosen), good, statuses) == 200:
            accepted.update(chosen)

    async def bad(i: int) -> None:
        await asyncio.sleep(i * args.seconds / max(1, args.unauthenticated))
        headers = {} if i % 2 else {"Authorization": "Bearer nope"}
        async with sessions[i % len(sessions)].post(url, json=_payload([f"u{i:015x}"]), headers=headers) as r:
            refused[r.status] += 1

    async def huge() -> float:
        begun = time.monotonic()
        if await _post(sessions[0], url, _payload(big), good, statuses) == 200:
            accepted.update(big[:MAX_ALERTS])
        return time.monotonic() - begun

    try:
        results = await asyncio.gather(huge(), *(one(i) for i in range(args.posts)),
                                       *(bad(i) for i in range(args.unauthenticated)))
    finally:
        for session in sessions:
            await session.close()
    print(f"  posts answered in {time.monotonic() - started:.1f} s (sent over {args.seconds:.0f} s)")
    return accepted, statuses, refused, float(results[0])


async def _incidents(api_url: str) -> set[str]:
    async with aiohttp.ClientSession() as session, session.get(api_url + LIST) as response:
        return {o["metadata"]["name"] for o in (await response.json())["items"]}


def _wait_for(port: int, timeout_s: float = 60.0) -> None:
    """Until something listens on ``port``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout_s:.0f} s")


def _describe(name: str, latencies: list[float], errors: int) -> str:
    ms = sorted(x * 1000 for x in latencies)
    if not ms:
        return f"  {name}: no answer ({errors} errors)"
    p99 = ms[min(len(ms) - 1, round(0.99 * len(ms)) - 1)]
    return (f"  {name}: {len(ms)} samples, p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, "
            f"max {ms[-1]:.1f} ms, errors {errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--sources", type=int, default=10)
    parser.add_argument("--distinct", type=int, default=1500, help="fingerprints the posts draw from")
    parser.add_argument("--unauthenticated", type=int, default=200)
    args = parser.parse_args()
    from tests.integration.conftest import free_port

    http_port, liveness_port = free_port(), free_port()
    receive, send = multiprocessing.Pipe(duplex=False)
    stop, stop_api = multiprocessing.Event(), multiprocessing.Event()
    api = multiprocessing.Process(target=_api, args=(send, stop_api), daemon=True)
    api.start()
    api_url = receive.recv()
    # Not a daemon: a daemonic process may not start the diagnoses' worker processes.
    child = multiprocessing.Process(target=_operator, args=(api_url, http_port, liveness_port, stop))
    child.start()
    _wait_for(liveness_port)
    _wait_for(http_port)
    samplers = {"kopf liveness /healthz": Sampler(liveness_port), "webhook /healthz": Sampler(http_port)}
    for sampler in samplers.values():
        sampler.start()
    time.sleep(1.0)
    print(f"webhook flood: {args.posts} authenticated posts over {args.seconds:.0f} s from {args.sources} "
          f"sources, one {10_000}-alert payload, {args.unauthenticated} unauthenticated posts")
    accepted, statuses, refused, big_s = asyncio.run(_flood(args, http_port))
    for sampler in samplers.values():
        sampler.stop.set()
        sampler.join()
    names = asyncio.run(_incidents(api_url))
    stop.set()  # the operator first: it must not outlive its API
    child.join(30)
    stop_api.set()
    api.join(30)
    expected = {incident_name(f, STARTS_AT) for f in accepted}
    unauthenticated = names & {incident_name(f"u{i:015x}", STARTS_AT) for i in range(args.unauthenticated)}
    for name, sampler in samplers.items():
        print(_describe(name, sampler.latencies, sampler.errors))
    print(f"  answers to authenticated posts (tries included): {dict(sorted(statuses.items()))}")
    print(f"  the 10,000-alert payload answered in {big_s:.2f} s ({MAX_ALERTS} alerts read)")
    print(f"  incidents created: {len(names)}; distinct fingerprints accepted: {len(expected)}; "
          f"equal: {names == expected}")
    print(f"  unauthenticated posts: answers {dict(sorted(refused.items()))}, incidents created {len(unauthenticated)}")


if __name__ == "__main__":
    main()
