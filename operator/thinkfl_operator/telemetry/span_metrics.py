"""The normal baseline from span metrics in Prometheus, instead of sampled baseline traces.

Three projects turn every span into per-(service, operation) counters and latency histograms
in Prometheus; where one runs, two PromQL queries give the baseline that thousands of baseline
traces would. The namings read (label names after Prometheus' dot-to-underscore translation):

* OpenTelemetry Collector ``spanmetrics`` connector (contrib ``connector/spanmetricsconnector``,
  README), namespace ``traces.span.metrics`` (the default since v0.10x), unit ms (the default
  until the ``connector.spanmetrics.useSecondAsDefaultMetricsUnit`` gate):
  ``traces_span_metrics_calls_total`` and ``traces_span_metrics_duration_milliseconds_bucket``
  (``_seconds_bucket`` with the gate), labels ``service_name``, ``span_name``, ``span_kind``,
  ``status_code`` (``STATUS_CODE_ERROR`` for errors). Jaeger's SPM reads exactly these (its
  ``PROMETHEUS_QUERY_NAMESPACE=traces_span_metrics`` with normalized names). Older connector
  releases had no namespace: ``calls_total``, ``duration_milliseconds_bucket``; the older
  ``spanmetrics`` processor wrote ``latency_bucket`` with the label ``operation``.
* Grafana Tempo metrics-generator (docs "metrics-from-traces/span-metrics"):
  ``traces_spanmetrics_calls_total`` and ``traces_spanmetrics_latency_bucket`` (seconds), labels
  ``service``, ``span_name``, ``span_kind``, ``status_code``. Its service graphs
  (``traces_service_graph_request_total{client, server}``, ``…_failed_total``,
  ``…_server_seconds_bucket``) are detected and named in the notes but not read: the span
  histograms already give every (service, operation)'s latency, the network gap included.

Only the duration histogram is read: its ``+Inf`` bucket is the call count and its
``status_code`` label the errors, so the counter adds nothing. The plan (``SpanMetrics``):

1. ``detect``: one instant query, ``count by (__name__)`` of every known histogram name over
   the baseline horizon, picks the first naming present (none: the caller samples baseline
   traces as before);
2. ``baseline``: ``sum by (service, operation, status, le) (increase(…[W]))`` at the end of the
   baseline before the incident window, and once more at the end of the one after it (the
   engine's baseline has both sides; a diagnosis run during the incident finds the second
   empty). Quantiles are interpolated from those bucket counts exactly as
   ``histogram_quantile`` does, locally, so one request serves every quantile.

``synthetic_baseline`` turns that into spans the engines read unchanged: the incident window's
own traces, copied ``COPIES`` times into the baseline time, at one rank per trace and copy:
a leaf span takes its (service, operation)'s baseline quantile at that rank, a span with
children their synthetic durations plus the own time its key's quantiles imply (quantiles do
not add up, so a parent given its own quantile would show an own time of 0 and a negative
network gap; see ``synthetic_baseline``), and an error status at the baseline error ratio.
What span metrics cannot say: per pod (they are per service), how many calls a span made (a
copy keeps the window's calls, so "stops calling" is not seen), and own times exactly (a
parent with several children whose medians add up to more than its own gets an own time of 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from thinkfl_operator.telemetry.prometheus import PrometheusMetrics
from thinkfl_operator.telemetry.spans import span_and_parent_keys

#: Copies of each incident-window trace in the synthetic baseline (a key needs 5 baseline spans).
COPIES = 7
#: Most incident-window traces copied (each (service, operation) keeps at least one trace).
MAX_TRACES = 300
#: Deepest span nesting followed when re-timing a trace bottom-up.
MAX_DEPTH = 256
#: Status of a synthetic span at the baseline error ratio.
ERROR_STATUS = "STATUS_CODE_ERROR"
#: Prometheus requests span metrics may use per incident (detect + two baseline sides).
MAX_REQUESTS = 20
_GOLDEN = 0.6180339887498949


@dataclass(frozen=True)
class Naming:
    """One project's metric and label names."""

    source: str
    histogram: str  # the ``_bucket`` series
    service: str
    operation: str
    unit_s: float  # seconds per histogram unit
    status: str = "status_code"
    graph: str = ""  # service graph family, when the project has one


