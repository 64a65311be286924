"""Diagnose every labeled fault of a dataset and score the answers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
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


def run(store: Store, faults: list[Fault], engine: Engine,
        on_result: Callable[[FaultResult], None] | None = None) -> list[FaultResult]:
    """One incident per fault: its time only, no trace ID and no service, as an alert gives."""
    preload = getattr(engine, "preload", None)
    if preload is not None and faults:
        preload(store, min(f.time_s for f in faults), max(f.time_s for f in faults))
    results = []
    for result in _each(store, faults, engine):
        results.append(result)
        if on_result:
            on_result(result)
    return results


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
