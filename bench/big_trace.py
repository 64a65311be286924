"""One live diagnosis of a huge trace: wall time and peak RSS against the chart's memory limit.

Builds a trace of ``--spans`` spans (100,000) over ``--pods`` pods (10,000; 100 services of 100
pods each, a 10-ary call tree, one slow and failing service) plus ``--normal`` small normal
traces spread over the hour around it, serves them from the Jaeger query stand-in
(``tests.fakes.trace_api``, api_v3 and v1 JSON, in a process of its own as a real Jaeger is),
and runs ``thinkfl diagnose --jaeger-url URL --trace-id ID`` (the deterministic engine, default
settings) in a subprocess, as the operator would diagnose one incident. Printed: the answer's
first lines, wall time, and the subprocess's peak RSS (``getrusage(RUSAGE_CHILDREN)``, read
before the stand-in's process ends), then whether ``operator.concurrency`` such diagnoses at
once fit a memory limit (``--limit-mib``, the chart's default).

    python bench/big_trace.py [--spans 100000] [--pods 10000] [--normal 2000] [--limit-mib 2048]
        [--api auto|v1|v3] [--profile cpu|mem]

``--profile cpu`` runs the diagnosis under cProfile and prints the top functions by cumulative
time; ``--profile mem`` under tracemalloc and prints the largest allocation sites at the peak
(both slow the run; their wall time and RSS are not the measurement).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.background import in_own_process
from tests.fakes.trace_api import TraceApiServer

from thinkfl_operator.settings import OperatorSettings

SERVICES = 100
FANOUT = 10
T0_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
BAD_SERVICE = 42  # its spans are slow and fail


def _pod_names(pods: int) -> tuple[np.ndarray, np.ndarray]:
    """(service name, Deployment-style pod name) of each pod index."""
    per = max(1, pods // SERVICES)
    idx = np.arange(pods)
    services = np.array([f"svc-{i // per:03d}" for i in idx])
    names = np.array([f"svc-{i // per:03d}-7d9c8b6f5-{i % per:05d}" for i in idx])
    return services, names


def big_trace(spans: int, pods: int, trace_id: str) -> pd.DataFrame:
    """``spans`` spans of one trace over ``pods`` pods: span i calls its children 10i+1..10i+10
    in parallel, 100 µs after it starts; its pod is i mod pods; each span's own time is 1-3 ms,
    plus 300 ms and an error status on the pods of service ``BAD_SERVICE``."""
    i = np.arange(spans)
    parent = np.where(i == 0, -1, (i - 1) // FANOUT)
    depth = np.zeros(spans, dtype=int)
    for k in range(1, spans):  # parents come first
        depth[k] = depth[parent[k]] + 1
    services, names = _pod_names(pods)
    pod = i % pods
    bad = (pod // max(1, pods // SERVICES)) == BAD_SERVICE
    duration = 1000 + (i * 7919) % 2000 + np.where(bad, 300_000, 0)
    for level in range(depth.max(), 0, -1):  # a parent lasts as long as its slowest child + own
        at = np.flatnonzero(depth == level)
        longest = np.zeros(spans, dtype=np.int64)
        np.maximum.at(longest, parent[at], duration[at])
        duration = duration + np.where(depth == level - 1, longest, 0)
    start = T0_US + depth * 100
    return pd.DataFrame({
        "trace_id": trace_id, "span_id": [f"{k + 1:016x}" for k in i],
        "parent_id": ["" if p < 0 else f"{p + 1:016x}" for p in parent],
        "service": services[pod], "pod": names[pod], "node": [f"node-{p % 50:02d}" for p in pod],
        "operation": [f"op-{p % 7}" for p in pod], "kind": np.where(i == 0, "server", "client"),
        "status": np.where(bad, "2", "0"), "start_us": start, "duration_us": duration,
    })


def normal_traces(count: int, pods: int, seed: int = 7) -> pd.DataFrame:
    """``count`` ten-span traces, healthy (own times 1-3 ms, as the big trace's), spread over the hour before and the ten minutes
    after the big trace, each through the root's service and nine random pods."""
    rng = np.random.default_rng(seed)
    services, names = _pod_names(pods)
    rows = []
    for k in range(count):
        tid = f"{0xabc0000000000000 + k:016x}{k:016x}"
        t = T0_US + int(rng.integers(-3_600_000_000, 600_000_000))
        chosen = np.concatenate(([0], rng.integers(0, pods, FANOUT - 1)))
        for j, p in enumerate(chosen):
            rows.append((tid, f"{k:08x}{j + 1:08x}", "" if j == 0 else f"{k:08x}{1:08x}",
                         services[p], names[p], f"node-{p % 50:02d}", f"op-{p % 7}",
                         "server" if j == 0 else "client", "0", t + j * 100,
                         int(rng.integers(1_000, 3_000)) if j else 3_500))
    return pd.DataFrame(rows, columns=["trace_id", "span_id", "parent_id", "service", "pod", "node",
                                       "operation", "kind", "status", "start_us", "duration_us"])


#: Runs the CLI under tracemalloc and prints the largest allocation sites at the peak.
_TRACEMALLOC = """
import sys, tracemalloc
from thinkfl_operator.cli.main import main
tracemalloc.start(8)
peak_snapshot = None
try:
    main(sys.argv[1:])
finally:
    current, peak = tracemalloc.get_traced_memory()
    print(f"tracemalloc: current {current / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB")
    for stat in tracemalloc.take_snapshot().statistics("traceback")[:15]:
        print(f"{stat.size / 2**20:8.1f} MiB  {stat.count:9d} blocks")
        for line in stat.traceback.format()[-6:]:
            print("    " + line)
"""


def diagnose_command(url: str, trace_id: str, out: Path, profile: str) -> list[str]:
    diagnose = ["diagnose", "--jaeger-url", url, "--trace-id", trace_id, "--engine", "heuristic",
                "--json", str(out)]
    if profile == "cpu":
        return [sys.executable, "-m", "cProfile", "-s", "cumulative", "-m", "thinkfl_operator.cli.main",
                *diagnose]
    if profile == "mem":
        return [sys.executable, "-c", _TRACEMALLOC, *diagnose]
    return [sys.executable, "-m", "thinkfl_operator.cli.main", *diagnose]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--normal", type=int, default=2000, help="small normal traces around it")
    parser.add_argument("--limit-mib", type=float, default=2048, help="the operator's memory limit")
    parser.add_argument("--api", default="auto", choices=("auto", "v1", "v3"))
    parser.add_argument("--profile", default="", choices=("", "cpu", "mem"))
    args = parser.parse_args()

    trace_id = "00000000000000000000000000b16b16"
    built = time.perf_counter()
    frame = pd.concat([big_trace(args.spans, args.pods, trace_id), normal_traces(args.normal, args.pods)],
                      ignore_index=True)
    print(f"trace {trace_id}: {args.spans:,} spans over {frame['pod'].nunique():,} pods, plus "
          f"{args.normal:,} normal traces ({len(frame):,} spans in all); built in "
          f"{time.perf_counter() - built:.1f} s", flush=True)
    env = {**os.environ, "THINKFL_TRACES__API": args.api, "THINKFL_LOG_LEVEL": "WARNING"}
    with tempfile.TemporaryDirectory() as tmp, \
            in_own_process(lambda: TraceApiServer(frame, flavor="jaeger"), timeout_s=300) as url:
        out = Path(tmp) / "answer.json"
        started = time.perf_counter()
        done = subprocess.run(diagnose_command(url, trace_id, out, args.profile), env=env,
                              capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    lines = done.stdout.splitlines()
    print("\n".join(lines if args.profile else lines[:12]))
    if done.returncode:
        print(f"exit {done.returncode}: {done.stderr.strip()[-2000:]}")
    concurrency = OperatorSettings().concurrency
    print(f"\nwall {wall:.1f} s, peak RSS {peak_mib:.0f} MiB (one diagnosis, exit {done.returncode})")
    print(f"operator.concurrency {concurrency} x {peak_mib:.0f} MiB = {concurrency * peak_mib:.0f} MiB "
          f"against a {args.limit_mib:.0f} MiB limit: "
          f"{'fits' if concurrency * peak_mib <= args.limit_mib else 'does NOT fit'}")


if __name__ == "__main__":
    main()