NAMINGS = (
    Naming("OpenTelemetry Collector spanmetrics connector",
           "traces_span_metrics_duration_milliseconds_bucket", "service_name", "span_name", 1e-3),
    Naming("OpenTelemetry Collector spanmetrics connector (seconds)",
           "traces_span_metrics_duration_seconds_bucket", "service_name", "span_name", 1.0),
    Naming("Tempo metrics-generator", "traces_spanmetrics_latency_bucket", "service", "span_name",
           1.0, graph="traces_service_graph_request_total"),
    Naming("OpenTelemetry Collector spanmetrics connector (no namespace)",
           "duration_milliseconds_bucket", "service_name", "span_name", 1e-3),
    Naming("OpenTelemetry Collector spanmetrics processor", "latency_bucket", "service_name",
           "operation", 1e-3),
)


def bucket_quantiles(bounds: np.ndarray, cumulative: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """``histogram_quantile`` of cumulative bucket counts (ascending ``le``, the last +Inf) at
    each rank in [0, 1]: linear inside the bucket, 0 as the first bucket's lower bound, the
    highest finite bound for ranks in the +Inf bucket; NaN without observations."""
    total = float(cumulative[-1]) if len(cumulative) else 0.0
    if total <= 0 or len(bounds) < 2:
        return np.full(len(ranks), math.nan)
    counts = np.maximum.accumulate(cumulative.astype("float64"))  # a reset mid-window: monotone
    target = ranks * total
    i = np.clip(np.searchsorted(counts, target, side="left"), 0, len(counts) - 1)
    finite_top = float(bounds[-2])
    upper = bounds[i]
    lower = np.where(i > 0, bounds[np.maximum(i - 1, 0)], 0.0)
    below = np.where(i > 0, counts[np.maximum(i - 1, 0)], 0.0)
    inside = counts[i] - below
    with np.errstate(divide="ignore", invalid="ignore"):
        value = lower + (upper - lower) * np.where(inside > 0, (target - below) / inside, 1.0)
    return np.where(np.isinf(upper), finite_top, value)


@dataclass
class KeyBaseline:
    """One (service, operation)'s baseline: bucket bounds (seconds), cumulative counts, errors."""

    bounds: np.ndarray
    cumulative: np.ndarray
    errors: float

    @property
    def calls(self) -> float:
        return float(self.cumulative[-1]) if len(self.cumulative) else 0.0

    @property
    def error_ratio(self) -> float:
        return self.errors / self.calls if self.calls > 0 else 0.0

    def quantiles_us(self, ranks: np.ndarray) -> np.ndarray:
        return bucket_quantiles(self.bounds, self.cumulative, ranks) * 1e6


@dataclass
class SpanBaseline:
    """Every (service, operation)'s baseline read from span metrics."""

    naming: Naming
    keys: dict[tuple[str, str], KeyBaseline] = field(default_factory=dict)
    service_graph: bool = False

    def describe(self) -> str:
        return f"{self.naming.histogram.removesuffix('_bucket')} ({self.naming.source})"


class SpanMetrics:
    """Reads span metrics from one Prometheus, within ``MAX_REQUESTS`` requests."""

    def __init__(self, prometheus: PrometheusMetrics) -> None:
        self.prometheus = prometheus
        self.sent = 0

    def _query(self, promql: str, at_s: float) -> list[dict]:  # type: ignore[type-arg]
        if self.sent >= MAX_REQUESTS:
            return []
        self.sent += 1
        return self.prometheus.query(promql, at_s)

    def detect(self, lo_s: float, hi_s: float) -> tuple[Naming | None, bool]:
        """The first naming with samples in [lo, hi] (one query), and whether a service graph
        is there too."""
        names = [n.histogram for n in NAMINGS] + [n.graph for n in NAMINGS if n.graph]
        window = max(int(hi_s - lo_s), 60)
        regex = "|".join(names)
        found = {str(r.get("metric", {}).get("__name__", ""))
                 for r in self._query(f'count by (__name__) (last_over_time({{__name__=~"{regex}"}}'
                                      f"[{window}s]))", hi_s)}
        naming = next((n for n in NAMINGS if n.histogram in found), None)
        graph = naming is not None and bool(naming.graph) and naming.graph in found
        return naming, graph

    def baseline(self, sides: list[tuple[float, float]], lo_s: float, hi_s: float) -> SpanBaseline | None:
        """The baseline over ``sides`` (each [start, end) seconds); None when no naming is
        found in [lo, hi]."""
        naming, graph = self.detect(lo_s, hi_s)
        if naming is None:
            return None
        out = SpanBaseline(naming, service_graph=graph)
        by = f"{naming.service}, {naming.operation}, {naming.status}, le"
        parts: dict[tuple[str, str], dict[float, float]] = {}
        errors: dict[tuple[str, str], float] = {}  # the +Inf count of error spans
        for start, end in sides:
            width = int(end - start)
            if width < 60:
                continue
            promql = f"sum by ({by}) (increase({naming.histogram}[{width}s]))"
            for row in self._query(promql, end):
                labels = row.get("metric", {})
                key = (str(labels.get(naming.service, "")), str(labels.get(naming.operation, "")))
                le = number(labels.get("le"))
                value = number((row.get("value") or [0, "nan"])[1])
                if not key[0] or math.isnan(le) or math.isnan(value):
                    continue
                parts.setdefault(key, {})
                parts[key][le] = parts[key].get(le, 0.0) + value
                if math.isinf(le) and "error" in str(labels.get(naming.status, "")).lower():
                    errors[key] = errors.get(key, 0.0) + value
        for key, buckets in parts.items():
            if math.inf not in buckets:
                continue
            les = sorted(buckets)
            out.keys[key] = KeyBaseline(np.array(les) * naming.unit_s,
                                        np.array([buckets[le] for le in les]),
                                        errors.get(key, 0.0))
        return out


def number(text: object) -> float:
    """A label or sample value as a float (Prometheus and Tempo send numbers as text); NaN
    when it is none."""
    try:
        return float(str(text))
    except ValueError:
        return math.nan


def synthetic_baseline(window: pd.DataFrame, baseline: SpanBaseline, start_s: float,
                       end_s: float, copies: int = COPIES) -> pd.DataFrame:
    """Spans in [start, end) that look like the baseline: copies of the incident window's
    traces with durations at their (service, operation)'s baseline quantiles and an error
    status at its baseline error ratio (module docstring). Spans of keys without span metrics
    keep their window values (no shift is seen for them).

    A leaf span takes its key's quantile at the copy's rank. A span with children cannot take
    its own quantile as well: quantiles do not add up (at high ranks a parent's quantile is
    below the sum of its children's), so its own time (duration minus its children's, the
    engine's ``self`` and, for a client span, the network gap) would come out 0 or negative and
    every window would look shifted from it. It gets its children's synthetic durations plus
    an own time that follows its key: the median own time the quantiles imply
    (``q_parent(½) − Σ q_child(½)``, at least 0), scaled by ``q_parent(rank) / q_parent(½)``."""
    if window.empty or not baseline.keys:
        return window.iloc[0:0]
    frame = _chosen_traces(window).reset_index(drop=True)
    tcodes, tids = pd.factorize(frame["trace_id"])
    n_traces = len(tids)
    keys = list(zip(frame["service"].astype(str), frame["operation"].astype(str), strict=True))
    kcodes, kuniq = pd.factorize(pd.Series(keys, dtype=object))
    span_keys, parent_keys = span_and_parent_keys(frame)
    parent = pd.Index(span_keys).get_indexer(parent_keys)
    levels = _depth_levels(parent)
    first_start = frame.groupby(tcodes)["start_us"].transform("min").to_numpy()
    offset = frame["start_us"].to_numpy() - first_start
    width_us = max(end_s - start_s, 1.0) * 1e6
    window_us = frame["duration_us"].to_numpy(dtype="float64")
    # the rows of each key that has span metrics, found once for every copy
    known = [(np.flatnonzero(kcodes == code), base) for code, key in enumerate(kuniq)
             if (base := baseline.keys.get(key)) is not None]
    median = _quantiles(known, np.full(len(frame), 0.5), window_us)
    measured = np.zeros(len(frame), dtype=bool)
    for rows, _ in known:
        measured[rows] = True
    # a span without span metrics keeps its window own time (no shift is seen for it)
    own_median = np.clip(np.where(measured, median - _child_sums(parent, median),
                                  window_us - _child_sums(parent, window_us)), 0.0, None)
    parts = []
    for k in range(copies):
        # one rank per trace and copy, spread over (0, 1) across traces (golden-ratio offsets)
        ranks = (k + np.modf((np.arange(n_traces) + 1) * _GOLDEN)[0]) / copies
        span_rank = ranks[tcodes]
        quantile = _quantiles(known, span_rank, window_us)
        with np.errstate(divide="ignore", invalid="ignore"):
            own = np.where(measured & (median > 0), own_median * quantile / median, own_median)
        duration = _bottom_up(parent, levels, quantile, own)
        status = frame["status"].astype(str).to_numpy(dtype=object).copy()
        err_rank = np.modf(span_rank * 7.0 + np.arange(len(frame)) * _GOLDEN)[0]
        for rows, base in known:
            status[rows] = np.where(err_rank[rows] < base.error_ratio, ERROR_STATUS, "")
        slot = (k * n_traces + tcodes) / (copies * n_traces)
        part = frame.assign(
            trace_id=[f"spanmetrics{k:02d}{t}" for t in frame["trace_id"].astype(str)],
            start_us=(start_s * 1e6 + slot * width_us + offset).astype("int64"),
            duration_us=np.round(duration).astype("int64"),
            status=status,
        )
        parts.append(part)
    return pd.concat(parts, ignore_index=True).drop(columns=["span_key", "parent_key"],
                                                    errors="ignore")


def _quantiles(known: list[tuple[np.ndarray, KeyBaseline]], ranks: np.ndarray,
               fallback: np.ndarray) -> np.ndarray:
    """Each span's key quantile at its rank (``known``: the rows of each key with span
    metrics); ``fallback`` where the key has none."""
    out = fallback.copy()
    for rows, base in known:
        values = base.quantiles_us(ranks[rows])
        out[rows] = np.where(np.isnan(values), fallback[rows], values)
    return out


def _child_sums(parent: np.ndarray, duration: np.ndarray) -> np.ndarray:
    has = parent >= 0
    return np.bincount(parent[has], weights=duration[has], minlength=len(parent))


def _depth_levels(parent: np.ndarray) -> list[np.ndarray]:
    """Rows with children, deepest first (a parent after all its descendants). Depth stops at
    ``MAX_DEPTH``: parent links that loop (corrupt data) cost bounded work."""
    depth = np.zeros(len(parent), dtype="int64")
    has = parent >= 0
    for _ in range(MAX_DEPTH):
        deeper = np.where(has, depth[np.clip(parent, 0, None)] + 1, 0)
        if np.array_equal(deeper, depth):
            break
        depth = deeper
    with_children = np.zeros(len(parent), dtype=bool)
    with_children[parent[has]] = True
    return [np.flatnonzero(with_children & (depth == d)) for d in range(int(depth.max()), -1, -1)]


def _bottom_up(parent: np.ndarray, levels: list[np.ndarray], leaf: np.ndarray,
               own: np.ndarray) -> np.ndarray:
    """Leaves keep ``leaf``; a span with children gets their durations' sum plus ``own``."""
    duration = leaf.copy()
    for rows in levels:
        duration[rows] = _child_sums(parent, duration)[rows] + own[rows]
    return duration


def _chosen_traces(window: pd.DataFrame) -> pd.DataFrame:
    """At most ``MAX_TRACES`` traces spread over the window, plus the first trace of every
    (service, operation) the spread left out."""
    ids = pd.unique(window["trace_id"])
    if len(ids) <= MAX_TRACES:
        return window
    step = len(ids) / MAX_TRACES
    chosen = set(ids[[int(j * step) for j in range(MAX_TRACES)]])
    firsts = window.drop_duplicates(["service", "operation"])["trace_id"]
    chosen |= set(firsts)
    return window[window["trace_id"].isin(chosen)]
