"""The Loki stand-in's data: log lines in streams, and the answers Loki computes from them.

Lines are kept sorted by time in flat arrays (time, stream index, line, structured metadata),
so a time range is two binary searches and the stand-in stays as fast as a real Loki on the
datasets' volumes. Answers are built in Loki's JSON shapes (see ``loki_api``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tests.fakes.logql import LogQuery, MetricQuery

Labels = dict[str, str]
_DIGIT = re.compile(r"\d")
_LEVEL = re.compile(r"\b(trace|debug|info|warn|warning|error|fatal|critical)\b", re.IGNORECASE)


def template(line: str) -> str:
    """A pattern like the pattern ingester's: tokens holding a digit become ``<_>``."""
    out: list[str] = []
    for token in line.split():
        token = "<_>" if _DIGIT.search(token) else token
        if not (token == "<_>" and out and out[-1] == "<_>"):
            out.append(token)
    return " ".join(out)


def level(line: str) -> str:
    match = _LEVEL.search(line[:200])
    return "unknown" if match is None else match.group(1).lower().replace("warning", "warn")


def _names(spec: Sequence[str] | Mapping[str, str], columns: Sequence[str]) -> dict[str, str]:
    pairs = spec.items() if isinstance(spec, Mapping) else ((c, c) for c in spec)
    return {col: name for col, name in pairs if col in columns}


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _prom_value(value: float) -> str:
    text = repr(float(value))
    return text.removesuffix(".0")


def _prom_time(t_ns: int) -> int | float:
    ms = t_ns // 1_000_000
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


