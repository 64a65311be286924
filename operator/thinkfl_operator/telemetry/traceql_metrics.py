"""The normal baseline from Tempo's TraceQL metrics, when Prometheus has no span metrics.

Tempo (2.6+) answers metrics queries over the spans it stores on ``/api/metrics/query`` (an
instant query: one value per series for the whole ``[start, end]``). One query per side of the
incident window gives every (service, span name)'s latency histogram and errors::

    { } | histogram_over_time(duration) by (resource.service.name, name, status)

The answer (``QueryInstantResponse`` in Tempo's gogo-jsonpb JSON: camelCase names, 64-bit
integers as strings, zero values left out) has one series per group and duration bucket; the
bucket is the label ``__bucket``, the bucket's upper bound in seconds (a power of two in
nanoseconds, the next one at or above each span's duration), and only non-empty buckets come.
A bucket ``b`` holds the durations in ``(b/2, b]``, so the histogram becomes the cumulative
counts ``span_metrics.KeyBaseline`` reads (each bucket's lower bound ``b/2`` a bound of its own,
so quantiles interpolate inside the bucket, not across empty ones); ``status = error`` spans are
the errors. The result is a ``SpanBaseline``, and the live store copies the incident window's
traces with it exactly as it does with span metrics from Prometheus: two trace-backend requests
instead of a sampled baseline of whole traces, one request each.

Where Tempo cannot answer (before 2.6: 404; no metrics-generator or local-blocks processor:
500 ``empty ring`` / ``localblocks processor not found``; a window past its limits: 400) the
query is not retried, the reason is returned for the notes, and the caller turns to the
search's span sets (``span_sets``) or fetched baseline traces. A 200 without series (no spans, or Tempo 2.x with no blocks for metrics over
an older window) is no baseline either.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from thinkfl_operator.telemetry.http import HttpBackendError
from thinkfl_operator.telemetry.otlp import any_value
from thinkfl_operator.telemetry.span_metrics import KeyBaseline, Naming, SpanBaseline, number
from thinkfl_operator.telemetry.tempo import TempoClient

#: How the baseline is named in notes; the label names of the answer.
NAMING = Naming("Tempo TraceQL metrics", "histogram_over_time(duration)", "resource.service.name",
                "name", 1.0, status="status")
QUERY = "{ } | histogram_over_time(duration) by (resource.service.name, name, status)"
PATH = "/api/metrics/query"
_BUCKET = "__bucket"


class TraceqlMetrics:
    """Reads the baseline from one Tempo's TraceQL metrics (one request per side)."""

    def __init__(self, client: TempoClient) -> None:
        self.client = client

    def baseline(self, sides: list[tuple[float, float]]) -> tuple[SpanBaseline | None, str]:
        """The baseline over ``sides`` (each [start, end) epoch seconds), or None; and Tempo's
        error when a query failed ("" when none did), for the notes. The first failure stops
        the queries, and what the sides before it gave is kept."""
        parts: dict[tuple[str, str], dict[float, float]] = {}
        errors: dict[tuple[str, str], float] = {}
        why = ""
        for start, end in sides:
            if end - start < 60:
                continue
            try:
                series = instant_series(self.client.http.get_json(
                    PATH, {"q": QUERY, "start": math.floor(start), "end": math.ceil(end)},
                    retries=0))
            except HttpBackendError as exc:
                why = str(exc)
                break
            for labels, value in series:
                key = (str(labels.get(NAMING.service, "")), str(labels.get(NAMING.operation, "")))
                upper = number(labels.get(_BUCKET))
                if not key[0] or not upper > 0 or not math.isfinite(upper) or not value > 0:
                    continue
                buckets = parts.setdefault(key, {})
                buckets[upper] = buckets.get(upper, 0.0) + value
                if str(labels.get(NAMING.status, "")).lower() == "error":
                    errors[key] = errors.get(key, 0.0) + value
        if not parts:
            return None, why
        out = SpanBaseline(NAMING)
        for key, buckets in parts.items():
            bounds, cumulative = power_of_two_histogram(buckets)
            out.keys[key] = KeyBaseline(bounds, cumulative, errors.get(key, 0.0))
        return out, why


def power_of_two_histogram(buckets: Mapping[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Ascending bounds (seconds, the last +Inf) and cumulative counts of sparse power-of-two
    buckets ``{upper: count}``: each bucket's lower bound ``upper/2`` is a bound too (with the
    count below it), so an empty stretch between two buckets holds no spans."""
    bounds: list[float] = []
    cumulative: list[float] = []
    total = 0.0
    for upper in sorted(buckets):
        lower = upper / 2
        if not bounds or lower > bounds[-1]:
            bounds.append(lower)
            cumulative.append(total)
        total += buckets[upper]
        bounds.append(upper)
        cumulative.append(total)
    bounds.append(math.inf)
    cumulative.append(total)
    return np.array(bounds), np.array(cumulative)


def instant_series(body: Any) -> list[tuple[dict[str, Any], float]]:
    """The (labels, value) of each series of a ``/api/metrics/query`` answer; a value left out
    is 0 (jsonpb omits zeros), label values are their string, number or bool."""
    out = []
    for series in (body.get("series") if isinstance(body, Mapping) else None) or []:
        if not isinstance(series, Mapping):
            continue
        labels = {}
        for pair in series.get("labels") or []:
            if isinstance(pair, Mapping) and isinstance(pair.get("key"), str):
                labels[pair["key"]] = any_value(pair.get("value"))
        out.append((labels, number(series.get("value", 0.0))))
    return out
