"""Group medians and means over integer codes agree with numpy, on both sort paths."""

from __future__ import annotations

import numpy as np
import pytest

from thinkfl_operator.engines.heuristic.groupstats import (
    group_counts,
    group_mean,
    group_median,
    group_order,
    stable_order,
)


def _reference(codes: np.ndarray, values: np.ndarray, groups: int) -> np.ndarray:
    return np.array([np.median(values[codes == g]) if (codes == g).any() else np.nan
                     for g in range(groups)])


@pytest.mark.parametrize("integral", [True, False])
def test_group_median_matches_numpy(integral: bool) -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 7, size=500)
    values = rng.integers(-50, 10_000, size=500).astype("float64")
    if not integral:
        values += 0.25
    expected = _reference(codes, values, 9)  # groups 7 and 8 are empty
    np.testing.assert_array_equal(group_median(codes, values, 9), expected)


def test_group_median_of_huge_values_falls_back_safely() -> None:
    codes = np.array([0, 0, 1, 1, 1])
    values = np.array([2.0**52, 1.0, 5.0, 2.0**53, 3.0])
    np.testing.assert_array_equal(group_median(codes, values, 2), [2.0**51 + 0.5, 5.0])


def test_group_mean_and_counts() -> None:
    codes = np.array([0, 2, 2, 2])
    values = np.array([1.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(group_counts(codes, 3), [1, 0, 3])
    means = group_mean(codes, values, 3)
    assert means[0] == 1.0 and np.isnan(means[1]) and means[2] == pytest.approx(1 / 3)


@pytest.mark.parametrize("integral", [True, False])
def test_group_order_is_the_lexsort_of_code_then_value(integral: bool) -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 40, 5000)
    values = rng.integers(-50, 200, 5000).astype("float64")  # many ties: equal pairs keep their order
    if not integral:
        values += rng.random(5000).round(1)
    assert np.array_equal(group_order(codes, values), np.lexsort((values, codes)))
    assert len(group_order(codes[:0], values[:0])) == 0


@pytest.mark.parametrize("bits", [0, 1, 15, 16, 17, 31, 32, 33, 48, 62])
def test_stable_order_is_the_stable_argsort(bits: int) -> None:
    rng = np.random.default_rng(bits)
    for n in (0, 1, 7, 3000):
        keys = rng.integers(0, 2**bits, n, dtype=np.int64) if bits else np.zeros(n, dtype=np.int64)
        keys[: n // 3] = keys[n // 2: n // 2 + n // 3]  # ties: equal keys keep their order
        assert np.array_equal(stable_order(keys), np.argsort(keys, kind="stable"))


def test_group_order_of_wide_values_and_negative_codes() -> None:
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 300, 4000)
    values = rng.integers(0, 2**30, 4000).astype("float64")
    values[::7] = values[3]  # ties
    assert np.array_equal(group_order(codes, values), np.lexsort((values, codes)))
    codes[::5] = -1
    assert np.array_equal(group_order(codes, values), np.lexsort((values, codes)))
