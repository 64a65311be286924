"""Statistics of two sides of rows from their counts per key (``_counted_stats``,
``_counted_medians``) give what the sorted pairs with their keys gave (the old code, kept here
as the oracle), bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from thinkfl_operator.engines.heuristic import signals
from thinkfl_operator.engines.heuristic.groupstats import group_counts, median_of_sorted
from thinkfl_operator.engines.heuristic.signals import MIN_BASELINE, MIN_WINDOW, Measured, Rows


def _old_sorted_median_mad(codes: np.ndarray, values: np.ndarray, counts: np.ndarray,
                           keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = (np.cumsum(counts) - counts)[keys]
    n = counts[keys]
    med = signals.segment_medians(values, starts, n)
    centre = np.full(len(counts), np.nan)
    centre[keys] = med
    per_value = centre[codes]
    deviations = np.abs(2 * values - 2 * per_value)
    falls = np.bincount(codes[values < per_value], minlength=len(counts))[keys]
    return med, signals.v_medians(deviations, starts, n, falls) / 2


def _old_stats(base: Rows, win: Rows, value: str, code: str) -> signals._Stats | None:
    w_codes, w_values = win.sorted_valid(code, value)
    b_codes, b_values = base.sorted_valid(code, value)
    if len(w_codes) == 0 or len(b_codes) == 0:
        return None
    groups = int(max(w_codes.max(), b_codes.max())) + 1
    w_n, b_n = group_counts(w_codes, groups), group_counts(b_codes, groups)
    wanted = (w_n >= MIN_WINDOW) & (b_n >= MIN_BASELINE)
    if not wanted.any():
        return None
    w_med = median_of_sorted(w_codes, w_values, groups)
    index = np.flatnonzero(wanted)
    b_med, b_mad = _old_sorted_median_mad(b_codes, b_values, b_n, index)
    return signals._Stats(index, w_med[index], w_n[index], b_med, b_mad)


def _random_measured(rng: np.random.Generator, n: int, keys: int) -> Measured:
    codes = rng.integers(-1, keys, n)
    values = rng.integers(-5, 50, n).astype(float)  # many ties
    values[rng.random(n) < 0.1] = np.nan
    values[rng.random(n) < 0.05] = -0.0
    if rng.random() < 0.3:
        values += rng.random(n).round(2)  # not integral: the lexsort path
    if rng.random() < 0.1:
        values[:] = np.nan
    return Measured(pd.DataFrame({"op_key": codes, "self_us": values}), pd.DataFrame(), pd.DataFrame())


def _sides(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    cut = int(rng.integers(0, n + 1))
    stop = min(n, cut + int(rng.integers(0, 120)))
    guard = int(rng.integers(0, 10))
    rows = np.arange(n)
    if rng.random() < 0.7:  # two runs around the window, as ``split`` makes them
        base = np.concatenate([rows[:max(cut - guard, 0)], rows[min(stop + guard, n):]])
    else:
        base = np.flatnonzero((rng.random(n) < 0.8) & ((rows < cut) | (rows >= stop)))
    return base, rows[cut:stop]


def test_counted_stats_are_the_sorted_pairs_ones() -> None:
    rng = np.random.default_rng(17)
    compared = 0
    for _ in range(400):
        n = int(rng.integers(0, 700))
        measured = _random_measured(rng, n, int(rng.integers(1, 15)))
        base_rows, win_rows = _sides(rng, n)
        base, win = Rows(measured, base_rows), Rows(measured, win_rows)
        expected = _old_stats(Rows(measured, base_rows), Rows(measured, win_rows), "self_us", "op_key")
        found = signals._stats(base, win, "self_us", "op_key")
        if expected is None:
            assert found is None
            continue
        compared += 1
        assert found is not None
        for name in ("keys", "w_med", "w_n", "b_med", "b_mad"):
            a, b = getattr(found, name), getattr(expected, name)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    assert compared > 100


def test_counted_medians_are_median_of_sorted() -> None:
    rng = np.random.default_rng(23)
    for _ in range(300):
        n = int(rng.integers(0, 500))
        measured = _random_measured(rng, n, int(rng.integers(1, 15)))
        rows = Rows(measured, np.flatnonzero(rng.random(n) < rng.choice([0.05, 0.5, 1.0])))
        codes, values = rows.sorted_valid("op_key", "self_us")
        counts, counted = rows.sorted_counts("op_key", "self_us")
        assert counted.tobytes() == values.tobytes()
        assert counts.sum() == len(codes)
        if len(codes):
            groups = int(codes.max()) + 1
            assert counts[:groups].tobytes() == group_counts(codes, groups).tobytes()
            assert not counts[groups:].any()
            assert signals._counted_medians(values, counts)[:groups].tobytes() == \
                median_of_sorted(codes, values, groups).tobytes()


def test_member_of_runs_and_of_rows_alike() -> None:
    rng = np.random.default_rng(29)
    for _ in range(200):
        n = int(rng.integers(0, 300))
        measured = _random_measured(rng, n, 5)
        base_rows, _ = _sides(rng, n)
        member = np.zeros(n, dtype=bool)
        member[base_rows] = True
        assert Rows(measured, base_rows)._member.tobytes() == member.tobytes()


def test_falls_of_rows_are_the_pairs_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_ratio_shifts`` of a fall (medians of sorted values per key) from two sides of rows,
    counted, and from their sorted pairs with keys (the code before: ``_same_rows`` false)."""
    rng = np.random.default_rng(31)
    labels = {c: np.array([f"{c}{k}" for k in range(20)], dtype=object) for c in ("pod", "service", "operation")}
    made = 0
    for _ in range(300):
        n = int(rng.integers(0, 700))
        measured = _random_measured(rng, n, int(rng.integers(1, 15)))
        base_rows, win_rows = _sides(rng, n)
        sides = (Rows(measured, base_rows), Rows(measured, win_rows))
        counted = signals._ratio_shifts(*sides, "self_us", labels, "short", False)
        with monkeypatch.context() as m:
            m.setattr(signals, "_same_rows", lambda base, win: False)
            pairs = signals._ratio_shifts(*sides, "self_us", labels, "short", False)
        assert repr(counted) == repr(pairs)
        made += len(counted)
    assert made > 50
