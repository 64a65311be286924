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
    (integer-valued data such as µs durations; by 16-bit digits when no code is negative),
    else the lexsort."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.intp)
    low = float(values.min())
    span = float(values.max()) - low + 1.0
    if np.array_equal(values, np.floor(values)) and span * (float(codes.max()) + 1.0) < _EXACT:
        combined = codes.astype("int64") * int(span) + (values - low).astype("int64")
        if codes.min() >= 0:
            return stable_order(combined)
        return np.asarray(np.argsort(combined, kind="stable"))
    return np.asarray(np.lexsort((values, codes)))


#: Bits of one digit of ``stable_order`` (numpy sorts 16-bit integers stably by radix).
_DIGIT = 16


def stable_order(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` of non-negative int64 keys, the same positions: a
    least-significant-digit radix sort whose passes are numpy's stable sorts of 16-bit digits
    (each a counting sort; a stable sort of the next digit keeps the order of the ones
    below among equals). Keys below 2**32 take two passes instead of a 64-bit merge sort."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.intp)
    bits = int(keys.max()).bit_length()
    order = np.asarray(np.argsort(keys.astype(np.uint16), kind="stable"))
    for shift in range(_DIGIT, bits, _DIGIT):
        digit = (keys[order] >> shift).astype(np.uint16)
        order = order[np.argsort(digit, kind="stable")]
    return order


def sorted_rows(values: np.ndarray, ascending: bool = True) -> np.ndarray:
    """The row order ``DataFrame.sort_values`` gives a column without NaN (pandas' ``nargsort``
    with its default quicksort: equal values keep the order it gives them)."""
    if ascending:
        return np.asarray(values.argsort(kind="quicksort"))
    reverse = np.arange(len(values))[::-1]
    return np.asarray(reverse[values[::-1].argsort(kind="quicksort")][::-1])


def segment_medians(sorted_values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``median_of_sorted`` of the segments [starts, starts + counts) (each non-empty) of
    values sorted within each segment."""
    return np.asarray((sorted_values[starts + (counts - 1) // 2] + sorted_values[starts + counts // 2]) / 2.0)


def v_medians(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, falls: np.ndarray) -> np.ndarray:
    """The median of each segment [starts, starts + counts) (each non-empty) of ``values``
    whose first ``falls`` values never rise and the rest never fall (a V, such as the
    distances of sorted values to a point between them): the median ``group_median`` gives,
    from the two order statistics it averages, found by a binary search over both sides at
    once instead of a sort."""
    k = np.concatenate([(counts - 1) // 2, counts // 2])
    twice = [np.concatenate([a, a]) for a in (starts, counts, falls)]
    both = _kth_of_v(values, twice[0], twice[1], twice[2], k)
    return np.asarray((both[:len(counts)] + both[len(counts):]) / 2.0)


def _kth_of_v(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, falls: np.ndarray,
              k: np.ndarray) -> np.ndarray:
    """The ``k``-th smallest (from 0) of each V segment: the merge of its falling side read
    backwards (A) and its rising side (B). The smallest ``i`` (values taken from A) whose
    A[i] >= B[k - i] makes A[:i] and B[:k + 1 - i] the k + 1 smallest; the k-th is their
    largest."""
    a, b = falls, counts - falls
    pivot = starts + falls  # A[i] = values[pivot - 1 - i], B[j] = values[pivot + j]
    lo, hi = np.maximum(0, k + 1 - b), np.minimum(a, k + 1)
    last = max(len(values) - 1, 0)
    # An open search (lo < hi, hi never above its start min(a, k + 1)) probes mid < a and
    # j = k - mid >= 0, both inside its segment; a closed one (lo == hi == mid) reads any
    # two values (a position of -1 reads the last) and keeps lo and hi whatever they hold.
    a_at, b_at = pivot - 1, pivot + k  # A[mid] = values[a_at - mid], B[k - mid] = values[b_at - mid]
    while True:
        open_ = lo < hi
        if not open_.any():
            break
        mid = (lo + hi) // 2
        enough = values[a_at - mid] >= values[b_at - mid]
        hi = np.where(enough, mid, hi)
        lo = np.where(open_ & ~enough, mid + 1, lo)
    j = k + 1 - lo
    from_a = np.where(lo > 0, values[_within(pivot - lo, last)], -np.inf)
    from_b = np.where(j > 0, values[_within(pivot + j - 1, last)], -np.inf)
    return np.asarray(np.maximum(from_a, from_b))


def _within(positions: np.ndarray, last: int) -> np.ndarray:
    """``np.clip(positions, 0, last)`` by its two ufuncs (np.clip's checks cost more than
    the clipping of a few hundred positions)."""
    return np.asarray(np.minimum(np.maximum(positions, 0), last))


def value_counts(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct codes and how often each occurs, in ``Series.value_counts``' order: most
    frequent first, equal counts in order of first appearance (its stable sort)."""
    distinct, seen, counts = np.unique(codes, return_index=True, return_counts=True)
    appearance = np.argsort(seen)
    distinct, counts = distinct[appearance], counts[appearance]
    reverse = np.arange(len(counts))[::-1]  # pandas' nargsort, descending and stable
    order = reverse[counts[::-1].argsort(kind="stable")][::-1]
    return distinct[order], counts[order]
