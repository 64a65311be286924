"""A store over live backends: Jaeger or Tempo for spans, Prometheus for KPIs.

Spans are searched lazily, the first time a time range is asked for, in slices of
``search_slice_s`` seconds with at most ``search_limit`` traces per slice (and per service for
Jaeger, which needs one), so the normal baseline is a sample spread over time rather than the
first traces of an hour. Everything fetched is cleaned like file data (repeats dropped, corrupt
times tallied) and kept sorted, so every engine works unchanged on it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pandas as pd

from thinkfl_operator.settings import LogsSettings, PrometheusSettings, TracesSettings
from thinkfl_operator.telemetry.jaeger import JaegerClient
from thinkfl_operator.telemetry.loglines import LogSource
from thinkfl_operator.telemetry.loki import LokiLogs
from thinkfl_operator.telemetry.memory import MemoryStore
from thinkfl_operator.telemetry.naming import service_of_pod
from thinkfl_operator.telemetry.prometheus import DEFAULT_CATALOG, PrometheusMetrics
from thinkfl_operator.telemetry.spans import (
    SpanTable,
    cap_spans,
    clean_spans,
    concat_spans,
    unique_sorted,
)
from thinkfl_operator.telemetry.store import MetricFrames
from thinkfl_operator.telemetry.tempo import TempoClient

#: Around the incident time spans are searched in finer slices (seconds).
FOCUS_BEFORE_S = 60.0
FOCUS_AFTER_S = 300.0
FOCUS_SLICE_S = 60.0
#: KPIs are fetched once for this far around the incident (the metrics tool reads t ± 20 min).
METRIC_HORIZON_S = 1500.0
#: How far around the incident the pods with KPIs are listed (seconds).
POD_HORIZON_S = 3600.0


class LiveStore(MemoryStore):
    """Spans from Jaeger/Tempo and KPIs from Prometheus, for one incident."""

    #: Every new time range read is requests to the backends.
    remote = True

    def __init__(
        self,
        traces: JaegerClient | TempoClient | None,
        metrics: PrometheusMetrics | None,
        cfg: TracesSettings,
        service: str = "",
        around_s: float | None = None,
        step_s: float = 60.0,
        node_lookup: Callable[[str], str] | None = None,
        logs: LogSource | None = None,
    ) -> None:
        super().__init__(service_of=service_of_pod, logs=logs)
        self.traces, self.prometheus, self.cfg = traces, metrics, cfg
        self.node_lookup = node_lookup  # pod → node when neither spans nor Prometheus say
        self.service, self.around_s, self.step_s = service, around_s, step_s
        self.name = f"{traces.name} at {traces.url}" if traces else "live"
        self._searched: list[tuple[float, float]] = []
        self._pods: list[str] | None = None
        self._metric_range = (0.0, 0.0)
        self._metric_pods_fetched: set[str] = set()
        self.partial_traces: list[str] = []

    # spans -------------------------------------------------------------------------------
    def _frame_between(self, start_us: int, end_us: int) -> pd.DataFrame:
        self._ensure_searched(start_us / 1e6, end_us / 1e6)
        return super()._frame_between(start_us, end_us)

    def _ensure_searched(self, start_s: float, end_s: float) -> None:
        if self.traces is None:
            return
        found: list[pd.DataFrame] = []
        for lo, hi in self._slices(start_s, end_s):
            if (lo, hi) not in self._searched:
                found += self._search(lo, hi)
                self._searched.append((lo, hi))
        self._add(found)

    def _slices(self, start_s: float, end_s: float) -> list[tuple[float, float]]:
        """Search slices covering [start, end): ``search_slice_s`` wide, and 60 s wide around the
        incident time (where every trace matters), each capped at ``search_limit`` traces."""
        coarse = self.cfg.search_slice_s
        focus = (self.around_s - FOCUS_BEFORE_S, self.around_s + FOCUS_AFTER_S) \
            if self.around_s is not None else (end_s, end_s)
        edges = {start_s, end_s, *focus}
        edges |= {k * coarse for k in range(math.ceil(start_s / coarse), math.floor(end_s / coarse) + 1)}
        edges |= {k * FOCUS_SLICE_S for k in range(math.ceil(focus[0] / FOCUS_SLICE_S),
                                                   math.floor(focus[1] / FOCUS_SLICE_S) + 1)}
        points = sorted(e for e in edges if start_s <= e <= end_s)
        return [(lo, hi) for lo, hi in itertools.pairwise(points) if hi > lo]

    def _search(self, start_s: float, end_s: float) -> list[pd.DataFrame]:
        limit = self.cfg.search_limit if self._near_incident(start_s, end_s) else self.cfg.baseline_limit
        if isinstance(self.traces, TempoClient):
            ids = self.traces.search(start_s, end_s, limit, service=self.service or None)
            return [self._fetch(trace_id) for trace_id in ids if trace_id not in self._trace_cache]
        assert self.traces is not None
        return [self.traces.search_frame(service, start_s, end_s, limit) for service in self._services()]

    def _near_incident(self, start_s: float, end_s: float) -> bool:
        if self.around_s is None:
            return True
        return end_s > self.around_s - FOCUS_BEFORE_S and start_s < self.around_s + FOCUS_AFTER_S

    def _services(self) -> list[str]:
        if self.service:
            return [self.service]
        assert isinstance(self.traces, JaegerClient)
        return self.traces.services()[: self.cfg.max_services]

    def _fetch(self, trace_id: str) -> pd.DataFrame:
        assert isinstance(self.traces, TempoClient)
        frame, partial = self.traces.trace(trace_id)
        if partial:
            self.partial_traces.append(trace_id)
            self.quality.add("partial traces (Tempo answered PARTIAL; used as they are)")
        return frame

    def _add(self, frames: list[pd.DataFrame]) -> None:
        frames = [f for f in frames if not f.empty]
        if not frames:
            return
        fresh = clean_spans(pd.concat(frames, ignore_index=True), self.quality)
        if not self._spans.empty:
            fresh = unique_sorted(concat_spans([self._spans, fresh]), self.quality)
        around_us = self.around_s * 1e6 if self.around_s is not None else None
        self._spans = cap_spans(fresh, self.cfg.max_spans, around_us, self.quality)
        self._trace_cache.clear()

    def find_trace(self, trace_id: str) -> SpanTable:
        if trace_id in self._trace_cache or self.traces is None:
            return super().find_trace(trace_id)
        if isinstance(self.traces, TempoClient):
            frame = self._fetch(trace_id)
        else:
            frame = self.traces.trace(trace_id)
        table = SpanTable(clean_spans(frame, self.quality))
        self._trace_cache[trace_id] = table
        root = table.root()
        if self.around_s is None and root is not None:
            self.around_s = root.timestamp / 1000.0  # KPIs are listed around this trace
        return table

    # metrics -----------------------------------------------------------------------------
    def metrics(self, pods: list[str], start_s: float, end_s: float) -> MetricFrames:
        """KPIs of these pods. The first call fetches every known pod over the whole incident
        horizon (one query per KPI); later calls inside it are answered from that."""
        if self.prometheus is None or not pods:
            return {}
        lo, hi = self._metric_range
        if start_s < lo or end_s > hi or not set(pods) <= self._metric_pods_fetched:
            self._fetch_metrics(pods, start_s, end_s)
        out: MetricFrames = {}
        for pod in pods:
            block = self._metrics.get(pod)
            part = block.between(start_s, end_s) if block is not None else None
            if part is not None and len(part):
                out[pod] = part
        return out

    def _fetch_metrics(self, pods: list[str], start_s: float, end_s: float) -> None:
        assert self.prometheus is not None
        wanted = sorted(set(pods) | set(self.metric_pods()) | self._metric_pods_fetched)
        lo, hi = start_s, end_s
        if self.around_s is not None:
            lo, hi = min(lo, self.around_s - METRIC_HORIZON_S), max(hi, self.around_s + METRIC_HORIZON_S)
        self._metrics = dict(self.prometheus.blocks(wanted, lo, hi, self.step_s))
        self._metric_range = (lo, hi)
        self._metric_pods_fetched = set(wanted)

    def metric_pods(self) -> list[str]:
        if self.prometheus is None or self.around_s is None:
            return []
        if self._pods is None:
            lo, hi = self.around_s - POD_HORIZON_S, self.around_s + POD_HORIZON_S
            self._pods = sorted(self.prometheus.pods(lo, hi, self.service_of))
        return self._pods

    def node_of(self, pod: str) -> str:
        node = super().node_of(pod)
        if not node and self.prometheus is not None:
            node = self.prometheus.node_of(pod)
        if not node and self.node_lookup is not None:
            node = self.node_lookup(pod)
        return node

    def close(self) -> None:
        for client in (self.traces, self.prometheus, self.logs):
            close = getattr(client, "close", None)
            if close is not None:
                close()


def open_live(traces: TracesSettings, prometheus: PrometheusSettings, service: str = "",
              around_s: float | None = None,
              node_lookup: Callable[[str], str] | None = None,
              logs: LogSource | None = None) -> LiveStore:
    """A LiveStore from the settings (either backend may be absent); ``node_lookup`` tells a
    pod's node when Prometheus cannot."""
    client: JaegerClient | TempoClient | None = None
    if traces.url and traces.backend == "jaeger":
        client = JaegerClient(traces.url, api=traces.api, timeout_s=traces.timeout_s,
                              retries=traces.retries, backoff_s=traces.backoff_s,
                              max_bytes=int(traces.max_body_mb * 2**20))
    elif traces.url:
        client = TempoClient(traces.url, timeout_s=traces.timeout_s, retries=traces.retries,
                             backoff_s=traces.backoff_s, max_bytes=int(traces.max_body_mb * 2**20))
    metrics = None
    if prometheus.url:
        metrics = PrometheusMetrics(prometheus.url, prometheus.catalog or DEFAULT_CATALOG,
                                    timeout_s=prometheus.timeout_s, retries=prometheus.retries,
                                    backoff_s=prometheus.backoff_s,
                                    max_bytes=int(prometheus.max_body_mb * 2**20))
    return LiveStore(client, metrics, traces, service, around_s, prometheus.step_s, node_lookup, logs)


def live_logs(cfg: LogsSettings, namespace: str = "") -> LogSource | None:
    """Loki when configured and logs are on (the Kubernetes API's pods/log is the operator's
    choice, made above this layer); None otherwise."""
    if not cfg.enabled or not cfg.loki_url:
        return None
    return LokiLogs(cfg, namespace)
