"""The normal baseline from the span sets of Tempo's search, when no metrics give it.

Tempo's ``/api/search`` answers, for each trace found, the spans that matched the query (its
"span set", at most ``spss`` of them: ``max_spans_per_span_set``, 100 by default) with their
name, start, duration and the attributes the query selects, but not their parents. A query that
every span matches and that selects the service and the status (``tempo.SPAN_SETS_QUERY``)
therefore brings a sample of whole traces' span durations in a few requests per side of the
incident window (the live store asks each side in parts, so the sample spreads over it): the
durations of each (service, span name) and its errors, what span metrics hold, without
fetching traces one by one. The durations become a ``SpanBaseline`` whose
"buckets" are the sample's own sorted durations, and the live store copies the incident window's
traces with it, exactly as it does with span metrics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from thinkfl_operator.telemetry.span_metrics import KeyBaseline, Naming, SpanBaseline

NAMING = Naming("Tempo search span sets", "select(resource.service.name, name, status)", "service",
                "operation", 1.0, status="status")


def span_set_baseline(frames: Sequence[pd.DataFrame]) -> SpanBaseline | None:
    """Every (service, operation)'s durations and errors in the span-set frames (``tempo.
    SPAN_SET_COLUMNS``; a span found on both sides counts once); None without spans."""
    found = [f for f in frames if not f.empty]
    if not found:
        return None
    spans = pd.concat(found, ignore_index=True).drop_duplicates(["trace_id", "service", "operation", "start_us", "duration_us"])
    out = SpanBaseline(NAMING)
    for (service, operation), group in spans.groupby(["service", "operation"], sort=True):
        bounds, counts = np.unique(group["duration_us"].to_numpy(dtype="float64") / 1e6, return_counts=True)
        # the shortest duration once more as the lowest bound, with nothing below it: a quantile
        # interpolates between two observed durations, never down from 0
        cumulative = np.concatenate(([0], np.cumsum(counts), [counts.sum()])).astype("float64")
        out.keys[(str(service), str(operation))] = KeyBaseline(
            np.concatenate((bounds[:1], bounds, [math.inf])), cumulative,
            float((group["status"].astype(str).str.lower() == "error").sum()))
    return out
