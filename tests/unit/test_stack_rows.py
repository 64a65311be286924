"""stack_rows without padding when every owner keeps as many rows: the old scatter (kept here
as the oracle) gives the same array, bit for bit."""

from __future__ import annotations

import numpy as np

from thinkfl_operator.evidence.metrics import stack_rows


def _old_stack_rows(values: np.ndarray, owner: np.ndarray, count: int,
                    keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = np.flatnonzero(keep)
    whose = owner[rows]
    per_owner = np.bincount(whose, minlength=count)
    first = np.cumsum(per_owner) - per_owner
    stacked = np.full((count, int(per_owner.max(initial=0)), *values.shape[1:]), np.nan)
    stacked[whose, np.arange(len(rows)) - first[whose]] = values[rows]
    return stacked, per_owner


def test_stack_rows_is_the_padded_scatter() -> None:
    rng = np.random.default_rng(9)
    for case in range(400):
        count = int(rng.integers(0, 6))
        each = int(rng.integers(0, 5))
        sizes = [each] * count if case % 2 else list(rng.integers(0, 5, count))
        owner = np.repeat(np.arange(count), sizes)  # in order, as the callers give them
        shape = (len(owner),) if case % 3 == 0 else (len(owner), 3)
        values = rng.normal(size=shape)
        values[rng.random(shape) < 0.2] = np.nan
        values[rng.random(shape) < 0.1] = -0.0
        if case % 11 == 0:
            values = rng.integers(-3, 3, shape)
        if case % 4 == 0:
            keep = np.ones(len(owner), dtype=bool)
        else:
            keep = rng.random(len(owner)) < 0.7
        got, got_n = stack_rows(values, owner, count, keep)
        expected, expected_n = _old_stack_rows(values, owner, count, keep)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert got.tobytes() == expected.tobytes()
        assert np.array_equal(got_n, expected_n)
        got[...] = 1.0  # a fresh array: writing it leaves the values alone
        assert not np.shares_memory(got, values)
