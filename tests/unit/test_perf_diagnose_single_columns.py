"""The pods with one flagged KPI computed at once (``_single_columns``) give the numbers the
old per-pod loop gave (kept here as the oracle), bit for bit."""

from __future__ import annotations

import numpy as np

from thinkfl_operator.evidence import metrics


def _old_single_columns(cur: np.ndarray, cur_rows: np.ndarray, which: np.ndarray, column: np.ndarray,
                        count: int, now_mean: np.ndarray, now_std: np.ndarray) -> None:
    first = np.searchsorted(which, np.arange(count))
    for p in np.flatnonzero(np.bincount(which, minlength=count) == 1):
        j = first[p]
        one_mean, one_std = metrics._nan_mean_std(cur[p, :cur_rows[p]][:, column[j:j + 1]])
        now_mean[j], now_std[j] = one_mean[0], one_std[0]


def _series(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    values = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 9) + rng.integers(-5, 5)
    values[rng.random(shape) < 0.15] = np.nan
    values[rng.random(shape) < 0.05] = -0.0
    if rng.random() < 0.2:
        values[...] = np.nan
    return values


def test_rows_give_each_columns_bits() -> None:
    rng = np.random.default_rng(11)
    for n in [*range(1, 40), 63, 64, 65, 127, 128, 129, 200, 257, 300]:
        values = _series(rng, (5, n))
        mean, std = metrics._nan_mean_std(values, axis=1)
        for i in range(5):
            one_mean, one_std = metrics._nan_mean_std(values[i][:, None].copy())
            assert np.array_equal(one_mean[:1], mean[i:i + 1], equal_nan=True)
            assert np.array_equal(one_std[:1], std[i:i + 1], equal_nan=True)
            assert np.signbit(one_mean[0]) == np.signbit(mean[i])


def test_single_columns_match_the_per_pod_loop() -> None:
    rng = np.random.default_rng(5)
    for _ in range(300):
        pods, width, kpis = int(rng.integers(1, 12)), int(rng.integers(1, 150)), int(rng.integers(2, 8))
        cur = _series(rng, (pods, width, kpis))
        cur_rows = rng.integers(1, width + 1, pods) if rng.random() < 0.5 else np.full(pods, width)
        flags = rng.random((pods, kpis)) < rng.random()
        which, column = np.nonzero(flags)
        if not len(which):
            continue
        base = rng.standard_normal(len(which))
        old_mean, old_std, new_mean, new_std = base.copy(), base.copy(), base.copy(), base.copy()
        _old_single_columns(cur, cur_rows, which, column, pods, old_mean, old_std)
        singles = np.flatnonzero(np.bincount(which, minlength=pods) == 1)
        if len(singles):
            metrics._single_columns(cur, cur_rows, singles, np.searchsorted(which, singles), column,
                                    new_mean, new_std)
        assert np.array_equal(old_mean, new_mean, equal_nan=True)
        assert np.array_equal(old_std, new_std, equal_nan=True)
        assert np.array_equal(np.signbit(old_mean), np.signbit(new_mean))
