"""``thinkfl bench``: how long evaluating a dataset folder takes against merely parsing it.

Prints the time to parse every CSV of the folder once with pyarrow (the floor any reader pays),
the time of a whole ``evaluate`` (a fresh store and engine, CSV reading included), their ratio,
the CPU time both take (every thread and process: on a machine of few cores the wall time of a
parallel evaluation is bounded by it), the per-incident diagnosis time once the data is loaded
(median and max of a further pass), and the peak resident memory of the process (and of its
largest forked worker).

One evaluation first, not counted (it warms the file cache, the lazy imports and the memory:
on the 2-core build machine, a virtual one that hands idle memory back to its host, the first
evaluation after a pause of some seconds took 1.1-1.2 s of CPU against 0.52-0.59 s for the
next ones, most of it in the first touch of fresh pages), then parse passes and evaluations
alternated, so both see the machine alike (one run on a shared machine swings by half); each
side is the median of its runs, and the range of the evaluations is printed too.
"""

from __future__ import annotations

import gc
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.csv as pacsv

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.engines.base import Engine
from thinkfl_operator.engines.diagnose import make_engine
from thinkfl_operator.evaluation import runner
from thinkfl_operator.evaluation.labels import Fault, read_faults
from thinkfl_operator.telemetry.open import open_dataset
from thinkfl_operator.telemetry.store import Store


def parse_pass(files: list[Path]) -> tuple[float, float]:
    """Wall and CPU seconds of parsing ``files`` once with pyarrow. Broken rows are skipped,
    as any reader must (real log files hold some)."""
    skip = pacsv.ParseOptions(invalid_row_handler=lambda _row: "skip")
    started, used = time.perf_counter(), cpu_seconds()
    for path in files:
        pacsv.read_csv(path, parse_options=skip)
    return time.perf_counter() - started, cpu_seconds() - used


def cpu_seconds() -> float:
    """CPU seconds used so far by this process (all its threads) and its reaped children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def bench_dataset(root: Path, settings: Settings, repeats: int = 3, jobs: int = 1) -> str:
    faults = read_faults(root)
    files = sorted(root.rglob("*.csv"))
    _evaluate_cold(root, faults, settings, jobs)  # the warm-up: not counted
    parses: list[tuple[float, float]] = []
    seconds, cpu, run = [], [], None
    for _ in range(repeats):  # alternated: both sides see the machine alike
        run = None  # one store alive at a time, none during a parse: the peak RSS is one evaluation's
        gc.collect()
        parses.append(parse_pass(files))
        run = _evaluate_cold(root, faults, settings, jobs)
        seconds.append(run.seconds)
        cpu.append(run.cpu)
    parse_s, parse_cpu = statistics.median(p[0] for p in parses), statistics.median(p[1] for p in parses)
    assert run is not None
    seconds.sort()
    evaluate_s = statistics.median(seconds)
    first, store, engine = run.results, run.store, run.engine
    second = runner.run(store, faults, engine)  # data cached: diagnosis time alone
    per_incident = [r.seconds for r in second if r.diagnosis is not None]
    summary = runner.summarize(first)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest worker
    lines = [
        f"dataset:               {root}",
        f"faults:                {len(faults)} ({summary.scored} with data)",
        f"parse CSVs (pyarrow):  {parse_s:.2f} s for {len(files)} files",
        (f"evaluate (cold):       {evaluate_s:.2f} s (median of {len(seconds)} after a warm-up: {seconds[0]:.2f}–{seconds[-1]:.2f} s; "
         f"{'1 process' if jobs == 1 else f'{jobs} processes'})"),
        f"ratio evaluate/parse:  {evaluate_s / parse_s:.1f}x" if parse_s > 0 else "ratio: n/a",
        f"CPU, all processes:    evaluate {statistics.median(cpu):.2f} s, parse {parse_cpu:.2f} s",
    ]
    if per_incident:
        lines.append(f"per incident (warm):   median {statistics.median(per_incident) * 1000:.0f} ms, "
                     f"max {max(per_incident) * 1000:.0f} ms")
    lines.append(f"service R@1:           {summary.recall[1]:.2%}, MRR {summary.mrr:.4f}")
    lines.append(f"peak RSS:              {peak_mib:.0f} MiB"
                 + (f" (a forked worker: {worker_mib:.0f} MiB, most of it shared)" if worker_mib else ""))
    return "\n".join(lines)


@dataclass
class _Run:
    seconds: float
    cpu: float  # seconds of CPU, every thread and forked worker
    results: list[runner.FaultResult]
    store: Store  # kept, with the engine, for a pass on loaded data
    engine: Engine


def _evaluate_cold(root: Path, faults: list[Fault], settings: Settings, jobs: int) -> _Run:
    """One whole evaluation from a fresh store and engine."""
    engine = make_engine("heuristic", settings)
    started, used = time.perf_counter(), cpu_seconds()
    store = open_dataset(root)
    results = runner.run(store, faults, engine, jobs=jobs)
    return _Run(time.perf_counter() - started, cpu_seconds() - used, results, store, engine)
