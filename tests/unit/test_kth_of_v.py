"""_kth_of_v's search with fewer operations per round: the same probes and decisions as the
old loop (kept here as the oracle), so the same answers on any values, V-shaped or not."""

from __future__ import annotations

import numpy as np

from thinkfl_operator.engines.heuristic.groupstats import _kth_of_v, _within


def _old_kth_of_v(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, falls: np.ndarray,
                  k: np.ndarray) -> np.ndarray:
    a, b = falls, counts - falls
    pivot = starts + falls
    lo, hi = np.maximum(0, k + 1 - b), np.minimum(a, k + 1)
    last = max(len(values) - 1, 0)
    while True:
        open_ = lo < hi
        if not open_.any():
            break
        mid = (lo + hi) // 2
        j = k - mid
        enough = (mid >= a) | (j < 0)
        a_mid = values[_within(pivot - 1 - mid, last)]
        b_j = values[_within(pivot + j, last)]
        enough |= a_mid >= b_j
        hi = np.where(open_ & enough, mid, hi)
        lo = np.where(open_ & ~enough, mid + 1, lo)
    j = k + 1 - lo
    from_a = np.where(lo > 0, values[_within(pivot - lo, last)], -np.inf)
    from_b = np.where(j > 0, values[_within(pivot + j - 1, last)], -np.inf)
    return np.asarray(np.maximum(from_a, from_b))


def test_kth_of_v_is_the_old_search() -> None:
    rng = np.random.default_rng(31)
    for case in range(600):
        counts = rng.integers(1, 40, int(rng.integers(1, 8)))
        starts = np.cumsum(counts) - counts
        values = rng.integers(-5, 6, int(counts.sum())).astype("float64")
        if case % 2:  # V segments: falling then rising (ties, signed zeros)
            for s, n in zip(starts.tolist(), counts.tolist(), strict=True):
                seg = np.sort(rng.integers(-5, 6, n).astype("float64"))
                values[s:s + n] = np.abs(seg - rng.choice(seg))
            values[values == 0] = rng.choice([0.0, -0.0], int((values == 0).sum()))
        if case % 5 == 0:
            values[rng.random(len(values)) < 0.2] = np.nan  # not a V: the same probes still
        falls = np.array([rng.integers(0, n + 1) for n in counts.tolist()])
        for k in ((counts - 1) // 2, counts // 2, rng.integers(0, counts), np.zeros_like(counts), counts - 1):
            got = _kth_of_v(values, starts, counts, falls, k)
            expected = _old_kth_of_v(values, starts, counts, falls, k)
            assert got.tobytes() == expected.tobytes()
