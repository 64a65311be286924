"""An evaluation in forked worker processes: the same answers in label order, and a worker that
dies costs no fault."""

from __future__ import annotations

import gc
import os

import pytest

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.models import Candidate, Diagnosis, Incident
from thinkfl_operator.demo.synthetic import generate
from thinkfl_operator.engines.heuristic.engine import HeuristicEngine
from thinkfl_operator.evaluation import runner
from thinkfl_operator.evaluation.labels import Fault
from thinkfl_operator.telemetry.store import Store

INCIDENT = generate(fault="network_delay", service="recommendationservice")


def _faults(n: int) -> list[Fault]:
    t0 = INCIDENT.time_s
    return [Fault(t0 + 20 * i, f"t{i}", "", "recommendationservice", "network_delay", "service")
            for i in range(n)]


def _answers(results: list[runner.FaultResult]) -> list[tuple[str, list[tuple[str, str, float]]]]:
    return [(r.fault.time_text, [(c.service, c.pod, c.score) for c in r.diagnosis.root_causes]
             if r.diagnosis else []) for r in results]


def test_forked_workers_give_the_serial_answers_in_label_order() -> None:
    faults = _faults(5)
    serial = runner.run(INCIDENT.store(), faults, HeuristicEngine(Settings()), jobs=1)
    seen: list[str] = []
    forked = runner.run(INCIDENT.store(), faults, HeuristicEngine(Settings()),
                        on_result=lambda r: seen.append(r.fault.time_text), jobs=2)
    assert _answers(forked) == _answers(serial)
    assert seen == [f.time_text for f in faults]
    assert all(r.diagnosis is not None for r in forked)


class _DiesInAWorker:
    """Answers every fault with the process that diagnosed it, but a worker process that takes
    the second one dies on it."""

    name = "dies"
    forkable = True

    def __init__(self) -> None:
        self.parent = os.getpid()
        self.dies_on: float | None = _faults(3)[1].time_s
        self.pids: set[int] = set()

    def diagnose(self, store: Store, incident: Incident) -> Diagnosis:
        if os.getpid() != self.parent and incident.time_s == self.dies_on:
            os._exit(3)  # killed: no exception, no result
        self.pids.add(os.getpid())
        return Diagnosis(root_causes=[Candidate(service="s", score=1.0)], engine=str(os.getpid()))


def test_a_worker_that_dies_costs_no_fault() -> None:
    engine = _DiesInAWorker()
    results = runner.run(INCIDENT.store(), _faults(4), engine, jobs=2)
    assert [r.fault.time_text for r in results] == ["t0", "t1", "t2", "t3"]
    assert all(r.diagnosis is not None and not r.error for r in results)
    # what the dead worker left (the fault it died on, and its next) was diagnosed here
    assert [r.diagnosis.engine for r in results if r.diagnosis] == [str(os.getpid())] * 4


def test_this_process_takes_every_jobs_th_fault_and_workers_the_rest() -> None:
    engine = _DiesInAWorker()
    engine.dies_on = None
    results = runner.run(INCIDENT.store(), _faults(6), engine, jobs=3)
    here = [r.diagnosis.engine == str(os.getpid()) for r in results if r.diagnosis]
    assert here == [True, False, False, True, False, False]


def test_an_engine_that_is_not_forkable_runs_in_this_process() -> None:
    engine = _DiesInAWorker()
    engine.forkable = False  # type: ignore[misc]
    results = runner.run(INCIDENT.store(), _faults(3), engine, jobs=4)
    assert all(r.diagnosis is not None for r in results)
    assert engine.pids == {os.getpid()}


def test_auto_without_a_model_forks_like_the_deterministic_engine() -> None:
    from thinkfl_operator.engines.diagnose import make_engine

    assert getattr(make_engine("auto", Settings()), "forkable", False)
    assert getattr(make_engine("heuristic", Settings()), "forkable", False)


class _Thresholds:
    """Records the collector's thresholds each time it diagnoses; raises on ``fails_on``."""

    name = "thresholds"
    forkable = False

    def __init__(self, fails_on: float | None = None) -> None:
        self.seen: list[tuple[int, int, int]] = []
        self.fails_on = fails_on

    def diagnose(self, store: Store, incident: Incident) -> Diagnosis:
        self.seen.append(gc.get_threshold())
        if incident.time_s == self.fails_on:
            raise RuntimeError("engine bug")
        return Diagnosis(root_causes=[Candidate(service="s", score=1.0)], engine="t")


def test_a_run_collects_young_objects_less_often_and_puts_the_thresholds_back() -> None:
    before = gc.get_threshold()
    engine = _Thresholds()
    runner.run(INCIDENT.store(), _faults(2), engine)
    assert [t[0] for t in engine.seen] == [max(before[0], runner.GC_BATCH)] * 2
    assert [t[1:] for t in engine.seen] == [before[1:]] * 2
    assert gc.get_threshold() == before
    failing = _Thresholds(fails_on=_faults(2)[1].time_s)
    with pytest.raises(RuntimeError, match="engine bug"):
        runner.run(INCIDENT.store(), _faults(2), failing)
    assert gc.get_threshold() == before  # also when the run ends in an exception
