"""Baseline statistics read from the frame's sorted values against group_median of its rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from thinkfl_operator.engines.heuristic.groupstats import (
    group_counts,
    group_median,
    median_of_sorted,
    v_medians,
)
from thinkfl_operator.engines.heuristic.signals import (
    MIN_BASELINE,
    MIN_WINDOW,
    Measured,
    Rows,
    _stats,
    _valid,
)


def _random_measured(rng: np.random.Generator, n: int, keys: int) -> Measured:
    codes = rng.integers(-1, keys, n)
    values = rng.integers(0, 50, n).astype(float)  # many ties
    values[rng.random(n) < 0.1] = np.nan
    if rng.random() < 0.3:
        values += rng.random(n).round(2)  # not integral: the lexsort path
    return Measured(pd.DataFrame({"op_key": codes, "self_us": values}), pd.DataFrame(), pd.DataFrame())


def test_sorted_valid_is_valid_sorted_by_key_then_value() -> None:
    rng = np.random.default_rng(3)
    for _ in range(100):
        n = int(rng.integers(0, 400))
        measured = _random_measured(rng, n, int(rng.integers(1, 30)))
        # few rows mark their places, many read a membership table: both tested
        base = Rows(measured, np.flatnonzero(rng.random(n) < rng.choice([0.05, 0.2, 0.6])))
        b_codes, b_values = base.valid("op_key", "self_us")
        s_codes, s_values = base.sorted_valid("op_key", "self_us")
        order = np.lexsort((b_values, b_codes))
        assert s_codes.tobytes() == b_codes[order].tobytes()
        assert s_values.tobytes() == b_values[order].tobytes()
        groups = int(b_codes.max()) + 1 if len(b_codes) else 1
        assert median_of_sorted(s_codes, s_values, groups).tobytes() == \
            group_median(b_codes, b_values, groups).tobytes()


def _old_stats(win: pd.DataFrame, base: Rows, value: str, code: str) -> pd.DataFrame:
    """``_stats`` before the sorted baseline (medians and MADs by group_median of the rows)."""
    w_codes, w_values = _valid(win, code, value)
    b_codes, b_values = base.valid(code, value)
    if len(w_codes) == 0 or len(b_codes) == 0:
        return pd.DataFrame()
    groups = int(max(w_codes.max(), b_codes.max())) + 1
    w_n, b_n = group_counts(w_codes, groups), group_counts(b_codes, groups)
    wanted = (w_n >= MIN_WINDOW) & (b_n >= MIN_BASELINE)
    if not wanted.any():
        return pd.DataFrame()
    w_keep, b_keep = wanted[w_codes], wanted[b_codes]
    w_med = group_median(w_codes[w_keep], w_values[w_keep], groups)
    b_codes, b_values = b_codes[b_keep], b_values[b_keep]
    b_med = group_median(b_codes, b_values, groups)
    b_mad = group_median(b_codes, np.abs(2 * b_values - 2 * b_med[b_codes]), groups) / 2
    index = np.flatnonzero(wanted)
    return pd.DataFrame({"w_med": w_med[index], "w_n": w_n[index], "b_med": b_med[index],
                         "b_n": b_n[index], "b_mad": b_mad[index]}, index=index)


def test_stats_of_the_sorted_baseline_are_the_old_ones() -> None:
    rng = np.random.default_rng(7)
    compared = 0
    for _ in range(300):
        n = int(rng.integers(0, 600))
        measured = _random_measured(rng, n, int(rng.integers(1, 12)))
        cut = int(rng.integers(0, n + 1))
        win = measured.frame.iloc[cut:cut + int(rng.integers(0, 120))]
        rows = np.flatnonzero((rng.random(n) < 0.8) & ((np.arange(n) < cut) | (np.arange(n) >= cut + len(win))))
        base = Rows(measured, rows)
        expected = _old_stats(win, base, "self_us", "op_key")
        sides = [(base, Rows(measured, win.index.to_numpy())), (base, win), (measured.frame.iloc[rows], win)]
        found = [_stats(b, w, "self_us", "op_key") for b, w in sides]
        if expected.empty:
            assert all(stats is None for stats in found)
            continue
        compared += 1
        for stats in found:
            assert stats is not None
            assert stats.keys.tobytes() == expected.index.to_numpy().tobytes()
            for column in ("w_med", "w_n", "b_med", "b_mad"):
                assert getattr(stats, column).tobytes() == expected[column].to_numpy().tobytes(), column
    assert compared > 100


def test_v_medians_are_the_group_medians_of_the_segments() -> None:
    """Segments that fall then rise (absolute deviations: no -0.0), ties and one-sided ones."""
    rng = np.random.default_rng(11)
    for _ in range(300):
        groups = int(rng.integers(1, 8))
        counts = rng.integers(1, 40, groups)
        falls = np.array([int(rng.integers(0, c + 1)) for c in counts])
        parts = []
        for c, f in zip(counts, falls, strict=True):
            scale = rng.choice([1.0, 0.5, 0.1])
            down = np.sort(rng.integers(0, 6, f) * scale)[::-1]  # ties likely
            up = np.sort(rng.integers(0, 6, c - f) * scale)
            parts.append(np.concatenate([down, up]))
        values = np.concatenate(parts)
        codes = np.repeat(np.arange(groups), counts)
        starts = np.cumsum(counts) - counts
        got = v_medians(values, starts, counts, falls)
        assert got.tobytes() == group_median(codes, values, groups).tobytes()
