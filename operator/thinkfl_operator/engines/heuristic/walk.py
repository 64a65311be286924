"""The diagnostic path: walk the tools from a root span down to the suspect, as the model would."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from thinkfl_operator.core.models import Span
from thinkfl_operator.engines.heuristic.groupstats import sorted_rows
from thinkfl_operator.engines.heuristic.scoring import PodEvidence
from thinkfl_operator.evidence.toolbox import Toolbox
from thinkfl_operator.telemetry.spans import COLUMNS

#: Deepest chain of search_traces calls per trace.
MAX_DEPTH = 12
#: Levels explored below the suspect's span.
EXTRA_DEPTH = 1

#: One trace's spans: a frame, or its columns as arrays (``SpanTable.columns``: text as
#: Python objects, numbers as int64), read alike.
Trace: TypeAlias = "pd.DataFrame | Mapping[str, np.ndarray]"


def pick_traces(window: pd.DataFrame, suspect: PodEvidence | None, limit: int,
                plain: PlainColumns | None = None) -> list[str]:
    """Window traces that show the suspect's strongest anomaly, most extreme first; traces with
    errors come first (the suspect's errors, or any, when there is no suspect). ``plain``: the
    columns of the frame the window is a slice of, read from there."""
    if window.empty:
        return []
    start = start_in(window, plain)
    view = _Window(window) if plain is None or start is None else _Slice(window, plain, start)
    rows = np.arange(len(window)) if suspect is None else np.flatnonzero(view.equal("pod", suspect.pod))
    if view.has("is_error"):
        errors = rows[view.numbers("is_error")[rows] > 0]
        if len(errors):
            return view.first(errors, limit)
    if suspect is None:
        return view.first(rows, limit)
    best = suspect.best
    if best is not None and best.kind in ("self", "net", "short"):
        values = view.numbers({"self": "self_us", "net": "gap_us", "short": "duration_us"}[best.kind])
        same = rows[view.equal("operation", best.operation, rows)]
        same = same[~pd.isna(values[same])]
        if len(same):
            return view.first(same[sorted_rows(values[same], ascending=best.kind == "short")], limit)
    return view.first(rows, limit)


class _Window:
    """What ``pick_traces`` reads of a window, from its own columns."""

    def __init__(self, window: pd.DataFrame) -> None:
        self.window = window

    def has(self, name: str) -> bool:
        return name in self.window

    def numbers(self, name: str) -> np.ndarray:
        return np.asarray(self.window[name].to_numpy())

    def equal(self, name: str, value: str, rows: np.ndarray | None = None) -> np.ndarray:
        return _equal(self.window, name, value, rows)

    def first(self, rows: np.ndarray, limit: int) -> list[str]:
        return _first(self.window["trace_id"], rows, limit)


class _Slice(_Window):
    """What ``pick_traces`` reads of a window, from the columns of the frame it is a slice
    of (``PlainColumns``, from ``start``): the same values; a column of another kind read
    from the window."""

    def __init__(self, window: pd.DataFrame, plain: PlainColumns, start: int) -> None:
        super().__init__(window)
        self.plain, self.start, self.stop = plain, start, start + len(window)

    def has(self, name: str) -> bool:
        return self.plain.has(name)

    def numbers(self, name: str) -> np.ndarray:
        return self.plain.numbers(name)[self.start:self.stop]

    def equal(self, name: str, value: str, rows: np.ndarray | None = None) -> np.ndarray:
        source = self.plain.categorical(name)
        if source is None:
            return super().equal(name, value, rows)
        codes = source[0][self.start:self.stop]
        if rows is not None:
            codes = codes[rows]
        # ``_equal``'s table over the codes, its last entry for code −1 (missing: never equal)
        return np.asarray(np.append(source[1] == value, False)[codes])

    def first(self, rows: np.ndarray, limit: int) -> list[str]:
        taken = self.plain.arrow_take("trace_id", rows + self.start)
        if taken is None or taken.null_count:
            return super().first(rows, limit)
        return list(pc.unique(taken).slice(0, limit).to_pylist())


def culprit_span(trace: Trace, suspect: PodEvidence) -> str:
    """The span of the suspect pod in this trace that best matches its strongest anomaly."""
    rows = np.flatnonzero(_text(trace, "pod") == suspect.pod)
    best = suspect.best
    if best is not None:
        same = rows[_text(trace, "operation")[rows] == best.operation]
        if len(same):
            rows = same
    if not len(rows):
        return ""
    longest = rows[sorted_rows(_numbers(trace, "duration_us")[rows], ascending=False)[0]]
    return str(_text(trace, "span_id")[longest])


def critical_leaf(trace: Trace) -> str:
    """The deepest span reached from the root by always following the longest child."""
    if len(trace["span_id"]) == 0:
        return ""
    span, parent = _text(trace, "span_id"), _text(trace, "parent_id")
    duration = _numbers(trace, "duration_us")
    ids = set(span)
    roots = np.flatnonzero([p not in ids for p in parent])
    current = str(span[roots[sorted_rows(duration[roots], ascending=False)[0]]])
    longest: dict[str, str] = {}
    for row in sorted_rows(duration, ascending=False):  # each parent's longest child
        longest.setdefault(parent[row], span[row])
    for _ in range(MAX_DEPTH):
        if current not in longest:
            break
        current = str(longest[current])
    return current


def _text(frame: Trace, column: str) -> np.ndarray:
    values = frame[column]
    return values if isinstance(values, np.ndarray) else np.asarray(values.to_numpy(dtype=object))


def _numbers(frame: Trace, column: str) -> np.ndarray:
    values = frame[column]
    return values if isinstance(values, np.ndarray) else np.asarray(values.to_numpy())


def _equal(frame: pd.DataFrame, column: str, value: str, rows: np.ndarray | None = None) -> np.ndarray:
    """``_text(frame, column)[rows] == value`` (all rows when None), for a categorical column
    from its codes: the window's text is not turned into Python objects for one comparison."""
    series = frame[column]
    if not isinstance(series.dtype, pd.CategoricalDtype):
        text = _text(frame, column)
        return np.asarray((text if rows is None else text[rows]) == value)
    codes = np.asarray(series.array.codes)
    if rows is not None:
        codes = codes[rows]
    categories = series.array.categories.to_numpy(dtype=object)
    # a table over the codes, its last entry for code −1 (missing: never equal)
    table = np.append(categories == value, False)
    return np.asarray(table[codes])


def _first(column: pd.Series, rows: np.ndarray, limit: int) -> list[str]:
    """The first ``limit`` distinct values of ``column`` at ``rows``, in that order
    (``drop_duplicates()[:limit]``): for Arrow text without a missing value, Arrow's unique of
    those rows (distinct values in order of first appearance), not each row as a Python object."""
    if isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow":
        taken = pa.array(column.array).take(rows)
        if not taken.null_count:
            return list(pc.unique(taken).slice(0, limit).to_pylist())
    return list(dict.fromkeys(column.to_numpy(dtype=object)[rows]))[:limit]


def walk_trace(tools: Toolbox, trace: Trace, target_span: str) -> None:
    """search_traces from the root down the ancestors of ``target_span`` (and the target itself)."""
    parents = dict(zip(trace["span_id"], trace["parent_id"], strict=False))
    chain = [target_span]
    while chain[-1] in parents and parents[chain[-1]] in parents and len(chain) < MAX_DEPTH:
        chain.append(parents[chain[-1]])
    children: list[Span] = []
    for span_id in reversed(chain):
        children, _ = tools.search_traces(span_id)
        if not children:
            return
    # Look one or two levels under the suspect too: what it was waiting for, if anything.
    for _ in range(EXTRA_DEPTH):
        if not children:
            return
        longest = max(children, key=lambda s: s.duration)
        children, _ = tools.search_traces(longest.span_id)


def start_in(window: pd.DataFrame, plain: PlainColumns | None) -> int | None:
    """Where the window starts in the frame of ``plain`` (its index a range of positions
    there), or None."""
    index = window.index
    if plain is None or not isinstance(index, pd.RangeIndex) or index.step != 1 \
            or index.start < 0 or index.stop > plain.size:
        return None
    return int(index.start)


class PlainColumns:
    """A frame's span columns (``COLUMNS``) read once, to read any slice of it as the window
    readers read their own columns (the same values: a categorical's categories as Python
    objects, Arrow text as an Arrow array, numbers as numpy), without pandas per column and
    per window: ``_walked``'s cut, the entry services, the topology's first rows, the traces
    to walk."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.size = len(frame)
        self._frame = frame
        self._other: dict[str, np.ndarray] = {}  # other columns, read as numbers when asked
        self._numbers: list[tuple[int, np.ndarray]] = []
        self._text: dict[str, tuple[int, pd.Series | tuple[np.ndarray, np.ndarray] | pa.Array | pa.ChunkedArray]] = {}
        self._empty: dict[str, np.ndarray | None] = {}
        for place, name in enumerate(COLUMNS):
            column = frame[name]
            if numeric(column.dtype):
                self._numbers.append((place, column.to_numpy()))
            elif isinstance(column.dtype, pd.CategoricalDtype):
                array = column.array
                self._text[name] = (place, (np.asarray(array.codes), array.categories.to_numpy(dtype=object)))
            elif isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow":
                self._text[name] = (place, pa.array(column.array))
            else:
                self._text[name] = (place, column)

    def has(self, name: str) -> bool:
        return name in self._frame

    def numbers(self, name: str) -> np.ndarray:
        """``frame[name].to_numpy()``, made once."""
        if name not in self._other:
            self._other[name] = np.asarray(self._frame[name].to_numpy())
        return self._other[name]

    def arrow_take(self, name: str, positions: np.ndarray) -> pa.Array | pa.ChunkedArray | None:
        """An Arrow text column's values at ``positions``; None for another kind of column."""
        source = self._text[name][1]
        return source.take(positions) if isinstance(source, (pa.Array, pa.ChunkedArray)) else None

    def categorical(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """A categorical text column's codes and categories (as Python objects); None for
        another kind of column."""
        source = self._text[name][1]
        return source if isinstance(source, tuple) else None

    def trace_rows(self, start: int, length: int, traces: list[str]) -> np.ndarray | None:
        """The rows of [start, start + length) whose trace is one of ``traces``, counted from
        ``start`` (``_isin`` of those rows); None when Arrow does not answer it."""
        source = self._text["trace_id"][1]
        if not isinstance(source, (pa.Array, pa.ChunkedArray)) or not traces \
                or not all(type(v) is str for v in traces):
            return None
        text = source.slice(start, length)
        found = pc.is_in(text, value_set=pa.array(traces, type=text.type))
        return np.flatnonzero(np.array(found, dtype=np.bool_))

    def empty(self, name: str) -> np.ndarray | None:
        """``_is_empty`` of an Arrow text column without a missing value, over the whole
        frame (made once); None for another column."""
        if name not in self._empty:
            source = self._text[name][1]
            found = None
            if isinstance(source, (pa.Array, pa.ChunkedArray)) and not source.null_count:
                found = np.asarray(pc.equal(source, "").to_numpy(zero_copy_only=False))
            self._empty[name] = found
        return self._empty[name]

    def text(self, name: str, positions: np.ndarray) -> np.ndarray | None:
        """``_plain_text`` of the column at ``positions``."""
        source = self._text[name][1]
        if isinstance(source, tuple):
            codes = source[0][positions]
            return None if (codes < 0).any() else np.asarray(source[1][codes])
        if isinstance(source, pd.Series):
            return plain_text(source, positions)
        taken = source.take(positions)
        return None if taken.null_count else np.asarray(taken.to_numpy(zero_copy_only=False))

    def blocks(self, positions: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """``_walked``'s blocks of the rows at ``positions``; None when a text value is
        missing there."""
        blocks = [(values[positions][None, :], np.array([place])) for place, values in self._numbers]
        text_block = np.empty((len(self._text), len(positions)), dtype=object)
        for i, name in enumerate(self._text):
            values = self.text(name, positions)
            if values is None:
                return None
            text_block[i] = values
        blocks.append((text_block, np.array([place for place, _ in self._text.values()])))
        return blocks


def numeric(dtype: object) -> bool:
    """``pd.api.types.is_numeric_dtype``, answered at once for numpy, categorical and text
    dtypes (which it answers the same: a numeric kind; never)."""
    if isinstance(dtype, np.dtype):
        return dtype.kind in "iufcb"
    if isinstance(dtype, (pd.CategoricalDtype, pd.StringDtype)):
        return False
    return bool(pd.api.types.is_numeric_dtype(dtype))


def plain_text(column: pd.Series, rows: np.ndarray) -> np.ndarray | None:
    """``column.iloc[rows]`` as an object array of its values; None when one is missing."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = np.asarray(column.array.codes)[rows]
        if (codes < 0).any():
            return None
        return np.asarray(column.array.categories.to_numpy(dtype=object)[codes])
    if isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow":
        taken = pa.array(column.array).take(rows)
        return None if taken.null_count else np.asarray(taken.to_numpy(zero_copy_only=False))
    values = column.iloc[rows].to_numpy(dtype=object)
    return None if pd.isna(values).any() else np.asarray(values)
