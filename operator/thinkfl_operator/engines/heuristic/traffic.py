"""How much each log template's calls changed: the traffic a template's share is judged against.

A log line that carries a span ID belongs to a span, so each template belongs to an operation
(the one most of its lines' spans have). When a caller stops calling a service, that
service's lines of the operation fall with the calls: no fault of its own. When the calls
still arrive and a line vanishes, or an ERROR line appears, the service itself changed. So
each template's expected share in the window is weighted by how its operation's calls moved
(window rate over history rate, from the spans), and only what the traffic does not explain
is a log shift. Templates whose lines carry no span ID (or match no span) keep weight 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from thinkfl_operator.telemetry.spans import codes_of

#: Weights are kept within these bounds (a few calls more or less is no reason to explode).
MIN_WEIGHT, MAX_WEIGHT = 0.05, 20.0


def template_operations(spans: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """(service, template) → the operation most of its lines' spans have (columns service,
    template, operation); empty when lines carry no span IDs or none matches a span.

    A line joins the first span of its span ID (``_first_spans``, no frame merge); its
    (service, template, operation) are counted on integer codes in the order a pandas
    ``groupby`` sorts them, and the largest count of each (service, template) wins, the first
    in that order among equals."""
    empty = pd.DataFrame({"service": [], "template": [], "operation": []})
    if spans.empty or lines.empty or "template" not in lines or not (lines["span_id"] != "").any():
        return empty
    line_rows, span_rows = _first_spans(_strings(lines["span_id"]), _strings(spans["span_id"]))
    service, services = _group_codes(lines["service"])
    template, templates = _group_codes(lines["template"])
    operation, operations = _group_codes(spans["operation"])
    span_service, span_services = _group_codes(spans["service"])
    service, template = service[line_rows], template[line_rows]
    operation, span_service = operation[span_rows], span_service[span_rows]
    same = _same_names(services, service, span_services, span_service)
    same &= (service >= 0) & (template >= 0) & (operation >= 0)  # groupby leaves out missing keys
    if not same.any():
        return empty
    service, template, operation = service[same], template[same], operation[same]
    n_t, n_o = len(templates) + 1, len(operations) + 1
    keys, n = _counted((service * n_t + template) * n_o + operation)
    order = np.argsort(-n, kind="stable")
    pair = keys[order] // n_o
    first = order[np.sort(np.unique(pair, return_index=True)[1])]
    pair, op = keys[first] // n_o, keys[first] % n_o
    return pd.DataFrame({"service": _values(services, pair // n_t), "template": _values(templates, pair % n_t),
                         "operation": _values(operations, op)})


def _same_names(names: pd.Index, codes: np.ndarray, other: pd.Index, other_codes: np.ndarray) -> np.ndarray:
    """Whether ``names[codes]`` and ``other[other_codes]`` are the same text, row by row (a
    code of -1 reads the last name, as indexing the names does), told by numbering the
    distinct texts of both (a few dozen) instead of comparing a Python string per row."""
    number: dict[str, int] = {}
    ids = np.array([number.setdefault(name, len(number)) for name in names.astype(str).tolist()], dtype=np.int64)
    other_ids = np.array([number.setdefault(name, len(number)) for name in other.astype(str).tolist()],
                         dtype=np.int64)
    same: np.ndarray = ids[codes] == other_ids[other_codes]
    return same


def _counted(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_counts=True)`` (integers) by hashing, then sorting only the
    distinct keys (a few hundred of ~60k)."""
    codes, values = pd.factorize(keys)
    order = np.argsort(values)
    return values[order], np.bincount(codes, minlength=len(values))[order]


