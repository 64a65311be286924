"""Per-span measurements and their shift between a normal baseline and the incident window.

Each span yields up to three measurements, each owned by the pod that most plausibly caused it:

* ``self``: the span's own time (duration minus its children's), owned by the span's pod. CPU
  starvation and slow local work (databases included) show here.
* ``net``: the gap between a client span and the server span it called in another service
  (client duration minus server duration), owned by the callee: a delay on the callee's network
  path stretches exactly this gap on every call into it, while its own spans look normal.
* ``dur``: the span's total duration, used for spans that end early (``short``): a span that
  suddenly takes a fraction of its usual time while its children did not shrink the same way
  returned or failed before doing its work.

and two ratios per (service, operation): ``error`` (share of spans with an error status) and
``fanout`` (children per span: calls that stop happening).

For every key (kind, pod, operation context) the baseline median and a robust scale
(1.4826·MAD, floored) give a shift score ``z = (window median − baseline median) / scale``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from thinkfl_operator.engines.heuristic.groupstats import (
    group_counts,
    group_mean,
    group_median,
    group_order,
    median_of_sorted,
    segment_medians,
    sorted_rows,
    v_medians,
    value_counts,
)
from thinkfl_operator.telemetry.spans import codes_of, span_and_parent_keys

#: Status values that mean success in the sources we read.
OK_STATUS = frozenset({"", "0", "200", "ok", "unset", "status_code_ok", "status_code_unset", "false"})
#: Smallest scale of a time shift (µs): shifts below ~0.5 ms are noise in every system we saw.
SCALE_FLOOR_US = 500.0
#: Relative scale floor: a shift must be a noticeable fraction of the usual value.
SCALE_FLOOR_REL = 0.10
#: A value must fall by at least this share to count as "ends early" or "stops calling".
MIN_DROP = 0.3
MIN_WINDOW = 3
#: The columns the shift statistics read (baselines are cut down to these).
STAT_COLUMNS = ["op_key", "edge_key", "self_us", "gap_us", "duration_us", "child_count", "is_error"]
#: The (key, value) pairs whose baseline medians ``compute_shifts`` reads from sorted values.
MEDIANS = (("op_key", "self_us"), ("edge_key", "gap_us"), ("op_key", "duration_us"), ("op_key", "child_count"))
MIN_BASELINE = 5
#: Rows fewer than 1/FEW_ROWS of a frame's sorted rows find their places (``Rows.sorted_valid``).
FEW_ROWS = 4
#: The values whose falls (``_ratio_shifts``) compare medians: counted in histograms when small
#: whole numbers (``Measured.histogram_width``).
FALLS = ("duration_us", "child_count")
#: Most histogram cells per frame row for the medians of small whole numbers (``_histogram_medians``).
HISTOGRAM_CELLS = 4
#: Most runs of consecutive rows a side is read by (``Rows.runs``): a window, a baseline's two.
MAX_RUNS = 4


@dataclass(frozen=True, slots=True)
class Shift:
    """One key's change between baseline and window."""

    kind: str  # self | net | short | error | fanout
    pod: str
    service: str
    operation: str
    caller: str  # for net: the calling service
    baseline: float
    window: float
    z: float
    n_window: int