class LokiStore:
    """Streams of lines, and Loki's answers over them."""

    def __init__(self, lines: pd.DataFrame | None, labels: Sequence[str] | Mapping[str, str],
                 metadata: Sequence[str] | Mapping[str, str]) -> None:
        frame = lines if lines is not None else pd.DataFrame({"time_ns": [], "line": []})
        frame = frame.sort_values("time_ns", kind="stable", ignore_index=True)
        label_cols = _names(labels, list(frame.columns))
        meta_cols = _names(metadata, list(frame.columns))
        self.times = frame["time_ns"].to_numpy(dtype=np.int64)
        self.lines = [_text(v) for v in frame["line"].tolist()]
        keys = [tuple((name, _text(v)) for name, v in zip(label_cols.values(), row, strict=True)
                      if _text(v))
                for row in zip(*(frame[c].tolist() for c in label_cols), strict=True)] \
            if label_cols else [()] * len(frame)
        index: dict[tuple[tuple[str, str], ...], int] = {}
        self.sids = np.array([index.setdefault(k, len(index)) for k in keys], dtype=np.int32)
        self.stream_labels: list[Labels] = [dict(k) for k in index]
        self.metadata: list[Labels] = [
            {name: _text(v) for name, v in zip(meta_cols.values(), row, strict=True) if _text(v)}
            for row in zip(*(frame[c].tolist() for c in meta_cols), strict=True)
        ] if meta_cols else [{} for _ in range(len(frame))]
        self.has_metadata = any(self.metadata)
        self._templates: list[str] | None = None

    # ------------------------------------------------------------------ selection

    def _selected(self, expr: LogQuery | None) -> np.ndarray:
        return np.array([expr is None or expr.selects(s) for s in self.stream_labels] or [False])

    def _indexes(self, expr: LogQuery | None, start: int, end: int) -> np.ndarray:
        """Lines of the selected streams in [start, end), by time (filters not applied)."""
        lo, hi = np.searchsorted(self.times, [start, end], side="left")
        candidates = np.arange(lo, hi)
        return candidates[self._selected(expr)[self.sids[lo:hi]]] if len(candidates) else candidates

    # ------------------------------------------------------------------ answers

    def streams(self, expr: LogQuery, start: int, end: int, limit: int, direction: str,
                categorize: bool) -> tuple[list[dict[str, Any]], int]:
        found = self._indexes(expr, start, end)
        order = found[::-1] if direction == "backward" else found
        picked: list[int] = []
        if expr.filters:
            for i in order.tolist():
                if expr.keeps(self.lines[i]):
                    picked.append(i)
                    if len(picked) >= limit:
                        break
        else:
            picked = order[:limit].tolist()
        grouped: dict[tuple[tuple[str, str], ...], list[list[Any]]] = {}
        for i in picked:
            labels, meta = self.stream_labels[self.sids[i]], self.metadata[i]
            entry: list[Any] = [str(self.times[i]), self.lines[i]]
            if categorize:
                entry.append({"structuredMetadata": meta} if meta else {})
            else:
                labels = {**labels, **meta}
            grouped.setdefault(tuple(sorted(labels.items())), []).append(entry)
        result = [{"stream": dict(key), "values": values} for key, values in sorted(grouped.items())]
        return result, len(found)

    def matrix(self, expr: MetricQuery, start: int, end: int,
               step: int) -> tuple[list[dict[str, Any]], int]:
        points = np.arange(start, end + 1, step, dtype=np.int64)
        found = self._indexes(expr.log, start - expr.range_ns, end + 1)
        series: dict[tuple[tuple[str, str], ...], list[np.ndarray]] = {}
        if expr.log.filters or self.has_metadata:  # line by line
            for i in found.tolist():
                if expr.log.filters and not expr.log.keeps(self.lines[i]):
                    continue
                labels = {**self.stream_labels[self.sids[i]], **self.metadata[i]}
                series.setdefault(self._key(expr, labels), []).append(self.times[i:i + 1])
        else:  # a stream at a time
            sids = self.sids[found]
            for sid in np.unique(sids).tolist():
                key = self._key(expr, self.stream_labels[sid])
                series.setdefault(key, []).append(self.times[found[sids == sid]])
        result = []
        for key, parts in sorted(series.items()):
            times = np.sort(np.concatenate(parts))
            counts = (np.searchsorted(times, points, side="right")
                      - np.searchsorted(times, points - expr.range_ns, side="right"))
            scale = 1e9 / expr.range_ns if expr.function == "rate" else 1.0
            values = [[_prom_time(int(t)), _prom_value(c * scale)]
                      for t, c in zip(points.tolist(), counts.tolist(), strict=True) if c > 0]
            if values:
                result.append({"metric": dict(key), "values": values})
        return result, len(found)

    @staticmethod
    def _key(expr: MetricQuery, labels: Labels) -> tuple[tuple[str, str], ...]:
        if not expr.aggregate:
            return tuple(sorted(labels.items()))
        names = expr.grouping or ()
        if expr.without:
            return tuple(sorted((k, v) for k, v in labels.items() if k not in names))
        return tuple((k, labels[k]) for k in sorted(names) if labels.get(k))

    def patterns(self, expr: LogQuery, start: int, end: int, step: int) -> list[dict[str, Any]]:
        counts: dict[str, dict[int, int]] = {}
        levels: dict[str, str] = {}
        templates = self.templates()
        for i in self._indexes(expr, start, end).tolist():
            line = self.lines[i]
            if expr.filters and not expr.keeps(line):
                continue
            pattern = templates[i]
            bucket = int(self.times[i]) // step * step // 10**9
            counts.setdefault(pattern, {}).setdefault(bucket, 0)
            counts[pattern][bucket] += 1
            levels.setdefault(pattern, level(line))
        return [{"pattern": p, "level": levels[p], "samples": [[t, n] for t, n in sorted(s.items())]}
                for p, s in sorted(counts.items())]

    def templates(self) -> list[str]:
        """Each line's pattern, computed once (the pattern ingester does it on arrival)."""
        if self._templates is None:
            self._templates = [template(line) for line in self.lines]
        return self._templates

    def label_names(self, expr: LogQuery | None, start: int, end: int) -> list[str]:
        sids = set(self.sids[self._indexes(expr, start, end)].tolist())
        return sorted({name for sid in sids for name in self.stream_labels[sid]})

    def label_values(self, name: str, expr: LogQuery | None, start: int, end: int) -> list[str]:
        sids = set(self.sids[self._indexes(expr, start, end)].tolist())
        return sorted({self.stream_labels[sid][name] for sid in sids if name in self.stream_labels[sid]})