def _first_spans(line_ids: pa.Array | pa.ChunkedArray,
                 span_ids: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The lines whose ID some span has (ascending) and the first such span of each: what
    ``pc.index_in(line_ids, value_set=span_ids)`` tells (the index of a value's first
    occurrence in the set; nulls match nulls), looked up the other way: the spans (many) are
    looked up among the lines' distinct IDs (a few thousand), a smaller table to build."""
    lines = pc.dictionary_encode(line_ids, null_encoding="encode")
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    found = pc.index_in(span_ids, value_set=lines.dictionary)
    rows = np.flatnonzero(found.is_valid().to_numpy(zero_copy_only=False))
    ids, first = np.unique(found.drop_null().to_numpy(zero_copy_only=False).astype("int64"), return_index=True)
    span_of = np.full(len(lines.dictionary), -1, dtype="int64")
    span_of[ids] = rows[first]
    span_of_line = span_of[lines.indices.to_numpy(zero_copy_only=False)]
    line_rows = np.flatnonzero(span_of_line >= 0)
    return line_rows, span_of_line[line_rows]


def _strings(column: pd.Series) -> pa.Array:
    """A text column as pyarrow strings (no copy when pandas holds it in pyarrow already)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(str)
    return pc.cast(pa.array(column, from_pandas=True), pa.string())


def _group_codes(column: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes in the order ``groupby`` sorts the column (a categorical by its categories,
    else by value; −1 for a missing value), and the values they stand for."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy().astype("int64"), column.cat.categories
    codes, uniques = pd.factorize(column, sort=True)
    return np.asarray(codes, dtype="int64"), pd.Index(uniques)


def _values(index: pd.Index, codes: np.ndarray) -> pd.Series:
    """The values of ``codes`` (a categorical over ``index``'s values when it holds categories)."""
    return pd.Series(pd.Categorical.from_codes(codes, categories=index))


class OperationCalls:
    """The spans of one frame as (service, operation) codes and start times, coded once so each
    incident counts calls with ``bincount`` (an evaluation reuses one frame for a whole day).
    The times are kept sorted (with their codes), so the calls of a period are one slice: the
    same calls as comparing every time with its bounds (a missing time sorts last and lies in
    no period), counted alike."""

    def __init__(self, spans: pd.DataFrame) -> None:
        self.t = spans["start_us"].to_numpy() / 1e6
        services, service_names = codes_of(spans["service"])
        operations, operation_names = codes_of(spans["operation"])
        pair = services * max(len(operation_names), 1) + operations
        codes, distinct = pd.factorize(pair)
        self.codes = np.asarray(codes, dtype="int64")
        self.keys = [(str(service_names[p // max(len(operation_names), 1)]),
                      str(operation_names[p % max(len(operation_names), 1)])) for p in distinct]
        self._first = float(self.t.min()) if len(self.t) else 0.0
        if len(self.t) and not bool(np.all(self.t[1:] >= self.t[:-1])):
            order = np.argsort(self.t, kind="stable")
            self._sorted, self._sorted_codes = self.t[order], self.codes[order]
        else:
            self._sorted, self._sorted_codes = self.t, self.codes

    def ratios(self, window: tuple[float, float], history: tuple[float, float]) -> dict[tuple[str, str], float]:
        """(service, operation) → calls per second in ``window`` over calls per second in the
        part of ``history`` the spans cover (one added to each count)."""
        seen, rates = self.rates(window, history)
        return {self.keys[int(i)]: float(r) for i, r in zip(seen, rates, strict=True)}

    def rates(self, window: tuple[float, float], history: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        """``ratios`` as arrays: the key numbers (ascending) with a call in either period, and
        their ratios (none when a period is empty)."""
        first = self._first if len(self.t) else history[0]
        h_lo = max(history[0], first)
        w_sec, h_sec = window[1] - window[0], history[1] - h_lo
        if w_sec <= 0 or h_sec <= 0:
            return np.zeros(0, dtype="int64"), np.zeros(0)
        w = self._calls(window[0], window[1])
        h = self._calls(h_lo, history[1])
        seen = np.flatnonzero((w > 0) | (h > 0))
        return seen, ((w[seen] + 1.0) / w_sec) / ((h[seen] + 1.0) / h_sec)

    def _calls(self, lo: float, hi: float) -> np.ndarray:
        """Calls per key started in [lo, hi), as float64."""
        a, b = np.searchsorted(self._sorted, [lo, hi], side="left")
        return np.bincount(self._sorted_codes[a:b], minlength=len(self.keys)).astype("float64")


class TemplateTraffic:
    """``template_traffic`` of one span frame's calls and templates' owners, with the owners'
    names and their operations' key numbers found once (each incident then reads its ratios
    by number)."""

    def __init__(self, calls: OperationCalls, owners: pd.DataFrame) -> None:
        self.calls = calls
        self._pairs = [(str(s), str(t)) for s, t in zip(owners["service"], owners["template"], strict=True)]
        number = {key: i for i, key in enumerate(calls.keys)}
        self._numbers = np.array([number.get((str(s), str(o)), -1)
                                  for s, o in zip(owners["service"], owners["operation"], strict=True)], dtype="int64")
        # two keys of the same names: ``ratios``' dict keeps the last one seen, read it so
        self._by_name = len(number) < len(calls.keys)
        self._owners = owners

    def between(self, window: tuple[float, float], history: tuple[float, float]) -> dict[tuple[str, str], float]:
        """(service, template) → its operation's ratio of calls, ``window`` over ``history``,
        kept within ``MIN_WEIGHT`` and ``MAX_WEIGHT``; in the owners' order. The bounds are
        applied by ``np.maximum``/``np.minimum``, the same float as ``min(max(r, MIN), MAX)``
        per ratio (each returns one of its arguments; a NaN ratio stays NaN in both)."""
        if len(self.calls.t) == 0 or not self._pairs:
            return {}
        if self._by_name:
            return _traffic(self.calls.ratios(window, history), self._owners)
        seen, rates = self.calls.rates(window, history)
        ratio = np.zeros(len(self.calls.keys) + 1)
        has = np.zeros(len(self.calls.keys) + 1, dtype=bool)
        ratio[seen], has[seen] = rates, True  # number -1 (no key) reads the last, never set
        rows = np.flatnonzero(has[self._numbers])
        values = np.minimum(np.maximum(ratio[self._numbers[rows]], MIN_WEIGHT), MAX_WEIGHT)
        return dict(zip([self._pairs[i] for i in rows], values.tolist(), strict=True))


def template_traffic(calls: OperationCalls, owners: pd.DataFrame, window: tuple[float, float],
                     history: tuple[float, float]) -> dict[tuple[str, str], float]:
    """(service, template) → calls of its operation (``owners``: ``template_operations``) per
    second in ``window`` over ``history`` (the part of it the spans cover)."""
    return TemplateTraffic(calls, owners).between(window, history)


def _traffic(ratio: dict[tuple[str, str], float], owners: pd.DataFrame) -> dict[tuple[str, str], float]:
    """``template_traffic`` from the ratios by name, owner by owner."""
    out: dict[tuple[str, str], float] = {}
    for service, template, operation in zip(owners["service"], owners["template"], owners["operation"],
                                            strict=True):
        value = ratio.get((str(service), str(operation)))
        if value is not None:
            out[(str(service), str(template))] = min(max(value, MIN_WEIGHT), MAX_WEIGHT)  # np.clip, per scalar
    return out
