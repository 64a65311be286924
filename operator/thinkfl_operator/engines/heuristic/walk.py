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

#: Deepest chain of search_traces calls per trace.
MAX_DEPTH = 12
#: Levels explored below the suspect's span.
EXTRA_DEPTH = 1

#: One trace's spans: a frame, or its columns as arrays (``SpanTable.columns``: text as
#: Python objects, numbers as int64), read alike.
Trace: TypeAlias = "pd.DataFrame | Mapping[str, np.ndarray]"


def pick_traces(window: pd.DataFrame, suspect: PodEvidence | None, limit: int) -> list[str]:
    """Window traces that show the suspect's strongest anomaly, most extreme first; traces with
    errors come first (the suspect's errors, or any, when there is no suspect)."""
    if window.empty:
        return []
    trace = window["trace_id"]
    rows = np.arange(len(window)) if suspect is None else np.flatnonzero(_equal(window, "pod", suspect.pod))
    if "is_error" in window:
        errors = rows[window["is_error"].to_numpy()[rows] > 0]
        if len(errors):
            return _first(trace, errors, limit)
    if suspect is None:
        return _first(trace, rows, limit)
    best = suspect.best
    if best is not None and best.kind in ("self", "net", "short"):
        values = window[{"self": "self_us", "net": "gap_us", "short": "duration_us"}[best.kind]].to_numpy()
        same = rows[_equal(window, "operation", best.operation, rows)]
        same = same[~pd.isna(values[same])]
        if len(same):
            return _first(trace, same[sorted_rows(values[same], ascending=best.kind == "short")], limit)
    return _first(trace, rows, limit)


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
