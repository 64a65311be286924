"""Grafana Loki's HTTP API both ways: the LogQL we send and the JSON it answers (pure, no I/O).

Shapes, from grafana/loki ``docs/sources/reference/loki-http-api.md`` and
``pkg/util/marshal`` (the encoder every answer goes through):

* ``/loki/api/v1/query_range``, log query: ``{"status": "success", "data": {"resultType":
  "streams", "result": [{"stream": {labels}, "values": [["<ns>", "<line>"], …]}], "stats":
  {…}}}``. With the request header ``X-Loki-Response-Encoding-Flags: categorize-labels`` (Loki
  3) each entry carries a third element ``{"structuredMetadata": {…}, "parsed": {…}}`` and
  ``data.encodingFlags`` lists the flag; without it structured metadata is merged into the
  stream's labels. Both are read.
* the same, metric query: ``"resultType": "matrix"``, ``[{"metric": {labels}, "values":
  [[<unix s, number>, "<value>"], …]}]``.
* ``/loki/api/v1/patterns``: ``{"status": "success", "data": [{"pattern": "…", "level": "…",
  "samples": [[<unix s>, <count>], …]}]}`` (``level`` since Loki 3.3).

A body of another shape raises ``LokiShapeError`` naming what was wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from thinkfl_operator.telemetry.loglines import LINE_COLUMNS, MAX_LINE_CHARS, empty_lines
from thinkfl_operator.telemetry.naming import service_of_pod

#: A Prometheus/Loki label name.
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Structured-metadata (or stream label) names that carry the trace / span ID.
TRACE_KEYS = ("trace_id", "traceID", "traceId", "TraceID")
SPAN_KEYS = ("span_id", "spanID", "spanId", "SpanID")
# TraceID: <hex>, trace_id=<hex>, "traceId":"<hex>" (and the same for spans).
# (Letter classes rather than re.I: twice as fast on long lines.)
_TRACE = re.compile(r"""\b[Tt][Rr][Aa][Cc][Ee]_?[Ii][Dd]["']?\s*[:=]\s*["']?"""
                    r"""([0-9a-fA-F]{16,32})(?![0-9a-fA-F])""")
_SPAN = re.compile(r"""\b[Ss][Pp][Aa][Nn]_?[Ii][Dd]["']?\s*[:=]\s*["']?"""
                   r"""([0-9a-fA-F]{8,16})(?![0-9a-fA-F])""")
#: Control bytes (tab, newline, CR excepted) and U+FFFD (bytes that were not UTF-8): a binary line.
_BINARY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")


class LokiShapeError(ValueError):
    """A 2xx answer that is not the documented shape."""


# ---------------------------------------------------------------------------------- LogQL


def quote(value: str) -> str:
    """A LogQL double-quoted string holding ``value``."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def alternation(values: Sequence[str]) -> str:
    """An RE2 regex matching exactly these values (Loki anchors label regexes)."""
    return "|".join(re.escape(v) for v in sorted(set(values)))


def selector(matchers: Sequence[tuple[str, str, str]]) -> str:
    """``{name op "value", …}`` from (name, op, value) triples."""
    return "{" + ", ".join(f"{name}{op}{quote(value)}" for name, op, value in matchers) + "}"


def volume_query(stream_selector: str, by: Sequence[str]) -> str:
    """Lines per minute of each label combination ``by`` (a LogQL metric query)."""
    return f"sum by ({', '.join(dict.fromkeys(by))}) (count_over_time({stream_selector}[1m]))"


# ---------------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Stream:
    """The entries of one stream in one answer, in answer order."""

    labels: Mapping[str, str]
    times: np.ndarray  # int64 ns
    lines: list[str]
    metadata: list[Mapping[str, str]]

    def __len__(self) -> int:
        return len(self.lines)

    def where(self, keep: np.ndarray) -> Stream:
        index = np.flatnonzero(keep)
        return Stream(self.labels, self.times[index], [self.lines[i] for i in index],
                      [self.metadata[i] for i in index])


def _data(body: Any, result_type: str | None) -> Mapping[str, Any]:
    if not isinstance(body, Mapping) or body.get("status") != "success":
        status = body.get("status") if isinstance(body, Mapping) else type(body).__name__
        raise LokiShapeError(f'expected {{"status": "success", …}}, got status {status!r}')
    data = body.get("data")
    if result_type is None:
        return {"result": data}
    if not isinstance(data, Mapping) or data.get("resultType") != result_type:
        got = data.get("resultType") if isinstance(data, Mapping) else data
        raise LokiShapeError(f"expected resultType {result_type!r}, got {got!r}")
    return data


def parse_streams(body: Any) -> list[Stream]:
    """The streams of a log query's answer."""
    out = []
    for item in _data(body, "streams").get("result") or []:
        labels = {str(k): str(v) for k, v in (item.get("stream") or {}).items()}
        values = item.get("values") or []
        try:
            times = np.array([int(v[0]) for v in values], dtype=np.int64)
            lines = [v[1] if isinstance(v[1], str) else str(v[1]) for v in values]
        except (TypeError, ValueError, IndexError) as exc:
            raise LokiShapeError(f"a stream entry is not [\"<ns>\", \"<line>\"]: {exc}") from exc
        metadata = [_entry_metadata(v) for v in values]
        out.append(Stream(labels, times, lines, metadata))
    return out


def _entry_metadata(value: Sequence[Any]) -> Mapping[str, str]:
    if len(value) < 3 or not isinstance(value[2], Mapping):
        return {}
    found: dict[str, str] = {}
    for group in ("structuredMetadata", "parsed"):
        block = value[2].get(group)
        if isinstance(block, Mapping):
            found.update({str(k): str(v) for k, v in block.items()})
    return found


