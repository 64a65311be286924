"""Columnar spans with the indexes the tools need (children by parent, spans by trace).

Every source normalizes into one pandas frame with these columns:

    trace_id, span_id, parent_id ("" for roots), pod, service, node, operation,
    start_us (epoch µs, int64), duration_us (µs, int64), status (str), kind (str)

``clean_spans`` applies the defect rules (duplicate span IDs, missing fields, corrupt epochs,
negative durations) and tallies what it dropped in a ``DataQuality``.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import union_categoricals

from thinkfl_operator.core.models import Span
from thinkfl_operator.telemetry.quality import DataQuality

COLUMNS = (
    "trace_id",
    "span_id",
    "parent_id",
    "pod",
    "service",
    "node",
    "operation",
    "start_us",
    "duration_us",
    "status",
    "kind",
)
_TEXT = ("trace_id", "span_id", "parent_id", "pod", "service", "node", "operation", "status", "kind")

#: Start times further than this from the batch median are corrupt epochs (µs).
_CORRUPT_EPOCH_US = 2 * 86_400 * 1_000_000


def span_and_parent_keys(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Integer keys of (trace_id, span_id) and (trace_id, parent_id) in one code space."""
    n = len(frame)
    ids = pd.factorize(pd.concat([frame["span_id"], frame["parent_id"]], ignore_index=True))[0]
    trace = pd.factorize(frame["trace_id"])[0].astype("int64") << 32
    ids = ids.astype("int64")
    return trace | ids[:n], trace | ids[n:]


def categorical(values: pd.Series) -> pd.Series:
    """A low-cardinality text column as a categorical (takes and groupings work on codes)."""
    codes, names = pd.factorize(values)
    return pd.Series(pd.Categorical.from_codes(codes, categories=[str(n) for n in names]), index=values.index)


