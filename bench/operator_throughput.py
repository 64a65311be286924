"""Incidents through the real operator: throughput, create → Diagnosed latency, memory.

The kopf operator runs in this process against kmock's in-process Kubernetes API
(``thinkfl_operator.kube.sandbox``, as ``thinkfl demo --operator``). ``--count`` incidents are
POSTed at once (as ``kubectl create`` would); a watch records when each first shows phase
Diagnosed. Evidence is an instant in-memory store (a small synthetic incident, cpu_contention
in cartservice). Two passes, each in a fresh process so their memory numbers stand apart:
engine ``heuristic``, then engine ``thinkfl`` against the replaying OpenAI-compatible server of
tests/fakes driven by the scripted walking policy (answers instantly: what is measured is the
operator and the engine, not a model; the policy stops at the deepest slow span, redis-cart
under the injected cartservice, so its top cause is not the model's). RSS is the whole process (operator, kmock, the replay
server and this script); kmock keeps every request and every object version, so part of the
growth under load is the emulator's, not the operator's. Usage:
    python bench/operator_throughput.py [--count 200] [--concurrency 4] [--engine heuristic|thinkfl]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.openai_replay import ReplayServer
from tests.fakes.thinkfl_policy import WalkPolicy

from thinkfl_operator.kube.sandbox import SameEvidence, sandbox
from thinkfl_operator.settings import OperatorSettings, Settings
from thinkfl_operator.synthetic import generate

ENGINES = ("heuristic", "thinkfl")
INJECTED = "cartservice"
SMALL = generate(fault="cpu_contention", service=INJECTED, minutes=12, traces_per_minute=8)
SPEC = {"service": "frontend", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(SMALL.time_s))}


def memory_mib() -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak so far) of this process, in MiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024  # kB
    return fields


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(q * len(ordered)) - 1)]


@contextlib.contextmanager
def llm(engine: str, settings: Settings) -> Iterator[tuple[Settings, ReplayServer | None]]:
    if engine != "thinkfl":
        yield settings, None
        return
    with ReplayServer([], when_exhausted=WalkPolicy()) as server:
        update = {"llm": settings.llm.model_copy(update={"base_url": server.base_url})}
        yield settings.model_copy(update=update), server


async def one_pass(engine: str, count: int, concurrency: int, processes: bool) -> None:
    base = Settings(engine=engine, log_level="WARNING",
                    operator=OperatorSettings(concurrency=concurrency, worker_processes=processes))
    with llm(engine, base) as (settings, server):
        async with sandbox(settings, SameEvidence(SMALL.store), processes=processes) as cluster:
            await asyncio.sleep(1.0)  # let the started operator settle
            idle = memory_mib()["VmRSS"]
            alone = await cluster.create("alone", SPEC)  # one incident on an idle operator first
            await cluster.wait("alone")
            alone = (cluster.first("alone") or alone) - alone
            asked = len(server.requests) if server else 0
            names = [f"load-{i:04d}" for i in range(count)]
            samples: list[float] = []
            sampler = asyncio.create_task(_sample(samples))
            started = time.monotonic()
            created = dict(zip(names, await asyncio.gather(*(cluster.create(n, SPEC) for n in names)),
                               strict=True))
            objects = await asyncio.gather(*(cluster.wait(n, timeout_s=600) for n in names))
            done = time.monotonic()
            sampler.cancel()
            peak = memory_mib()
            asked = len(server.requests) - asked if server else 0
    _report(engine, count, concurrency, processes, cluster.reached, created, objects, started, done, alone,
            idle, max(samples, default=peak["VmRSS"]), peak["VmHWM"], asked)


async def _sample(into: list[float]) -> None:
    while True:
        into.append(memory_mib()["VmRSS"])
        await asyncio.sleep(0.1)


def _report(engine: str, count: int, concurrency: int, processes: bool, reached: dict[str, dict[str, float]],
            created: dict[str, float], objects: list[dict[str, Any]], started: float, done: float,
            alone: float, idle: float, load_rss: float, hwm: float, asked: int) -> None:
    statuses = [o.get("status") or {} for o in objects]
    latencies = [reached[n]["Diagnosed"] - t for n, t in created.items() if "Diagnosed" in reached[n]]
    diagnosed = len(latencies)
    engines = Counter(s.get("engine", "-") for s in statuses)
    tops = Counter(s.get("topCause", "-") for s in statuses)
    last = max(reached[n]["Diagnosed"] for n in created if "Diagnosed" in reached[n])
    print(f"engine {engine}: {count} incidents created at once, operator concurrency {concurrency} "
          f"({'worker processes' if processes else 'threads'})")
    print(f"  Diagnosed {diagnosed}/{count}; status.engine {_counts(engines)}; "
          f"top cause {_counts(tops)} (injected: {INJECTED})"
          + (f"; {asked} LLM requests ({asked / count:.1f} per incident)" if asked else ""))
    print(f"  throughput {diagnosed / (last - started) * 60:.0f} incidents/min "
          f"(first POST → last Diagnosed {last - started:.1f} s; all waited {done - started:.1f} s)")
    if latencies:
        print(f"  create → Diagnosed: p50 {statistics.median(latencies):.2f} s, "
              f"p95 {pct(latencies, 0.95):.2f} s, max {max(latencies):.2f} s "
              f"(one incident alone on the idle operator, before the load: {alone * 1000:.0f} ms)")
    print(f"  process RSS (operator in-process with kmock{' and the replay server' if asked else ''}): "
          f"idle {idle:.0f} MiB after startup, peak under load {load_rss:.0f} MiB "
          f"(VmHWM {hwm:.0f} MiB)", flush=True)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {n}" for key, n in counter.most_common())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="incidents created at once")
    parser.add_argument("--concurrency", type=int, default=OperatorSettings().concurrency,
                        help="the operator's diagnoses at the same time (operator.concurrency)")
    parser.add_argument("--threads", action="store_true", help="diagnose in threads of the "
                        "operator's process (operator.worker_processes=false), not worker processes")
    parser.add_argument("--engine", choices=ENGINES, help="one pass in this process (default: each "
                        "engine in a fresh process)")
    args = parser.parse_args()
    if args.engine:
        asyncio.run(one_pass(args.engine, args.count, args.concurrency, not args.threads))
        return
    for engine in ENGINES:
        subprocess.run([sys.executable, __file__, "--engine", engine, "--count", str(args.count),
                        "--concurrency", str(args.concurrency), *(["--threads"] if args.threads else [])],
                       check=True)


if __name__ == "__main__":
    main()
