"""One live diagnosis of a huge trace: wall time and peak RSS against the chart's memory limit.

Builds a trace of ``--spans`` spans (100,000) over ``--pods`` pods (10,000; 100 services of 100
pods each, a 10-ary call tree, one slow and failing service) plus ``--normal`` small normal
traces spread over the hour around it, serves them from the Jaeger query stand-in
(``tests.fakes.trace_api``, api_v3 and v1 JSON, in a process of its own as a real Jaeger is),
and runs ``thinkfl diagnose --jaeger-url URL --trace-id ID`` (the deterministic engine, default
settings) in a subprocess, as the operator would diagnose one incident. Printed: the answer's
first lines, wall time, and the subprocess's peak RSS (its own rusage through ``wait4``: the
stand-in is a child too, and ``RUSAGE_CHILDREN`` would mix in any child ended before), then
whether ``operator.concurrency`` such diagnoses at once fit a memory limit (``--limit-mib``,
default the chart's ``resources.limits.memory``).

    python bench/big_trace.py [--spans 100000] [--pods 10000] [--normal 2000] [--limit-mib MiB]
        [--base-mib MiB] [--api auto|v1|v3] [--profile cpu|mem]

``--base-mib`` is the peak RSS of a small diagnosis (``--spans 1000 --pods 100 --normal 200``),
the imports: diagnoses run as threads of one process (``operator.worker_processes=false``) share
it (base + concurrency x (peak - base)); worker processes (the default) are counted whole, plus
the operator's process and the forkserver's (2 x base + concurrency x peak), an upper bound since
the workers share the forkserver's pages until they write them.

``--profile cpu`` runs the diagnosis under cProfile and prints the top functions by cumulative
time; ``--profile mem`` under tracemalloc and prints the largest allocation sites at the peak
(both slow the run; their wall time and RSS are not the measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.background import in_own_process
from tests.fakes.trace_api import TraceApiServer, frame_to_jaeger_v1, frame_to_otlp

from thinkfl_operator.config.settings import OperatorSettings

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


#: Runs the CLI under tracemalloc: a snapshot whenever the traced heap grew by a tenth, and at the
#: end the largest allocation sites of the biggest snapshot, tracemalloc's peak and pyarrow's
#: (pyarrow's buffers are outside tracemalloc's view).
_TRACEMALLOC = """
import sys, threading, time, tracemalloc
import pyarrow as pa
from thinkfl_operator.cli.main import main
tracemalloc.start(12)
best = [0, None]
done = threading.Event()
def watch():
    while not done.wait(0.5):
        current = tracemalloc.get_traced_memory()[0]
        if current > best[0] * 1.1:
            best[0], best[1] = current, tracemalloc.take_snapshot()
threading.Thread(target=watch, daemon=True).start()
try:
    main(sys.argv[1:])
finally:
    done.set()
    current, peak = tracemalloc.get_traced_memory()
    print(f"tracemalloc: peak {peak / 2**20:.0f} MiB; pyarrow pool peak "
          f"{pa.default_memory_pool().max_memory() / 2**20:.0f} MiB")
    if best[1] is not None:
        print(f"largest sites when the traced heap held {best[0] / 2**20:.0f} MiB:")
        keep = [tracemalloc.Filter(False, "<frozen importlib._bootstrap*>")]
        for stat in best[1].filter_traces(keep).statistics("traceback")[:12]:
            print(f"{stat.size / 2**20:8.1f} MiB  {stat.count:9d} blocks")
            for line in stat.traceback.format(limit=-5):
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


def run_measured(command: list[str], env: dict[str, str], tmp: Path) -> tuple[int, str, str, float]:
    """Exit code, stdout, stderr and peak RSS (MiB) of ``command``: the rusage of that one child
    (``wait4``, as ``getrusage(RUSAGE_CHILDREN)`` would give were it the only child ended)."""
    with open(tmp / "stdout", "w+") as stdout, open(tmp / "stderr", "w+") as stderr:
        child = subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        stdout.seek(0)
        stderr.seek(0)
        return child.returncode, stdout.read(), stderr.read(), usage.ru_maxrss / 1024  # KiB on Linux


