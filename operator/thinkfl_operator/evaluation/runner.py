"""Diagnose every labeled fault of a dataset and score the answers.

Faults are independent, so an engine that computes alone (``forkable``: no sockets, no
threads of its own) diagnoses them in ``jobs`` processes, this one and workers forked after
the day is loaded: each inherits the loaded data instead of reading it again, and only a
fault's index goes in and its result comes back. Results arrive in label order either way.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass

from thinkfl_operator.core.errors import BackendError, NoEvidence
from thinkfl_operator.core.models import Diagnosis, Incident
from thinkfl_operator.engines.base import Engine
from thinkfl_operator.evaluation.grader import Grade, grade
from thinkfl_operator.evaluation.labels import Fault
from thinkfl_operator.evaluation.scores import mrr, pod_rank, recall_at, service_rank
from thinkfl_operator.telemetry.store import Store


@dataclass
class FaultResult:
    fault: Fault
    diagnosis: Diagnosis | None
    skipped: str = ""  # no data for this fault: left out of the scores
    error: str = ""  # the engine failed (e.g. LLM unreachable): counted as a miss
    seconds: float = 0.0

    @property
    def service_rank(self) -> int | None:
        return service_rank(self.diagnosis.root_causes, self.fault.service) if self.diagnosis else None

    @property
    def pod_rank(self) -> int | None:
        if not self.diagnosis or not self.fault.pod:
            return None
        return pod_rank(self.diagnosis.root_causes, self.fault.pod)

    @property
    def grade(self) -> Grade | None:
        if not self.diagnosis:
            return None
        return grade(self.diagnosis.root_causes, self.fault.service, self.fault.pod)


@dataclass
class Summary:
    scored: int
    skipped: int
    recall: dict[int, float]
    mrr: float
    pod_r1: float | None


def default_jobs() -> int:
    """Processes an evaluation uses by default: one per CPU this process may run on, at most 4."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def run(store: Store, faults: list[Fault], engine: Engine,
        on_result: Callable[[FaultResult], None] | None = None, jobs: int = 1) -> list[FaultResult]:
    """One incident per fault: its time only, no trace ID and no service, as an alert gives.
    ``jobs`` > 1: in that many forked processes, when the engine is ``forkable``."""
    with _few_collections():
        preload = getattr(engine, "preload", None)
        if preload is not None and faults:
            preload(store, min(f.time_s for f in faults), max(f.time_s for f in faults))
        forked = jobs > 1 and len(faults) > 1 and getattr(engine, "forkable", False) \
            and "fork" in multiprocessing.get_all_start_methods()
        results = []
        for result in (_forked(store, faults, engine, jobs) if forked else _each(store, faults, engine)):
            results.append(result)
            if on_result:
                on_result(result)
        return results


#: Container objects allocated (net) between two young-generation collections during a run.
GC_BATCH = 50_000


@contextmanager
def _few_collections() -> Iterator[None]:
    """The cyclic collector's first threshold raised to ``GC_BATCH`` for a run (then put back).
    A run allocates its day's frames and caches once and keeps them; at the default (700) each
    young collection walks those survivors again and some end in a full one over every object
    of the process: measured ~63 collections a run of 2023-01-29, ~36 ms, against one or two.
    Nothing is left uncollected: the collector still runs, and objects die by reference count
    as before."""
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], GC_BATCH), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


#: What forked workers read (set before the pool forks them; never pickled).
_shared: tuple[Store, list[Fault], Engine] | None = None


def _one(index: int) -> FaultResult:
    assert _shared is not None, "set before the workers are forked"
    store, faults, engine = _shared
    return next(_each(store, [faults[index]], engine))


def _forked(store: Store, faults: list[Fault], engine: Engine, jobs: int) -> Iterator[FaultResult]:
    """``_each`` in this process and ``jobs`` − 1 forked workers, in label order: this process
    diagnoses every ``jobs``-th fault from the first (one process fewer to start and to copy
    pages for, and none idle: while it diagnoses one, the workers take the next). A worker that
    dies (killed, out of memory) costs no fault: the ones it left are diagnosed here."""
    global _shared
    _shared = (store, faults, engine)
    jobs = min(jobs, len(faults))
    try:
        with ProcessPoolExecutor(jobs - 1, mp_context=multiprocessing.get_context("fork")) as pool:
            theirs = {i: pool.submit(_one, i) for i in range(len(faults)) if i % jobs}
            for i, fault in enumerate(faults):
                if i in theirs:
                    try:
                        yield theirs[i].result()
                        continue
                    except BrokenProcessPool:
                        pass
                yield from _each(store, [fault], engine)
    finally:
        _shared = None


def _each(store: Store, faults: list[Fault], engine: Engine) -> Iterator[FaultResult]:
    for fault in faults:
        started = time.perf_counter()
        try:
            diagnosis = engine.diagnose(store, Incident(time_s=fault.time_s))
        except NoEvidence as exc:
            yield FaultResult(fault, None, skipped=str(exc))
            continue
        except BackendError as exc:
            yield FaultResult(fault, None, error=str(exc), seconds=time.perf_counter() - started)
            continue
        yield FaultResult(fault, diagnosis, seconds=time.perf_counter() - started)


def summarize(results: list[FaultResult]) -> Summary:
    scored = [r for r in results if not r.skipped]
    ranks = [r.service_rank for r in scored]
    pod_labeled = [r for r in scored if r.fault.pod]
    pod_r1 = recall_at([r.pod_rank for r in pod_labeled], 1) if pod_labeled else None
    return Summary(
        scored=len(scored),
        skipped=len(results) - len(scored),
        recall={k: recall_at(ranks, k) for k in (1, 3, 5, 10)},
        mrr=mrr(ranks),
        pod_r1=pod_r1,
    )
