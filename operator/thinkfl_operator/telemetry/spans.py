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

from thinkfl_operator.models import Span
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


def empty_frame() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in _TEXT})
    frame["start_us"] = pd.Series(dtype="int64")
    frame["duration_us"] = pd.Series(dtype="int64")
    return frame[list(COLUMNS)]


def clean_spans(frame: pd.DataFrame, quality: DataQuality) -> pd.DataFrame:
    """Drop unusable rows and repeats; return a frame with exactly ``COLUMNS``."""
    if frame.empty:
        return empty_frame()
    frame = frame.copy()
    for col in _TEXT:
        frame[col] = frame[col].fillna("").astype(str)
    start = pd.to_numeric(frame["start_us"], errors="coerce")
    duration = pd.to_numeric(frame["duration_us"], errors="coerce")
    bad = start.isna() | duration.isna() | (frame["span_id"] == "") | (frame["trace_id"] == "")
    quality.add("spans with a missing ID, start or duration", int(bad.sum()))
    frame, start, duration = frame[~bad], start[~bad], duration[~bad]
    if not frame.empty:
        median = float(start.median())
        corrupt = (start - median).abs() > _CORRUPT_EPOCH_US
        negative = duration < 0
        quality.add("spans with a corrupt start time", int(corrupt.sum()))
        quality.add("spans with a negative duration", int((negative & ~corrupt).sum()))
        keep = ~(corrupt | negative)
        frame, start, duration = frame[keep], start[keep], duration[keep]
    frame["start_us"] = start.astype("int64")
    frame["duration_us"] = duration.astype("int64")
    dup = frame.duplicated(subset=["trace_id", "span_id"], keep="first")
    quality.add("repeated spans", int(dup.sum()))
    frame = frame[~dup]
    return frame[list(COLUMNS)].reset_index(drop=True)


class SpanTable:
    """An immutable, indexed set of spans."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame.reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.frame)

    @cached_property
    def _children(self) -> dict[str, np.ndarray]:
        groups = self.frame.groupby("parent_id", sort=False).indices
        return {str(k): v for k, v in groups.items()}

    @cached_property
    def _by_trace(self) -> dict[str, np.ndarray]:
        groups = self.frame.groupby("trace_id", sort=False).indices
        return {str(k): v for k, v in groups.items()}

    @cached_property
    def _by_span(self) -> dict[str, int]:
        return {sid: i for i, sid in enumerate(self.frame["span_id"].tolist())}

    def children(self, parent_span_id: str) -> list[Span]:
        """Child spans of a span, ordered by start time (an index lookup, not a scan)."""
        rows = self._children.get(parent_span_id)
        if rows is None or not parent_span_id:
            return []
        return self._spans(self.frame.iloc[rows].sort_values("start_us", kind="stable"))

    def span(self, span_id: str) -> Span | None:
        row = self._by_span.get(span_id)
        return None if row is None else self._spans(self.frame.iloc[[row]])[0]

    def trace(self, trace_id: str) -> "SpanTable":
        rows = self._by_trace.get(trace_id)
        if rows is None:
            return SpanTable(empty_frame())
        return SpanTable(self.frame.iloc[rows])

    def trace_ids(self) -> list[str]:
        return list(self._by_trace)

    def root(self) -> Span | None:
        """The earliest span whose parent is absent from the table (the trace's root)."""
        frame = self.frame
        if frame.empty:
            return None
        known = set(frame["span_id"])
        orphans = frame[~frame["parent_id"].isin(known)]
        pick = orphans if not orphans.empty else frame
        first = pick.sort_values(["start_us", "duration_us"], ascending=[True, False]).iloc[[0]]
        return self._spans(first)[0]

    def pods(self) -> dict[str, str]:
        """pod → service for every pod seen."""
        pairs = self.frame[["pod", "service"]].drop_duplicates("pod")
        return dict(zip(pairs["pod"], pairs["service"], strict=True))

    def nodes(self) -> dict[str, str]:
        """pod → node where the spans say it."""
        pairs = self.frame.loc[self.frame["node"] != "", ["pod", "node"]].drop_duplicates("pod")
        return dict(zip(pairs["pod"], pairs["node"], strict=True))

    @staticmethod
    def _spans(rows: pd.DataFrame) -> list[Span]:
        out = []
        for r in rows.itertuples(index=False):
            out.append(
                Span(
                    trace_id=r.trace_id,
                    span_id=r.span_id,
                    parent_span=r.parent_id,
                    cmdb_id=r.pod,
                    service=r.service,
                    operation_name=r.operation,
                    timestamp=int(r.start_us) // 1000,
                    duration=int(r.duration_us),
                    status_code=r.status or "0",
                    type=r.kind,
                )
            )
        return out