def answers_by_id(big: pd.DataFrame, trace_id: str) -> dict[str, bytes]:
    """The huge trace's answers by ID, encoded once here: the stand-in would encode 100k spans
    on every fetch, slower than a real Jaeger reads a stored trace."""
    return {f"/api/v3/traces/{trace_id}": json.dumps({"result": frame_to_otlp(big, id_encoding="hex")}).encode(),
            f"/api/traces/{trace_id}": json.dumps(frame_to_jaeger_v1(big)).encode()}


def warm(url: str) -> None:
    """One api_v3 search over the huge trace's start, so the stand-in has encoded it once for
    searches before the diagnosis is timed (it keeps each trace's search JSON)."""
    start = datetime.fromtimestamp(T0_US / 1e6, UTC)
    params = {"query.service_name": "svc-000", "query.search_depth": "1",
              "query.start_time_min": (start - timedelta(seconds=1)).isoformat().replace("+00:00", "Z"),
              "query.start_time_max": (start + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")}
    requests.get(f"{url}/api/v3/traces", params=params, timeout=300).raise_for_status()


def chart_limit_mib() -> float:
    """The operator's memory limit in the chart's values.yaml, in MiB."""
    values = yaml.safe_load((Path(__file__).resolve().parents[1] / "helm" / "thinkfl-operator"
                             / "values.yaml").read_text("utf-8"))
    quantity = str(values["resources"]["limits"]["memory"])
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024**2}
    return float(quantity[:-2]) * units[quantity[-2:]] if quantity[-2:] in units else float(quantity) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--normal", type=int, default=2000, help="small normal traces around it")
    parser.add_argument("--limit-mib", type=float, default=chart_limit_mib(),
                        help="the operator's memory limit (default: the chart's)")
    parser.add_argument("--base-mib", type=float, default=0.0,
                        help="RSS of a small diagnosis (the imports), shared by concurrent ones")
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
    files = answers_by_id(frame[frame["trace_id"] == trace_id], trace_id)
    with tempfile.TemporaryDirectory() as tmp, \
            in_own_process(lambda: TraceApiServer(frame, flavor="jaeger", files=files), timeout_s=300) as url:
        warm(url)
        out = Path(tmp) / "answer.json"
        started = time.perf_counter()
        code, stdout, stderr, peak_mib = run_measured(diagnose_command(url, trace_id, out, args.profile),
                                                      env, Path(tmp))
        wall = time.perf_counter() - started
    lines = stdout.splitlines()
    print("\n".join(lines if args.profile else lines[:12] + [x for x in lines if "Note:" in x]))
    if code:
        print(f"exit {code}: {stderr.strip()[-2000:]}")
    concurrency = OperatorSettings().concurrency
    print(f"\nwall {wall:.1f} s, peak RSS {peak_mib:.0f} MiB (one diagnosis, exit {code})")
    if code:
        print("the diagnosis failed: no verdict on the memory limit")
        return
    need = concurrency * peak_mib
    print(f"operator.concurrency {concurrency} x {peak_mib:.0f} MiB = {need:.0f} MiB against a "
          f"{args.limit_mib:.0f} MiB limit: {'fits' if need <= args.limit_mib else 'does NOT fit'}")
    if args.base_mib:
        base = args.base_mib
        threads = base + concurrency * (peak_mib - base)  # one process: the imports shared
        workers = 2 * base + concurrency * peak_mib  # + the operator's and the forkserver's process
        for mode, need in (("threads", threads), ("worker processes", workers)):
            print(f"{mode}: {need:.0f} MiB: {'fits' if need <= args.limit_mib else 'does NOT fit'}")


if __name__ == "__main__":
    main()