def codes_of(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of a text column and the values they stand for (``str``; a missing value is
    ""): a categorical's own codes, free, else a factorization."""
    if isinstance(column.dtype, pd.CategoricalDtype):  # read from the array (no accessor, no Series)
        array = column.array
        codes = np.asarray(array.codes).astype("int64")
        values = array.categories.to_numpy().astype(str).astype(object)
        if (codes < 0).any():  # a missing value: its own code past the categories
            codes = np.where(codes < 0, len(values), codes)
            values = np.append(values, "")
        return codes, values
    codes, values = pd.factorize(column.fillna("").astype(str).to_numpy(dtype=object), sort=False)
    return codes.astype("int64"), np.asarray(values, dtype=object)


def constant(value: str, index: pd.Index) -> pd.Series:
    return pd.Series(pd.Categorical.from_codes(np.zeros(len(index), dtype="int8"), categories=[value]),
                     index=index)


def concat_spans(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate span frames, keeping categorical columns categorical (categories united)."""
    frames = [f.drop(columns=["span_key", "parent_key"], errors="ignore") for f in frames]
    columns = {}
    for col in frames[0].columns:
        parts = [f[col] for f in frames]
        if all(isinstance(p.dtype, pd.CategoricalDtype) for p in parts):
            columns[col] = pd.Series(union_categoricals([p.array for p in parts]))
        else:
            columns[col] = pd.concat([p.astype(str) if isinstance(p.dtype, pd.CategoricalDtype) else p
                                      for p in parts], ignore_index=True)
    return pd.DataFrame(columns)


def empty_frame() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in _TEXT})
    frame["start_us"] = pd.Series(dtype="int64")
    frame["duration_us"] = pd.Series(dtype="int64")
    return frame[list(COLUMNS)]


def clean_spans(frame: pd.DataFrame, quality: DataQuality) -> pd.DataFrame:
    """Drop unusable rows and repeats; return a frame with exactly ``COLUMNS``."""
    if frame.empty:
        return empty_frame()
    text = {col: text_column(frame[col]) for col in _TEXT}
    start = pd.to_numeric(frame["start_us"], errors="coerce").to_numpy(dtype="float64")
    duration = pd.to_numeric(frame["duration_us"], errors="coerce").to_numpy(dtype="float64")
    bad = np.isnan(start) | np.isnan(duration)
    bad |= (text["span_id"] == "").to_numpy() | (text["trace_id"] == "").to_numpy()
    keep = _usable(start, duration, bad, quality)
    out = pd.DataFrame({**text, "start_us": np.where(keep, start, 0).astype("int64"),
                        "duration_us": np.where(keep, duration, 0).astype("int64")})[list(COLUMNS)]
    return unique_sorted(out, quality, keep)


def clean_columns(ids: dict[str, pa.Array | pa.ChunkedArray], categories: dict[str, tuple[np.ndarray, list[str]]],
                  start_us: np.ndarray, duration_us: np.ndarray, quality: DataQuality) -> pd.DataFrame:
    """``clean_spans`` of columns given apart, without pandas until the end: ``trace_id``,
    ``span_id`` and ``parent_id`` as Arrow text (arrays or chunked) without missing values; text columns with few
    values as (codes, values) (``arrow_codes``; a column left out is "", ``status`` "0");
    ``start_us`` and ``duration_us`` as int64. The rows kept are taken once and the frame is
    built once: the frame ``clean_spans`` returns for these columns, dtypes, categories (in
    order of first appearance, over all rows) and keys alike."""
    start = start_us.astype("float64")
    duration = duration_us.astype("float64")
    bad = _is_empty(ids["span_id"]) | _is_empty(ids["trace_id"])
    keep = _usable(start, duration, bad, quality)
    start_out = np.where(keep, start, 0).astype("int64")
    keys, parents = _keys(ids["trace_id"], ids["span_id"], ids["parent_id"])
    rows = _unique_rows(keys, start_out, np.flatnonzero(keep), quality)
    taken = pa.array(rows)
    text = pa.table({c: ids[c].take(taken) for c in ("trace_id", "span_id", "parent_id")}).to_pandas()
    columns: dict[str, object] = {c: text[c].array for c in text.columns}
    for col in ("pod", "service", "node", "operation", "status", "kind"):
        if col in categories:
            codes, values = categories[col]
            columns[col] = pd.Categorical.from_codes(codes[rows], categories=values)
        else:  # as ``constant``
            columns[col] = pd.Categorical.from_codes(np.zeros(len(rows), dtype="int8"),
                                                     categories=["0" if col == "status" else ""])
    columns.update(start_us=start_out[rows], duration_us=np.where(keep, duration, 0).astype("int64")[rows],
                   span_key=keys[rows], parent_key=parents[rows])
    return pd.DataFrame({c: columns[c] for c in (*COLUMNS, "span_key", "parent_key")}, copy=False)


def _usable(start: np.ndarray, duration: np.ndarray, bad: np.ndarray, quality: DataQuality) -> np.ndarray:
    """The spans kept: not ``bad`` (a missing field), no corrupt start, no negative duration;
    each rule's drops tallied."""
    quality.add("spans with a missing ID, start or duration", int(bad.sum()))
    keep = ~bad
    if keep.any():
        median = float(np.median(start[keep]))
        corrupt = keep & (np.abs(start - median) > _CORRUPT_EPOCH_US)
        negative = keep & ~corrupt & (duration < 0)
        quality.add("spans with a corrupt start time", int(corrupt.sum()))
        quality.add("spans with a negative duration", int(negative.sum()))
        keep &= ~(corrupt | negative)
    return keep


def arrow_codes(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Codes and values of Arrow text (an array or chunked: one encoding over all chunks)
    without missing values, in order of first appearance: what ``categorical`` makes of the
    same column."""
    encoded = _encoded(values)
    return encoded.indices.to_numpy(), [str(v) for v in encoded.dictionary.to_pylist()]


def _encoded(values: pa.Array | pa.ChunkedArray) -> pa.DictionaryArray:
    encoded = pc.dictionary_encode(values)
    return encoded.combine_chunks() if isinstance(encoded, pa.ChunkedArray) else encoded


def _chunks(values: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return values.chunks if isinstance(values, pa.ChunkedArray) else [values]


def _is_empty(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    empty: np.ndarray = pc.equal(values, "").to_numpy(zero_copy_only=False)
    return empty


def _keys(trace: pa.Array | pa.ChunkedArray, span: pa.Array | pa.ChunkedArray,
          parent: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """``span_and_parent_keys`` of Arrow columns, the same codes: ``pd.factorize`` of text is
    in order of first appearance, as this dictionary encoding (pandas' own for Arrow text)."""
    n = len(span)
    ids = _encoded(pa.chunked_array(_chunks(span) + _chunks(parent), type=span.type)).indices
    codes = ids.to_numpy().astype("int64")
    traces = _encoded(trace).indices.to_numpy().astype("int64") << 32
    return traces | codes[:n], traces | codes[n:]


def unique_sorted(frame: pd.DataFrame, quality: DataQuality, keep: np.ndarray | None = None) -> pd.DataFrame:
    """The rows in ``keep`` without repeated spans, sorted by start, in one take; with integer
    ``span_key``/``parent_key`` columns (comparable within this frame) for fast joins."""
    keys, parents = span_and_parent_keys(frame)
    rows = np.flatnonzero(keep) if keep is not None else np.arange(len(frame))
    rows = _unique_rows(keys, frame["start_us"].to_numpy(), rows, quality)
    out = frame.iloc[rows] if len(rows) < len(frame) or not _is_identity(rows) else frame
    return out.assign(span_key=keys[rows], parent_key=parents[rows]).reset_index(drop=True)


def _unique_rows(keys: np.ndarray, starts: np.ndarray, rows: np.ndarray, quality: DataQuality) -> np.ndarray:
    """Of ``rows``, the first of each key (repeats tallied), in order of start (stable)."""
    repeated = pd.Series(keys[rows]).duplicated(keep="first").to_numpy()
    if repeated.any():
        quality.add("repeated spans", int(repeated.sum()))
        rows = rows[~repeated]
    starts = starts[rows]
    if len(starts) > 1 and (np.diff(starts) < 0).any():
        rows = rows[np.argsort(starts, kind="stable")]
    return rows


def cap_spans(frame: pd.DataFrame, max_spans: int, around_us: float | None,
              quality: DataQuality) -> pd.DataFrame:
    """At most ``max_spans`` spans, kept a whole trace at a time, the traces that start nearest
    ``around_us`` first (the incident matters more than the baseline's far edge); a single
    trace larger than the cap keeps its earliest spans. What was left out is counted in
    ``quality``, so the diagnosis says its evidence was cut. Sorted by start, as given."""
    if len(frame) <= max_spans:
        return frame
    starts = frame.groupby("trace_id", observed=True, sort=False)["start_us"].agg(["min", "size"])
    centre = float(around_us) if around_us is not None else float(frame["start_us"].median())
    order = starts.assign(distance=(starts["min"] - centre).abs()).sort_values("distance", kind="stable")
    fits = order["size"].cumsum() <= max_spans
    kept_traces = order.index[fits.to_numpy()]
    if len(kept_traces) == 0:  # one trace alone is over the cap: its earliest spans
        first = frame[frame["trace_id"] == order.index[0]]
        kept = first.iloc[:max_spans]
    else:
        kept = frame[frame["trace_id"].isin(kept_traces).to_numpy()]
    quality.add(f"spans past the cap of {max_spans} per diagnosis (traces.max_spans; the traces "
                f"farthest from the incident left out)", len(frame) - len(kept))
    return kept


def _is_identity(rows: np.ndarray) -> bool:
    return bool(len(rows) == 0 or (rows[0] == 0 and (np.diff(rows) == 1).all()))


def text_column(column: pd.Series) -> pd.Series:
    """A text column with missing values as "" (numbers read from CSV become their text).
    Categorical columns stay categorical (cheap to reorder), with "" for missing values."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        if column.hasnans:
            if "" not in column.cat.categories:
                column = column.cat.add_categories([""])
            column = column.fillna("")
        return column.reset_index(drop=True)
    if not pd.api.types.is_string_dtype(column) or column.dtype == object:
        column = column.astype(object).where(column.notna(), "").astype(str)
    elif column.hasnans:
        column = column.fillna("")
    return column.reset_index(drop=True)


class SpanTable:
    """An immutable, indexed set of spans."""

    #: What a ``take`` cuts its frame from when asked: the frame and the rows.
    _source: tuple[pd.DataFrame, np.ndarray]

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame.reset_index(drop=True)

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The spans as a frame (a table made by ``take`` makes it on first use)."""
        source, rows = self._source
        return source.iloc[rows].reset_index(drop=True)

    def __len__(self) -> int:
        columns = self.__dict__.get("_columns")
        return len(self.frame) if columns is None else len(columns["span_id"])

    def columns(self) -> dict[str, np.ndarray]:
        """The span columns as numpy arrays (text as Python objects, numbers as int64), made
        once: readers of a few small tables column by column pay no pandas call per read."""
        return self._columns

    def take(self, rows: np.ndarray) -> SpanTable:
        """The spans at positions ``rows``, as ``SpanTable(self.frame.iloc[rows])``: their
        columns (``_as_columns``) cut from this table's instead of converted again, the frame
        made only when asked (a trace that is walked and searched by columns never makes it)."""
        table = SpanTable.__new__(SpanTable)
        table._source = (self.frame, rows)
        table.__dict__["_columns"] = {c: values[rows] for c, values in self._columns.items()}
        return table

    @cached_property
    def _columns(self) -> dict[str, np.ndarray]:
        return _as_columns(self.frame)

    @cached_property
    def _children(self) -> dict[str, list[int]]:
        index: dict[str, list[int]] = {}
        for row, parent in enumerate(self._columns["parent_id"]):
            index.setdefault(parent, []).append(row)
        return index

    @cached_property
    def _by_span(self) -> dict[str, int]:
        return {sid: i for i, sid in enumerate(self._columns["span_id"])}

    def children(self, parent_span_id: str) -> list[Span]:
        """Child spans of a span, ordered by start time (an index lookup, not a scan)."""
        if not parent_span_id:
            return []
        rows = self._children.get(parent_span_id, [])
        starts = self._columns["start_us"]
        return [self._span(r) for r in sorted(rows, key=lambda r: (starts[r], r))]

    def span(self, span_id: str) -> Span | None:
        row = self._by_span.get(span_id)
        return None if row is None else self._span(row)

    def trace(self, trace_id: str) -> SpanTable:
        return SpanTable(self.frame[self.frame["trace_id"] == trace_id])

    def trace_ids(self) -> list[str]:
        return list(dict.fromkeys(self._columns["trace_id"]))

    def root(self) -> Span | None:
        """The earliest span whose parent is absent from the table (the trace's root)."""
        if len(self) == 0:
            return None
        # by the converted columns when made (their IDs all text: a set finds the orphans),
        # else by the frame's columns: an engine asks for the root of each trace it walks, and
        # the text columns as Python objects (``_columns``) cost more than the whole search
        columns: dict[str, np.ndarray] | None = self.__dict__.get("_columns")
        orphan = None if columns is None else _orphans(columns["parent_id"], columns["span_id"])
        if columns is not None and orphan is not None:
            start_all, duration_all = columns["start_us"], columns["duration_us"]
        else:
            orphan = ~self.frame["parent_id"].isin(self.frame["span_id"]).to_numpy()
            start_all = self.frame["start_us"].to_numpy(dtype="int64")
            duration_all = self.frame["duration_us"].to_numpy(dtype="int64")
        rows = np.flatnonzero(orphan) if orphan.any() else np.arange(len(self))
        start, duration = start_all[rows], duration_all[rows]
        first = int(rows[np.lexsort((-duration, start))[0]])  # stable: the first of equals, as min()
        return self._span(first) if "_columns" in self.__dict__ else self._row_span(first)

    def _row_span(self, row: int) -> Span:
        """``_span(row)``, its values converted as ``_columns`` converts them, of that row only."""
        return _span_at(_as_columns(self.frame.iloc[row:row + 1]), 0)

    def pods(self) -> dict[str, str]:
        """pod → service for every pod seen."""
        return dict(zip(self._columns["pod"], self._columns["service"], strict=True))

    def nodes(self) -> dict[str, str]:
        """pod → node where the spans say it."""
        return {p: n for p, n in zip(self._columns["pod"], self._columns["node"], strict=True) if n}

    def _span(self, row: int) -> Span:
        return _span_at(self._columns, row)


def _orphans(parents: np.ndarray, spans: np.ndarray) -> np.ndarray | None:
    """``~Series(parents).isin(spans)`` of converted columns (``_as_columns``) whose IDs are
    all ``str`` (equal exactly when their hashes match and they compare equal, as pandas'
    hash table matches them), by a set; None for any other value (pandas' rules then)."""
    parent_ids, span_ids = parents.tolist(), spans.tolist()
    if not all(type(v) is str for v in parent_ids) or not all(type(v) is str for v in span_ids):
        return None
    known = set(span_ids)
    return np.array([p not in known for p in parent_ids], dtype=bool)


def _as_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The span columns as numpy arrays: text as Python objects, numbers as int64."""
    return {c: frame[c].to_numpy(dtype=object if c in _TEXT else "int64") for c in COLUMNS}


def _span_at(c: dict[str, np.ndarray], row: int) -> Span:
    """Row ``row`` of span columns (``_as_columns``) as a Span."""
    return Span(
        trace_id=c["trace_id"][row],
        span_id=c["span_id"][row],
        parent_span=c["parent_id"][row],
        cmdb_id=c["pod"][row],
        service=c["service"][row],
        operation_name=c["operation"][row],
        timestamp=int(c["start_us"][row]) // 1000,
        duration=int(c["duration_us"][row]),
        status_code=c["status"][row] or "0",
        type=c["kind"][row],
    )