def parse_matrix(body: Any) -> list[tuple[dict[str, str], np.ndarray, np.ndarray]]:
    """(labels, times in ns, values) of each series of a metric query's answer; times keep
    Loki's millisecond precision."""
    out = []
    for item in _data(body, "matrix").get("result") or []:
        labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
        values = item.get("values") or []
        try:
            times = np.array([round(float(v[0]) * 1000) * 1_000_000 for v in values],
                             dtype=np.int64)
            numbers = np.array([float(v[1]) for v in values], dtype=np.float64)
        except (TypeError, ValueError, IndexError) as exc:
            raise LokiShapeError(f"a matrix sample is not [<seconds>, \"<value>\"]: {exc}") from exc
        out.append((labels, times, numbers))
    return out


def parse_patterns(body: Any) -> list[tuple[str, list[tuple[float, int]]]]:
    """(pattern, [(unix s, count), …]) of a ``/loki/api/v1/patterns`` answer."""
    data = _data(body, None)["result"]
    if not isinstance(data, list):
        raise LokiShapeError(f"expected a list of patterns in data, got {type(data).__name__}")
    out = []
    for item in data:
        if not isinstance(item, Mapping) or not isinstance(item.get("pattern"), str):
            raise LokiShapeError(f"a pattern entry has no pattern: {str(item)[:80]!r}")
        try:
            samples = [(float(t), int(n)) for t, n in item.get("samples") or []]
        except (TypeError, ValueError) as exc:
            raise LokiShapeError(f"a pattern sample is not [<seconds>, <count>]: {exc}") from exc
        out.append((item["pattern"], samples))
    return out


# ---------------------------------------------------------------------------------- lines


def pod_and_service(labels: Mapping[str, str], pod_label: str,
                    service_labels: Sequence[str]) -> tuple[str, str, str]:
    """(pod, service, the label the service came from: a service label, else ``pod_label``)."""
    pod = labels.get(pod_label, "")
    for name in service_labels:
        if labels.get(name):
            return pod, labels[name], name
    return pod, service_of_pod(pod) if pod else "", pod_label


@dataclass(frozen=True)
class LineCounts:
    """What was done to lines on their way in."""

    cut: int = 0
    binary: int = 0


def lines_frame(streams: Sequence[Stream], pod_label: str,
                service_labels: Sequence[str]) -> tuple[pd.DataFrame, LineCounts]:
    """``LINE_COLUMNS`` of the streams' entries, sorted by time (stable)."""
    if not any(len(s) for s in streams):
        return empty_lines(), LineCounts()
    times: list[np.ndarray] = []
    pods: list[str] = []
    services: list[str] = []
    raw: list[str] = []
    meta: list[Mapping[str, str]] = []
    for stream in streams:
        pod, service, _ = pod_and_service(stream.labels, pod_label, service_labels)
        times.append(stream.times)
        pods += [pod] * len(stream)
        services += [service] * len(stream)
        raw += stream.lines
        # IDs a stream label carries (older Lokis merge structured metadata into the labels)
        meta += [{**stream.labels, **m} for m in stream.metadata] \
            if _has_ids(stream.labels) else stream.metadata
    lines = pd.Series(raw, dtype=object).str.rstrip("\r\n")
    binary = lines.str.contains(_BINARY)
    if binary.any():
        lines[binary] = lines[binary].str.replace(_BINARY, "\ufffd", regex=True)
    long = lines.str.len() > MAX_LINE_CHARS
    if long.any():
        lines[long] = lines[long].str.slice(0, MAX_LINE_CHARS)
    frame = pd.DataFrame({
        "time_ns": np.concatenate(times).astype(np.int64),
        "pod": pd.Series(pods, dtype=object), "service": pd.Series(services, dtype=object),
        "line": lines.astype(object),
        "trace_id": _ids(lines, meta, TRACE_KEYS, _TRACE),
        "span_id": _ids(lines, meta, SPAN_KEYS, _SPAN),
    }, columns=list(LINE_COLUMNS))
    frame = frame.sort_values("time_ns", kind="stable", ignore_index=True)
    return frame, LineCounts(int(long.sum()), int(binary.sum()))


def _has_ids(labels: Mapping[str, str]) -> bool:
    return any(key in labels for key in (*TRACE_KEYS, *SPAN_KEYS))


def _ids(lines: pd.Series, meta: Sequence[Mapping[str, str]], keys: Sequence[str],
         pattern: re.Pattern[str]) -> pd.Series:
    """The ID in each entry's metadata (first of ``keys``), else the one its line shows."""
    found = lines.str.extract(pattern, expand=False).fillna("").str.lower().astype(object)
    for i, entry in enumerate(meta):
        if entry:
            value = next((entry[k] for k in keys if entry.get(k)), "")
            if value:
                found.iat[i] = value.strip().lower()
    return found


def patterns_frame(rows: Sequence[tuple[float, str, str, int]]) -> pd.DataFrame:
    """``PATTERN_COLUMNS`` from (time_s, service, pattern, count) rows, sorted by time."""
    frame = pd.DataFrame({
        "time_s": np.array([r[0] for r in rows], dtype=np.float64),
        "service": pd.Series([r[1] for r in rows], dtype=object),
        "pattern": pd.Series([r[2] for r in rows], dtype=object),
        "count": np.array([r[3] for r in rows], dtype=np.int64),
    })
    return frame.sort_values(["time_s", "service", "pattern"], kind="stable", ignore_index=True)
