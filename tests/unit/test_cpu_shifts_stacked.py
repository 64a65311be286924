"""CPU shifts computed for all series at once: each series' own numbers, bit for bit."""

from __future__ import annotations

import numpy as np

from thinkfl_operator.engines.heuristic import resources
from thinkfl_operator.engines.heuristic.resources import (
    ABS_FLOOR,
    GUARD_S,
    MIN_HISTORY,
    REL_FLOOR,
    CpuShift,
)


def _shift(pod: str, service: str, kpi: str, ts: np.ndarray, values: np.ndarray, start_s: float,
           end_s: float) -> CpuShift | None:
    """One series on its own, as the engine computed it before the series were stacked: the
    reference, with numpy's own median."""
    ok = ~np.isnan(values)
    history = values[ok & (ts < start_s - GUARD_S)]
    window = values[ok & (ts >= start_s) & (ts < end_s)]
    if len(history) < MIN_HISTORY or len(window) == 0:
        return None
    median = float(np.median(history))
    scale = max(1.4826 * float(np.median(np.abs(history - median))), REL_FLOOR * abs(median), ABS_FLOOR)
    during = float(np.mean(window))
    return CpuShift(pod, service, kpi, median, during, (during - median) / scale)


def test_stacked_shifts_are_each_series_own() -> None:
    rng = np.random.default_rng(9)
    start, end = 1_700_000_000.0, 1_700_000_300.0
    for _ in range(200):
        series = []
        for i in range(int(rng.integers(1, 15))):
            n = int(rng.integers(0, 120))
            ts = np.sort(start - 1300.0 + rng.random(n) * 1700.0)
            values = rng.standard_normal(n) * 10.0 ** float(rng.integers(-3, 4)) + float(rng.integers(-2, 5))
            values[rng.random(n) < 0.1] = np.nan
            if rng.random() < 0.2:
                values[rng.random(n) < 0.5] = -0.0
            if rng.random() < 0.2:
                values = np.round(values)
            if rng.random() < 0.1:  # infinities: NaN medians or spreads, scaled as Python's max does
                values[rng.random(n) < 0.3] = rng.choice([np.inf, -np.inf])
            series.append((f"pod{i}", f"svc{i % 4}", "cpu", ts, values))
        together = resources._shifts(series, start, end)
        alone = [_shift(*s, start, end) for s in series]
        assert repr(together) == repr(alone)
