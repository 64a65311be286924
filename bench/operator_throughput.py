"""Incidents through the real operator: throughput, create → Diagnosed latency, CPU, memory.

The kopf operator runs in this process (``thinkfl_operator.kube.sandbox``, as ``thinkfl demo
--operator``), its diagnoses in ``operator.concurrency`` worker processes as under ``thinkfl
run`` (``--threads``: in threads of this process), against kmock's Kubernetes API emulator in a
process of its own, so that the emulator's work is measured apart, as a real API server's would
be (``--api inline``: in this process, sharing its GIL). ``--count`` incidents are POSTed at
once (as ``kubectl create`` would); a watch records when each first shows phase Diagnosed.
Evidence is an instant in-memory store (a small synthetic incident, cpu_contention in
cartservice). Two passes, each in a fresh process so their numbers stand apart: engine
``heuristic``, then engine ``thinkfl`` against the replaying OpenAI-compatible server of
tests/fakes (in this process) driven by the scripted walking policy (answers instantly: what is
measured is the operator and the engine, not a model; the policy stops at the deepest slow span,
redis-cart under the injected cartservice, so its top cause is not the model's).

Printed besides the times: the CPU each part used per incident under the load (this process:
kopf, the handlers, this script's client and watch, the replay server; the worker processes;
kmock's process), which does not depend on how busy the machine is, and the load average,
which says how much of the machine the run had. Memory: this process's RSS, the workers' PSS
(kmock keeps every request and every object version: its growth is not counted). Usage:
    python bench/operator_throughput.py [--count 200] [--concurrency 4] [--engine heuristic|thinkfl]
                                        [--threads] [--api process|inline]
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
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

from thinkfl_operator.config.settings import OperatorSettings, Settings
from thinkfl_operator.demo.synthetic import generate
from thinkfl_operator.kube.sandbox import SameEvidence, sandbox, serve_emulator

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


@contextlib.contextmanager
def api_process() -> Iterator[tuple[str, int]]:
    """kmock's emulator in a process of its own: its URL and process id."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    stop = context.Event()
    process = context.Process(target=serve_emulator, args=(send, stop), daemon=True)
    process.start()
    try:
        yield receive.recv(), process.pid or 0
    finally:
        stop.set()
        process.join(30)


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used, all its threads (0: it ended)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(root: int) -> set[int]:
    """Every process below ``root`` (the workers, the server they fork from, the emulator)."""
    parents = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(") ", 1)[1].split()[1])
    found, more = set(), {root}
    while more:
        more = {pid for pid, parent in parents.items() if parent in more}
        found |= more
    return found


def worker_pids(api_pid: int) -> set[int]:
    """The processes below this one but the emulator's: the workers and their fork server."""
    return descendants(os.getpid()) - {api_pid} - (descendants(api_pid) if api_pid else set())


def pss_mib(pid: int) -> float:
    """The proportional set size of ``pid``: pages it shares (with the server the workers are
    forked from, with each other) split among the sharers."""
    with contextlib.suppress(OSError):
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_split(api_pid: int) -> dict[str, float]:
    """CPU seconds so far: this process (operator, and the emulator when it runs here), the
    worker processes, the emulator's own process."""
    return {"operator": cpu_s(os.getpid()), "workers": sum(cpu_s(p) for p in worker_pids(api_pid)),
            "emulator": cpu_s(api_pid) if api_pid else 0.0}


