"""Measured spans kept between incidents of one store, so a day's evaluation measures once.

The cache holds one store's measured spans over a time range; a request inside the range is a
slice, a request outside it loads and measures that request's range (plus ``margin_s``; an
evaluation preloads the whole span of its faults first, so it measures once). Only
the last store is kept, so a long-running operator that opens a store per incident holds at
most one incident's data.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import pandas as pd

from thinkfl_operator.engines.heuristic.signals import Measured
from thinkfl_operator.telemetry.store import Store


class MeasuredCache:
    def __init__(self, measure: Callable[[pd.DataFrame], Measured]) -> None:
        self._measure = measure
        self.margin_s = 0.0  # extra seconds loaded on each side of a request
        self._store: weakref.ReferenceType[Store] | None = None
        self._range = (0.0, 0.0)
        self._measured: Measured | None = None

    def measured(self, store: Store, start_s: float, end_s: float) -> Measured:
        """The whole measurement, holding every span of ``store`` starting in [start_s, end_s)
        (loaded and measured when the kept range does not cover it)."""
        lo, hi = self._range
        if self._measured is None or self._store is None or self._store() is not store \
                or start_s < lo or end_s > hi:
            lo, hi = start_s - self.margin_s, end_s + self.margin_s
            raw = store.spans_between(int(lo * 1e6), int(hi * 1e6)).frame
            self._measured = self._measure(raw)
            self._store, self._range = weakref.ref(store), (lo, hi)
        return self._measured

    def between(self, store: Store, start_s: float, end_s: float) -> tuple[pd.DataFrame, Measured]:
        """Measured spans of ``store`` starting in [start_s, end_s), and the whole measurement."""
        measured = self.measured(store, start_s, end_s)
        lo, hi = positions(measured, start_s, end_s)
        return measured.frame.iloc[lo:hi], measured


def positions(measured: Measured, start_s: float, end_s: float) -> tuple[int, int]:
    """The rows [lo, hi) of ``measured.frame`` whose spans start in [start_s, end_s) (stores
    return spans sorted by start; the column read once per frame)."""
    t = measured.column("start_us")
    return int(t.searchsorted(int(start_s * 1e6))), int(t.searchsorted(int(end_s * 1e6)))