@dataclass(frozen=True)
class Measured:
    """Measured spans plus the labels of their integer keys.

    ``op_key`` numbers (pod, operation) pairs and ``edge_key`` numbers (callee pod, caller
    service, operation) triples, so per-incident statistics group on one integer column.
    The frame's index is the row position; ``parent_row`` points into it (−1: no parent).
    """

    frame: pd.DataFrame
    ops: pd.DataFrame  # op_key → pod, service, operation
    edges: pd.DataFrame  # edge_key → pod, service, parent_service, operation
    _sorted: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False, compare=False)
    _by_key: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False, compare=False)
    _op_codes: dict[tuple[str, str], int] = field(default_factory=dict, repr=False, compare=False)
    _places: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    _arrays: dict[tuple[str, str | None], np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    _codes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False, compare=False)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    _widths: dict[tuple[str, str], int | None] = field(default_factory=dict, repr=False, compare=False)
    _bounds: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def histogram_width(self, code: str, value: str) -> int | None:
        """How many bins a key's histogram of ``value`` takes (its largest value + 1), when
        every value is a small whole number: not NaN, not negative (nor -0.0), and the keys'
        histograms together no larger than a few times the frame; else None (made once)."""
        if (code, value) not in self._widths:
            codes, values = self.column(code), self.column(value, "float64")
            width = None
            if len(values) and np.isfinite(values).all() and not np.signbit(values).any() \
                    and np.array_equal(values, np.floor(values)):
                width = int(values.max()) + 1
                if (int(codes.max()) + 1) * width > HISTOGRAM_CELLS * len(values):
                    width = None
            self._widths[(code, value)] = width
        return self._widths[(code, value)]

    def memo(self, key: str, make: Callable[[pd.DataFrame], Any]) -> Any:
        """``make(frame)``, made once per frame (what a reader of its columns keeps)."""
        if key not in self._memo:
            self._memo[key] = make(self.frame)
        return self._memo[key]

    def column(self, name: str, dtype: str | None = None) -> np.ndarray:
        """``frame[name].to_numpy(dtype)``, made once per frame: each incident reads the same
        columns (through pandas' per-call costs, an integer column as float64 converted)."""
        found = self._arrays.get((name, dtype))
        if found is None:
            found = self._arrays[(name, dtype)] = self.frame[name].to_numpy(dtype=dtype)
        return found

    def text_codes(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``codes_of`` a text column of the frame, made once per frame."""
        found = self._codes.get(name)
        if found is None:
            found = self._codes[name] = codes_of(self.frame[name])
        return found

    def labels_by_key(self, which: str) -> dict[str, np.ndarray]:
        """The label columns of ``ops`` or ``edges`` as arrays of str indexed by the key
        (made once per frame: a Shift reads its labels by key, not through ``.loc``)."""
        found = self._by_key.get(which)
        if found is None:
            labels: pd.DataFrame = getattr(self, which)
            keys = labels.index.to_numpy(dtype="int64")
            size = int(keys.max()) + 1 if len(keys) else 0
            found = {}
            for column in labels.columns:
                by_key = np.empty(size, dtype=object)
                by_key[keys] = labels[column].to_numpy(dtype=object)
                found[column] = by_key
            self._by_key[which] = found
        return found

    def op_codes(self) -> dict[tuple[str, str], int]:
        """(pod, operation) → op_key (of a pair listed twice, the last in ``ops``), made once
        per frame."""
        found = self._op_codes
        if not found:
            labels = self.labels_by_key("ops")
            keys = self.ops.index.to_numpy(dtype="int64")
            for key, pod, operation in zip(keys.tolist(), labels["pod"][keys].tolist(),
                                           labels["operation"][keys].tolist(), strict=True):
                found[(pod, operation)] = key
        return found

    def sort_medians(self) -> None:
        """``by_key`` and ``sorted_places`` of every (key, value) pair ``compute_shifts`` takes
        medians of from sorted values (the falls' pairs of small whole numbers are counted in
        histograms instead: ``histogram_width``)."""
        for code, value in MEDIANS:
            if value in FALLS and self.histogram_width(code, value) is not None:
                continue
            self.sorted_places(code, value)

    def sorted_places(self, code: str, value: str) -> np.ndarray:
        """Each row's place in ``by_key``'s sorted rows (−1: no key or no value), made once."""
        found = self._places.get((code, value))
        if found is None:
            rows = self.by_key(code, value)[0]
            found = self._places[(code, value)] = np.full(len(self.frame), -1, dtype=np.int64)
            found[rows] = np.arange(len(rows))
        return found

    def key_bounds(self, code: str, value: str) -> np.ndarray:
        """Where each key's rows begin among ``by_key``'s sorted rows (keys 0 to the largest),
        and where the last one's end, made once."""
        found = self._bounds.get((code, value))
        if found is None:
            codes = self.by_key(code, value)[1]
            keys = int(codes[-1]) + 1 if len(codes) else 0
            found = self._bounds[(code, value)] = np.searchsorted(codes, np.arange(keys + 1))
        return found

    def by_key(self, code: str, value: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows with a key and a value sorted by (key, value), and their keys and values:
        sorted once per frame, so a baseline's medians need no sort (any subset of these rows
        stays sorted)."""
        found = self._sorted.get((code, value))
        if found is None:
            codes, values = self.column(code), self.column(value, "float64")
            rows = np.flatnonzero((codes >= 0) & ~np.isnan(values))
            rows = rows[group_order(codes[rows], values[rows])]
            found = self._sorted[(code, value)] = (rows, codes[rows], values[rows])
        return found


@dataclass(frozen=True)
class Rows:
    """Spans of one incident (its baseline or its window) as row positions in a ``Measured``
    frame: their per-key medians are read from the frame's sorted values, not sorted again."""

    measured: Measured
    rows: np.ndarray

    def valid(self, code: str, value: str) -> tuple[np.ndarray, np.ndarray]:
        """The rows' (key, value) pairs with a key and a value, in row order."""
        codes = self.measured.column(code)[self.rows]
        values = self.measured.column(value, "float64")[self.rows]
        keep = (codes >= 0) & ~np.isnan(values)
        return codes[keep], values[keep]

    @cached_property
    def runs(self) -> list[tuple[int, int]] | None:
        """The rows as runs of consecutive positions [start, stop), in order and apart (the
        same rows, each once), when there are at most ``MAX_RUNS``; else None."""
        rows = self.rows
        if len(rows) == 0:
            return []
        breaks = np.flatnonzero(rows[1:] != rows[:-1] + 1)
        if len(breaks) >= MAX_RUNS:
            return None
        firsts, lasts = [0, *(breaks + 1).tolist()], [*breaks.tolist(), len(rows) - 1]
        runs = [(int(rows[f]), int(rows[last]) + 1) for f, last in zip(firsts, lasts, strict=True)]
        if any(start < stop for (_, stop), (start, _) in pairwise(runs)):
            return None  # overlapping or out of order
        return runs

    def histogram(self, code: str, value: str, width: int, keys: int) -> np.ndarray | None:
        """How many of the rows hold each (key, value) pair with a key: ``keys`` × ``width``
        counts, read from the runs' slices of the frame's columns; None without runs."""
        runs = self.runs
        if runs is None:
            return None
        codes, values = self.measured.column(code), self.measured.column(value, "float64")
        cells = keys * width
        counts = np.zeros(cells + 1, dtype=np.int64)
        for start, stop in runs:
            c = codes[start:stop]
            cell = np.where(c >= 0, c.astype(np.int64) * width + values[start:stop].astype(np.int64), cells)
            counts += np.bincount(cell, minlength=cells + 1)
        return counts[:cells].reshape(keys, width)

    @cached_property
    def _member(self) -> np.ndarray:
        member = np.zeros(len(self.measured.frame), dtype=bool)
        runs = self.runs
        if runs is None:
            member[self.rows] = True
        for start, stop in runs or ():
            member[start:stop] = True
        return member

    def sorted_valid(self, code: str, value: str) -> tuple[np.ndarray, np.ndarray]:
        """The pairs ``valid`` gives, sorted by (key, value): read from the frame's sorted
        rows (the day's rows taken by position; a boolean mask over them costs more)."""
        chosen = self._chosen(code, value)
        _, codes, values = self.measured.by_key(code, value)
        return codes[chosen], values[chosen]

    def sorted_counts(self, code: str, value: str) -> tuple[np.ndarray, np.ndarray]:
        """How many of the pairs ``sorted_valid`` gives hold each key (0 to the frame's
        largest), and their values in that order: the counts found from where each key's
        sorted rows begin (``Measured.key_bounds``), the keys themselves not taken."""
        chosen = self._chosen(code, value)
        counts = np.diff(chosen.searchsorted(self.measured.key_bounds(code, value)))
        return counts, self.measured.by_key(code, value)[2][chosen]

    def _chosen(self, code: str, value: str) -> np.ndarray:
        """The rows' places among ``by_key``'s sorted rows, in order. A few rows (a window)
        mark their own places among the sorted rows; many (a baseline) are looked up from
        every sorted row, which costs less than gathering their places."""
        rows = self.measured.by_key(code, value)[0]
        if len(self.rows) * FEW_ROWS < len(rows):
            places = self.measured.sorted_places(code, value)[self.rows]
            marked = np.zeros(len(rows), dtype=bool)
            marked[places[places >= 0]] = True
        else:
            marked = self._member[rows]
        return np.flatnonzero(marked)


def span_measurements(frame: pd.DataFrame) -> Measured:
    """Add own time, the network gap owned by the callee, child counts and integer keys."""
    if not frame["start_us"].is_monotonic_increasing:
        frame = frame.sort_values("start_us", kind="stable")
    frame = frame.reset_index(drop=True)
    if "span_key" in frame and "parent_key" in frame:  # computed by the store, same code space
        keys, parent_keys = frame["span_key"].to_numpy(), frame["parent_key"].to_numpy()
    else:
        keys, parent_keys = span_and_parent_keys(frame)
    prow = _parent_rows(keys, parent_keys)
    has_parent = prow >= 0
    safe = np.clip(prow, 0, None)
    text = {c: _Coded(frame[c]) for c in ("pod", "service", "node", "operation", "status", "kind")}

    duration = frame["duration_us"].to_numpy(dtype="float64")
    service = text["service"].codes
    parent_service = np.where(has_parent, service[safe], -1)
    cross = has_parent & (parent_service != service)

    child_sum = np.bincount(prow[has_parent], weights=duration[has_parent], minlength=len(frame))
    child_count = np.bincount(prow[has_parent], minlength=len(frame)).astype("float64")
    cross_children = np.bincount(prow[cross], minlength=len(frame))
    # A client span whose only work is calling another service: its "self" is the network gap,
    # which belongs to the callee, so it is not counted as the caller's own time.
    self_us = np.where(cross_children > 0, np.nan, np.clip(duration - child_sum, 0, None))
    # A gap is only the network when the client span made exactly this one call.
    single_call = has_parent & (child_count[safe] == 1)
    gap_us = np.where(cross & single_call, duration[safe] - duration, np.nan)

    pods, ops = text["pod"].codes, text["operation"].codes
    n_ops, n_services = len(text["operation"].names), len(text["service"].names) + 1
    op_key = pd.factorize(pods.astype("int64") * n_ops + ops)[0]
    edge = (pods.astype("int64") * n_services + parent_service + 1) * n_ops + ops
    edge_key = np.where(np.isnan(gap_us), -1, pd.factorize(edge)[0])
    errors = np.array([str(u).lower() not in OK_STATUS for u in text["status"].names] + [False])

    # ``frame.assign`` of these columns, made at once from the columns' arrays (as assign,
    # the frame's columns in place, the new ones after them in this order, its metadata kept)
    columns: dict[str, Any] = {c: frame[c].array for c in frame.columns}
    columns.update(
        **{c: coded.categorical() for c, coded in text.items()},
        parent_service=text["service"].categorical(parent_service),
        parent_row=prow,
        self_us=self_us,
        gap_us=gap_us,
        child_count=child_count,
        end_us=frame["start_us"].to_numpy() + frame["duration_us"].to_numpy(),
        is_error=errors[text["status"].codes].astype("float64"),
        op_key=op_key,
        edge_key=edge_key,
    )
    out = pd.DataFrame(columns, index=frame.index, copy=False).__finalize__(frame)
    op_labels = _labels(out, _first_of_codes(op_key), "op_key", ["pod", "service", "operation"])
    with_gap = np.flatnonzero(edge_key >= 0)
    edge_rows = with_gap[np.sort(np.unique(edge_key[with_gap], return_index=True)[1])]
    edge_labels = _labels(out, edge_rows, "edge_key", ["pod", "service", "parent_service", "operation"])
    return Measured(out, op_labels, edge_labels)


#: The low 32 bits of a span key (the ID's code in ``span_and_parent_keys``).
_LOW = np.int64(0xFFFFFFFF)


def _parent_rows(keys: np.ndarray, parent_keys: np.ndarray) -> np.ndarray:
    """``pd.Index(keys).get_indexer(parent_keys)`` (each parent key's row, −1: none; keys
    unique, else its error) without hashing every key: a key is found through a table over
    the low 32 bits of the keys (the span ID's code, distinct per span but for the same ID
    in two traces) and checked whole; parents whose low bits several keys share are looked
    up among those keys alone. Keys whose low bits are not a dense code: the hash lookup."""
    n = len(keys)
    if n == 0 or len(parent_keys) == 0 or keys.dtype != np.int64 or parent_keys.dtype != np.int64:
        return np.asarray(pd.Index(keys).get_indexer(parent_keys))
    low, parent_low = keys & _LOW, parent_keys & _LOW
    size = int(max(low.max(), parent_low.max())) + 1
    if size > 4 * (n + len(parent_keys)) + 1024:
        return np.asarray(pd.Index(keys).get_indexer(parent_keys))
    counts = np.bincount(low, minlength=size)
    at = np.full(size, -1, dtype=np.intp)
    at[low] = np.arange(n)
    found = at[parent_low]
    found = np.where((found >= 0) & (keys[np.maximum(found, 0)] == parent_keys), found, -1)
    shared = counts[parent_low] > 1
    if shared.any():
        many = np.flatnonzero(counts[low] > 1)
        got = pd.Index(keys[many]).get_indexer(parent_keys[shared])
        found[shared] = np.where(got >= 0, many[np.maximum(got, 0)], -1)
    return np.asarray(found)


class _Coded:
    """A text column as integer codes and the distinct names (pandas factorize)."""

    def __init__(self, column: pd.Series) -> None:
        codes, names = pd.factorize(column)
        self.codes: np.ndarray = codes
        self.names = [str(n) for n in names]

    def categorical(self, codes: np.ndarray | None = None) -> pd.Categorical:
        """As a categorical; code −1 (none) becomes the empty string."""
        codes = self.codes if codes is None else codes
        names = self.names if "" in self.names else [*self.names, ""]
        return pd.Categorical.from_codes(np.where(codes < 0, names.index(""), codes), categories=names,
                                         validate=False)  # every code in range, by construction


def _first_of_codes(codes: np.ndarray) -> np.ndarray:
    """Each code's first row, in row order, of codes numbered in order of first appearance
    from 0 (``pd.factorize``'s): the rows where the running maximum rises."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.intp)
    top = np.maximum.accumulate(codes)
    return np.flatnonzero(np.diff(top, prepend=-1) > 0)


def _labels(frame: pd.DataFrame, first_rows: np.ndarray, code: str, columns: list[str]) -> pd.DataFrame:
    """``frame``'s ``columns`` at each ``code``'s first row (``first_rows``, in row order: the
    rows ``drop_duplicates(code)`` keeps) as text, indexed by the code: what
    ``frame.iloc[first_rows].set_index(code)[columns].astype(str)`` makes, column by column."""
    index = pd.Index(frame[code].to_numpy()[first_rows], name=code)
    return pd.DataFrame({c: frame[c].array.take(first_rows).astype(str) for c in columns}, index=index)


def _valid(frame: pd.DataFrame, code: str, value: str) -> tuple[np.ndarray, np.ndarray]:
    codes = frame[code].to_numpy()
    values = frame[value].to_numpy(dtype="float64")
    keep = (codes >= 0) & ~np.isnan(values)
    return codes[keep], values[keep]


@dataclass(frozen=True)
class _Stats:
    """Per key seen in both (``keys``): window median and count, baseline median and MAD."""

    keys: np.ndarray
    w_med: np.ndarray
    w_n: np.ndarray
    b_med: np.ndarray
    b_mad: np.ndarray


#: One side of a comparison: a frame of spans, or spans as rows of the measured frame.
Side: TypeAlias = "pd.DataFrame | Rows"


def _pairs(side: Side, code: str, value: str, in_order: bool = False) -> tuple[np.ndarray, np.ndarray, bool]:
    """A side's (key, value) pairs with a key and a value, and whether they come sorted by
    (key, value) (from rows, unless ``in_order`` asks for row order) or in row order."""
    if isinstance(side, Rows):
        return (*side.valid(code, value), False) if in_order else (*side.sorted_valid(code, value), True)
    return (*_valid(side, code, value), False)


def _same_rows(base: Side, win: Side) -> bool:
    """Both sides rows of one measured frame."""
    return isinstance(base, Rows) and isinstance(win, Rows) and base.measured is win.measured


def _stats(base: Side, win: Side, value: str, code: str) -> _Stats | None:
    """Per key seen in both: window median and count, baseline median and MAD (None: no key)."""
    if _same_rows(base, win):
        assert isinstance(base, Rows) and isinstance(win, Rows)
        return _counted_stats(base, win, value, code)
    w_codes, w_values, w_sorted = _pairs(win, code, value)
    b_codes, b_values, b_sorted = _pairs(base, code, value)
    if len(w_codes) == 0 or len(b_codes) == 0:
        return None
    groups = int(max(w_codes.max(), b_codes.max())) + 1
    w_n, b_n = group_counts(w_codes, groups), group_counts(b_codes, groups)
    wanted = (w_n >= MIN_WINDOW) & (b_n >= MIN_BASELINE)
    if not wanted.any():
        return None
    if w_sorted:  # every key's median: the wanted ones are the same
        w_med = median_of_sorted(w_codes, w_values, groups)
    else:
        w_keep = wanted[w_codes]
        w_med = group_median(w_codes[w_keep], w_values[w_keep], groups)
    index = np.flatnonzero(wanted)
    if b_sorted:
        b_med, b_mad = _sorted_median_mad(b_codes, b_values, b_n, index)
    else:
        b_keep = wanted[b_codes]
        b_codes, b_values = b_codes[b_keep], b_values[b_keep]
        b_med_all = group_median(b_codes, b_values, groups)
        b_mad = _mad(b_codes, b_values, b_med_all[b_codes], groups)[index]
        b_med = b_med_all[index]
    return _Stats(index, w_med[index], w_n[index], b_med, b_mad)


def _counted_stats(base: Rows, win: Rows, value: str, code: str) -> _Stats | None:
    """``_stats`` of two sides of rows, from each side's count per key and values sorted by
    (key, value) (``Rows.sorted_counts``): the same medians and MADs, read from each key's
    segment of the sorted values, the keys neither side holds counted 0 (left out as before)."""
    w_n, w_values = win.sorted_counts(code, value)
    b_n, b_values = base.sorted_counts(code, value)
    if len(w_values) == 0 or len(b_values) == 0:
        return None
    wanted = (w_n >= MIN_WINDOW) & (b_n >= MIN_BASELINE)
    if not wanted.any():
        return None
    index = np.flatnonzero(wanted)
    w_med = segment_medians(w_values, (np.cumsum(w_n) - w_n)[index], w_n[index])
    b_med, b_mad = _counted_median_mad(b_values, b_n, index)
    return _Stats(index, w_med, w_n[index], b_med, b_mad)


def _counted_median_mad(values: np.ndarray, counts: np.ndarray,
                        keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_sorted_median_mad`` of values sorted by (key, value), each key's ``counts`` of
    them in key order, without their keys: each value's centre repeated from its key's, the
    values below it found among each key's segment by position."""
    ends = np.cumsum(counts)
    starts = (ends - counts)[keys]
    n = counts[keys]
    med = segment_medians(values, starts, n)
    centre = np.full(len(counts), np.nan)
    centre[keys] = med
    per_value = np.repeat(centre, counts)
    deviations = np.abs(2 * values - 2 * per_value)
    below = np.flatnonzero(values < per_value)
    falls = below.searchsorted(starts + n) - below.searchsorted(starts)
    return med, v_medians(deviations, starts, n, falls) / 2


def _counted_medians(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``median_of_sorted`` of values sorted by (key, value), each key's ``counts`` of them
    in key order (NaN: a key without one)."""
    out = np.full(len(counts), np.nan)
    present = np.flatnonzero(counts > 0)
    out[present] = segment_medians(values, (np.cumsum(counts) - counts)[present], counts[present])
    return out


def _mad(codes: np.ndarray, values: np.ndarray, centres: np.ndarray, groups: int) -> np.ndarray:
    """Each key's median absolute deviation from its centre (``centres``: each value's)."""
    # Doubled deviations stay integral for integral data (medians may end in .5): fast sort path.
    return group_median(codes, np.abs(2 * values - 2 * centres), groups) / 2


def _sorted_median_mad(codes: np.ndarray, values: np.ndarray, counts: np.ndarray,
                       keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``keys``' medians and ``_mad`` from values sorted by (key, value) (``counts`` per
    key): each key's values are a segment, its median read at the middle, and its absolute
    deviations fall then rise along it, so their median needs no sort (``v_medians``)."""
    starts = (np.cumsum(counts) - counts)[keys]
    n = counts[keys]
    med = segment_medians(values, starts, n)
    centre = np.full(len(counts), np.nan)
    centre[keys] = med
    per_value = centre[codes]
    deviations = np.abs(2 * values - 2 * per_value)
    falls = np.bincount(codes[values < per_value], minlength=len(counts))[keys]
    return med, v_medians(deviations, starts, n, falls) / 2


def _shifts(base: Side, win: Side, value: str, code: str, labels: dict[str, np.ndarray],
            kind: str, min_z: float | None = None) -> list[Shift]:
    """Robust z of the median shift per key: (window − baseline median) / scale."""
    stats = _stats(base, win, value, code)
    if stats is None:
        return []
    scale = np.maximum.reduce([
        1.4826 * stats.b_mad,
        SCALE_FLOOR_REL * np.abs(stats.b_med),
        np.full(len(stats.keys), SCALE_FLOOR_US),
    ])
    z = (stats.w_med - stats.b_med) / scale
    return _make(kind, labels, stats.keys, stats.b_med, stats.w_med, z, stats.w_n, min_z)


def _make(kind: str, labels: dict[str, np.ndarray], keys: np.ndarray, baseline: Any, window: Any,
          z: Any, n: Any, min_z: float | None = None) -> list[Shift]:
    """One Shift per key, labelled from ``Measured.labels_by_key``; none below ``min_z``
    (NaN kept, as ``shift.z < min_z`` keeps it)."""
    if min_z is not None:
        keep = ~(np.asarray(z) < min_z)
        keys, baseline, window, z, n = (np.asarray(a)[keep] for a in (keys, baseline, window, z, n))
    caller = labels["parent_service"][keys].tolist() if "parent_service" in labels else [""] * len(keys)
    return [
        Shift(kind=kind, pod=p, service=s, operation=o, caller=c, baseline=float(b), window=float(w),
              z=float(zz), n_window=int(nn))
        for p, s, o, c, b, w, zz, nn in zip(labels["pod"][keys].tolist(), labels["service"][keys].tolist(),
                                          labels["operation"][keys].tolist(), caller,
                                          baseline, window, z, n, strict=True)
    ]


def _ratio_shifts(base: Side, win: Side, value: str, ops: dict[str, np.ndarray], kind: str,
                  rise: bool, min_z: float | None = None) -> list[Shift]:
    """Relative shifts of a per-span value per (pod, operation), z = 10 × the change: a rise of
    a share (errors: mean, summed in row order), or a fall to a fraction of the usual (calls,
    duration: median)."""
    counted = None if rise else _histogram_medians(base, win, "op_key", value)
    if counted is not None:
        w_n, b_n, mw, mb = counted
        if not w_n.any() or not b_n.any():
            return []
    elif not rise and _same_rows(base, win):
        assert isinstance(base, Rows) and isinstance(win, Rows)
        w_n, w_values = win.sorted_counts("op_key", value)
        b_n, b_values = base.sorted_counts("op_key", value)
        if len(w_values) == 0 or len(b_values) == 0:
            return []
        mw, mb = _counted_medians(w_values, w_n), _counted_medians(b_values, b_n)
    else:
        w_codes, w_values, w_sorted = _pairs(win, "op_key", value, in_order=rise)
        b_codes, b_values, b_sorted = _pairs(base, "op_key", value, in_order=rise)
        if len(w_codes) == 0 or len(b_codes) == 0:
            return []
        groups = int(max(w_codes.max(), b_codes.max())) + 1
        w_n, b_n = group_counts(w_codes, groups), group_counts(b_codes, groups)
        if rise:
            mw, mb = group_mean(w_codes, w_values, groups), group_mean(b_codes, b_values, groups)
        else:
            mw, mb = (median_of_sorted(c, v, groups) if is_sorted else group_median(c, v, groups)
                      for c, v, is_sorted in ((w_codes, w_values, w_sorted), (b_codes, b_values, b_sorted)))
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (mw - mb) if rise else (mb - mw) / np.maximum(mb, 1e-9)
    ok = (w_n >= MIN_WINDOW) & (b_n >= MIN_BASELINE) & (change > (0 if rise else MIN_DROP))
    index = np.flatnonzero(ok)
    if len(index) == 0:
        return []
    return _make(kind, ops, index, mb[index], mw[index], 10.0 * change[index], w_n[index], min_z)


def _histogram_medians(base: Side, win: Side, code: str, value: str) -> tuple[np.ndarray, ...] | None:
    """Each key's window and baseline counts and medians (``group_counts`` and
    ``median_of_sorted`` of the sorted pairs, per key of the whole frame: the keys neither
    side holds count 0, their medians NaN) from histograms of small whole-number values
    (``Measured.histogram_width``) over runs of rows: the middle one or two values of a key
    are the bins where its running count passes the middle ranks, the same numbers. None
    when the sides are not such rows."""
    if not isinstance(base, Rows) or not isinstance(win, Rows) or base.measured is not win.measured:
        return None
    measured = base.measured
    width = measured.histogram_width(code, value)
    if width is None:
        return None
    keys = int(measured.column(code).max()) + 1
    out: list[np.ndarray] = []
    for side in (win, base):
        counts = side.histogram(code, value, width, keys)
        if counts is None:
            return None
        n = counts.sum(axis=1)
        running = np.cumsum(counts, axis=1)
        lower = np.argmax(running > ((n - 1) // 2)[:, None], axis=1)
        upper = np.argmax(running > (n // 2)[:, None], axis=1)
        medians = np.where(n > 0, (lower.astype("float64") + upper.astype("float64")) / 2.0, np.nan)
        out += [n, medians]
    w_n, w_med, b_n, b_med = out
    return w_n, b_n, w_med, b_med


def compute_shifts(base: pd.DataFrame | None, win: pd.DataFrame, measured: Measured,
                   base_rows: np.ndarray | None = None, min_z: float | None = None) -> list[Shift]:
    """Every key's shift between the measured baseline and window frames. ``base_rows``, when
    given, are the baseline's row positions in ``measured.frame``, read in place of ``base``
    (which may then be None), and ``win``'s index holds its rows' positions there (slices of
    ``measured.frame`` keep them): both sides' medians are then read from the frame's sorted
    values, not sorted again. ``min_z``: leave out the shifts below it (a scorer that ignores
    them need not have them made)."""
    ops, edges = measured.labels_by_key("ops"), measured.labels_by_key("edges")
    if base_rows is not None:
        w_rows = win.index.to_numpy()
        b_side: Side = Rows(measured, base_rows)
        w_side: Side = Rows(measured, w_rows)
        window = WindowColumns(w_rows, measured=measured)
    else:
        assert base is not None, "a baseline frame or its rows"
        b_side, w_side = base, win
        window = WindowColumns(win.index.to_numpy(), frame=win)
    shifts: list[Shift] = []
    shifts += _shifts(b_side, w_side, "self_us", "op_key", ops, "self", min_z)
    shifts += _shifts(b_side, w_side, "gap_us", "edge_key", edges, "net", min_z)
    shifts += _ratio_shifts(b_side, w_side, "duration_us", ops, "short", False, min_z)
    if (window.column("is_error") > 0).any():
        shifts += _ratio_shifts(b_side, w_side, "is_error", ops, "error", True, min_z)
    fanout = _ratio_shifts(b_side, w_side, "child_count", ops, "fanout", rise=False)
    votes = fanout + _truncations(window, fanout, measured)  # the votes count every fanout shift
    shifts += votes if min_z is None else [s for s in votes if not s.z < min_z]
    return shifts


class WindowColumns:
    """The window's columns as arrays: read from the measured frame's (``Measured.column``,
    made once per frame) at the window's rows, or from a frame of its own."""

    def __init__(self, labels: np.ndarray, measured: Measured | None = None,
                 frame: pd.DataFrame | None = None) -> None:
        self.labels = labels  # the rows' labels: positions in the measured frame
        self._measured, self._frame = measured, frame

    def column(self, name: str) -> np.ndarray:
        """``frame[name].to_numpy()``."""
        if self._frame is not None:
            return np.asarray(self._frame[name].to_numpy())
        assert self._measured is not None
        return np.asarray(self._measured.column(name)[self.labels])

    def text_codes(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``codes_of(frame[name])``; from the measured frame, its codes at the rows (the
        window's categories are the frame's: the same codes; a missing value's code and ""
        may be there when the frame has one elsewhere, which names and counts alike)."""
        if self._frame is not None:
            return codes_of(self._frame[name])
        assert self._measured is not None
        codes, names = self._measured.text_codes(name)
        return codes[self.labels], names


def _truncations(win: pd.DataFrame | WindowColumns, fanout: list[Shift], measured: Measured) -> list[Shift]:
    """Who was called last before a caller gave up early: votes for the callee of the last call.

    For every operation whose calls per span dropped, each of its window spans that made fewer
    calls than usual votes for the pod that served its last-ending call (the server span under
    the client span, when there is one). A pod that fails fast is where its callers stop.
    Votes are counted by (pod, service) codes, in ``value_counts``' order.
    """
    if not fanout:
        return []
    if isinstance(win, pd.DataFrame):
        win = WindowColumns(win.index.to_numpy(), frame=win)
    op_codes = measured.op_codes()
    usual = {op_codes[(f.pod, f.operation)]: f.baseline for f in fanout}
    op_key = win.column("op_key")
    by_code = np.full(max(int(op_key.max()), *usual) + 1, np.nan)
    by_code[list(usual)] = list(usual.values())
    labels = win.labels
    cut = labels[win.column("child_count") < by_code[op_key]]
    if len(cut) == 0:
        return []
    parent_row, end = win.column("parent_row"), win.column("end_us")
    # each cut span's last-ending call: its calls by end (sort_values' order), the last one kept
    children = np.flatnonzero(np.isin(parent_row, cut))
    by_end = children[sorted_rows(end[children])]
    last_of_parent = np.unique(parent_row[by_end][::-1], return_index=True)[1]
    kept = np.zeros(len(by_end), dtype=bool)
    kept[len(by_end) - 1 - last_of_parent] = True
    last = by_end[kept]  # positions in win
    last_label = labels[last]
    # the callee: the first window span under each last call (the server span of a client span)
    under = np.flatnonzero(np.isin(parent_row, last_label))
    parents, first = np.unique(parent_row[under], return_index=True)
    at = np.clip(parents.searchsorted(last_label), 0, max(len(parents) - 1, 0))
    has_callee = parents[at] == last_label if len(parents) else np.zeros(len(last), bool)
    rows = under[first][at] if len(parents) else last
    (pod, pods), (service, services) = (win.text_codes(c) for c in ("pod", "service"))
    other_pod = has_callee & (pod[rows] != pod[last])
    voter_pod = np.where(other_pod, pod[rows], pod[last])
    voter_service = np.where(other_pod, service[rows], service[last])
    width = len(services) + 1
    votes, counts = value_counts(voter_pod * width + voter_service)
    total = float(len(cut))
    return [Shift("truncated", str(pods[v // width]), str(services[v % width]),
                  "last call before callers stopped", "", 0.0, n / total, 10.0 * n / total, n)
            for v, n in zip(votes.tolist(), counts.tolist(), strict=True)]