async def one_pass(engine: str, count: int, concurrency: int, processes: bool, apart: bool) -> None:
    base = Settings(engine=engine, log_level="WARNING",
                    operator=OperatorSettings(concurrency=concurrency, worker_processes=processes))
    with api_process() if apart else contextlib.nullcontext(("", 0)) as (api_url, api_pid), \
            llm(engine, base) as (settings, server):
        async with sandbox(settings, SameEvidence(SMALL.store), processes=processes,
                           api_url=api_url or None) as cluster:
            await asyncio.sleep(1.0)  # let the started operator settle
            idle = memory_mib()["VmRSS"]
            alone = await cluster.create("alone", SPEC)  # one incident on an idle operator first
            await cluster.wait("alone")
            alone = (cluster.first("alone") or alone) - alone
            asked = len(server.requests) if server else 0
            names = [f"load-{i:04d}" for i in range(count)]
            samples: list[float] = []
            sampler = asyncio.create_task(_sample(samples))
            cpu = cpu_split(api_pid)
            started = time.monotonic()
            created = dict(zip(names, await asyncio.gather(*(cluster.create(n, SPEC) for n in names)),
                               strict=True))
            objects = await asyncio.gather(*(cluster.wait(n, timeout_s=600) for n in names))
            done = time.monotonic()
            cpu = {k: v - cpu[k] for k, v in cpu_split(api_pid).items()}
            workers_pss = sum(pss_mib(p) for p in worker_pids(api_pid)) if processes else 0.0
            sampler.cancel()
            peak = memory_mib()
            asked = len(server.requests) - asked if server else 0
    _report(engine, count, concurrency, processes, cluster.reached, created, objects, started, done, alone,
            idle, max(samples, default=peak["VmRSS"]), peak["VmHWM"], asked, not apart, workers_pss)
    where = "operator process (kopf, this script's client" + ("" if apart else ", kmock") + \
        ("" if processes else ", the diagnoses' threads") + ")"
    print(f"  CPU per incident under load: {where} {cpu['operator'] / count * 1000:.0f} ms"
          + (f", diagnoses (worker processes) {cpu['workers'] / count * 1000:.0f} ms" if processes else "")
          + (f", kmock's emulator (own process) {cpu['emulator'] / count * 1000:.0f} ms" if apart else "")
          + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)


async def _sample(into: list[float]) -> None:
    while True:
        into.append(memory_mib()["VmRSS"])
        await asyncio.sleep(0.1)


def _report(engine: str, count: int, concurrency: int, processes: bool, reached: dict[str, dict[str, float]],
            created: dict[str, float], objects: list[dict[str, Any]], started: float, done: float,
            alone: float, idle: float, load_rss: float, hwm: float, asked: int, inline: bool,
            workers_pss: float) -> None:
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
    print(f"  RSS of this process (the operator{', kmock' if inline else ''}"
          f"{' and the replay server' if asked else ''}): idle {idle:.0f} MiB after startup, peak under "
          f"load {load_rss:.0f} MiB (VmHWM {hwm:.0f} MiB)"
          + (f"; worker processes and their fork server: PSS {workers_pss:.0f} MiB together after the "
             f"load" if processes else ""), flush=True)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {n}" for key, n in counter.most_common())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="incidents created at once")
    parser.add_argument("--concurrency", type=int, default=OperatorSettings().concurrency,
                        help="the operator's diagnoses at the same time (operator.concurrency)")
    parser.add_argument("--threads", action="store_true", help="diagnose in threads of the "
                        "operator's process (operator.worker_processes=false), not worker processes")
    parser.add_argument("--api", choices=("process", "inline"), default="process",
                        help="kmock's emulator in a process of its own (its CPU measured apart, as "
                        "a real API server's would be) or in this process, sharing its GIL")
    parser.add_argument("--engine", choices=ENGINES, help="one pass in this process (default: each "
                        "engine in a fresh process)")
    args = parser.parse_args()
    if args.engine:
        asyncio.run(one_pass(args.engine, args.count, args.concurrency, not args.threads,
                             args.api == "process"))
        return
    for engine in ENGINES:
        subprocess.run([sys.executable, __file__, "--engine", engine, "--count", str(args.count),
                        "--concurrency", str(args.concurrency), "--api", args.api,
                        *(["--threads"] if args.threads else [])], check=True)


if __name__ == "__main__":
    main()
