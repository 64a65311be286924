"""An evaluation's preload reads spans, log lines and KPIs side by side: the same errors as one
after the other, no thread left behind (an evaluation forks after it), and tallies that add up
when readers share them."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.errors import DatasetError
from thinkfl_operator.demo.synthetic import generate
from thinkfl_operator.engines.heuristic.engine import HeuristicEngine
from thinkfl_operator.telemetry.memory import MemoryStore
from thinkfl_operator.telemetry.quality import DataQuality

INCIDENT = generate(fault="network_delay", service="recommendationservice")


def _broken(spans: bool, logs: bool, kpis: bool) -> MemoryStore:
    store = INCIDENT.store()

    def fails(what: str) -> DatasetError:
        return DatasetError(f"{what}.csv", "broken")

    if spans:
        def spans_between(*_: object) -> None:
            raise fails("spans")
        store.spans_between = spans_between  # type: ignore[method-assign,assignment]
    if kpis:
        def metrics(*_: object) -> None:
            raise fails("kpis")
        store.metrics = metrics  # type: ignore[method-assign,assignment]
    if logs:
        assert store.logs is not None

        def lines(*_: object) -> None:
            raise fails("logs")
        store.logs.logs = lines  # type: ignore[method-assign,assignment]
    return store


def _preload(store: MemoryStore) -> None:
    HeuristicEngine(Settings()).preload(store, INCIDENT.time_s, INCIDENT.time_s + 60)


@pytest.mark.parametrize(("spans", "logs", "kpis", "first"), [
    (True, True, True, "spans"), (False, True, True, "logs"), (False, False, True, "kpis"),
    (True, False, True, "spans"), (False, True, False, "logs"),
])
def test_the_first_error_in_reading_order_is_raised(spans: bool, logs: bool, kpis: bool, first: str) -> None:
    with pytest.raises(DatasetError, match=rf"{first}\.csv"):
        _preload(_broken(spans, logs, kpis))


def test_no_thread_outlives_the_preload() -> None:
    before = set(threading.enumerate())
    _preload(INCIDENT.store())
    assert set(threading.enumerate()) == before
    with pytest.raises(DatasetError):
        _preload(_broken(True, False, False))  # also when it ends in an error
    assert set(threading.enumerate()) == before


@pytest.fixture
def switching_often() -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave between any two bytecodes
    try:
        yield
    finally:
        sys.setswitchinterval(old)


@pytest.mark.usefixtures("switching_often")
def test_tallies_from_several_threads_add_up() -> None:
    quality = DataQuality()

    def tally() -> None:
        for _ in range(20_000):
            quality.add("repeated line")
            quality.merge(DataQuality(Counter({"merged": 1})))

    threads = [threading.Thread(target=tally) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert quality.skipped == {"repeated line": 80_000, "merged": 80_000}
    assert quality.notes() == ["skipped 80000 merged", "skipped 80000 repeated line"]
