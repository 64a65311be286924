"""Per-group counts, medians and means over integer group codes, in plain numpy (no pandas)."""

from __future__ import annotations

import numpy as np


def group_counts(codes: np.ndarray, groups: int) -> np.ndarray:
    return np.bincount(codes, minlength=groups)


def group_median(codes: np.ndarray, values: np.ndarray, groups: int) -> np.ndarray:
    """Median of ``values`` per code in [0, groups); NaN for empty groups."""
    if len(codes) == 0:
        return np.full(groups, np.nan)
    return median_of_sorted(codes, _sorted_by_group(codes, values), groups)


def median_of_sorted(codes: np.ndarray, sorted_values: np.ndarray, groups: int) -> np.ndarray:
    """``group_median`` of values already sorted by (code, value); ``codes`` are their codes,
    in any order (only counted)."""
    out = np.full(groups, np.nan)
    if len(codes) == 0:
        return out
    counts = np.bincount(codes, minlength=groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    present = counts > 0
    lo = starts + (counts - 1) // 2
    hi = starts + counts // 2
    out[present] = (sorted_values[lo[present]] + sorted_values[hi[present]]) / 2.0
    return out


def group_mean(codes: np.ndarray, values: np.ndarray, groups: int) -> np.ndarray:
    counts = np.bincount(codes, minlength=groups)
    sums = np.bincount(codes, weights=values, minlength=groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


#: Largest integer a float64 holds exactly.
_EXACT = float(2**53)


def _sorted_by_group(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` sorted by (code, value). One float sort of ``code·span + value`` when that is
    exact (integer-valued data such as µs durations), else a two-key lexsort."""
    low = float(values.min())
    span = float(values.max()) - low + 1.0
    integral = np.array_equal(values, np.floor(values))
    if integral and span * (float(codes.max()) + 1.0) < _EXACT:
        combined = codes.astype("float64") * span + (values - low)
        combined.sort()
        return combined - np.floor(combined / span) * span + low
    return values[np.lexsort((values, codes))]


def group_order(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The positions that sort (code, value) pairs, equal pairs in their order (``np.lexsort``
    of the two): one stable integer sort of ``code·span + value`` when that is exact
    (integer-valued data such as µs durations; a radix sort, 2-3x faster), else the lexsort."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.intp)
    low = float(values.min())
    span = float(values.max()) - low + 1.0
    if np.array_equal(values, np.floor(values)) and span * (float(codes.max()) + 1.0) < _EXACT:
        combined = codes.astype("int64") * int(span) + (values - low).astype("int64")
        return np.asarray(np.argsort(combined, kind="stable"))
    return np.asarray(np.lexsort((values, codes)))


def sorted_rows(values: np.ndarray, ascending: bool = True) -> np.ndarray:
    """The row order ``DataFrame.sort_values`` gives a column without NaN (pandas' ``nargsort``
    with its default quicksort: equal values keep the order it gives them)."""
    if ascending:
        return np.asarray(values.argsort(kind="quicksort"))
    reverse = np.arange(len(values))[::-1]
    return np.asarray(reverse[values[::-1].argsort(kind="quicksort")][::-1])
