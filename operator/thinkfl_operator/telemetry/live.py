"""A store over live backends: Jaeger or Tempo for spans, Prometheus for KPIs.

Spans are searched lazily, the first time a time range is asked for, in slices of
``search_slice_s`` seconds with at most ``search_limit`` traces per slice (and per service for
Jaeger, which needs one), so the normal baseline is a sample spread over time rather than the
first traces of an hour. When span metrics are read (``PrometheusSettings.span_metrics``:
with Tempo by default) and Prometheus has them, no baseline slice is searched: the whole
budget goes to the incident window, and the baseline is its traces copied with the span
metrics' quantiles and error ratios. Tempo without span metrics in Prometheus gives the same
kind of baseline itself (``TracesSettings.tempo_baseline``): from its TraceQL metrics
(``traceql_metrics``), else from the span sets of a few searches per side (``span_sets``), else
baseline traces are fetched as above. Everything fetched is cleaned like file data (repeats
dropped, corrupt times tallied) and kept sorted, so every engine works unchanged on it.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from collections.abc import Callable

import pandas as pd

from thinkfl_operator.config.settings import (
    LogsSettings,
    PrometheusSettings,
    TlsSettings,
    TracesSettings,
)
from thinkfl_operator.telemetry.http import HttpBackendError
from thinkfl_operator.telemetry.jaeger import JaegerClient
from thinkfl_operator.telemetry.loglines import LogSource
from thinkfl_operator.telemetry.loki import LokiLogs
from thinkfl_operator.telemetry.memory import MemoryStore
from thinkfl_operator.telemetry.naming import service_of_pod
from thinkfl_operator.telemetry.prometheus import DEFAULT_CATALOG, PrometheusMetrics
from thinkfl_operator.telemetry.span_metrics import (
    SpanBaseline,
    SpanMetrics,
    synthetic_baseline,
)
from thinkfl_operator.telemetry.span_sets import span_set_baseline
from thinkfl_operator.telemetry.spans import (
    SpanTable,
    cap_spans,
    clean_spans,
    concat_spans,
    unique_sorted,
)
from thinkfl_operator.telemetry.store import MetricFrames
from thinkfl_operator.telemetry.tempo import TempoClient
from thinkfl_operator.telemetry.trace_plan import (
    by_priority,
    entry_services,
    fit,
    overlaps,
    slow_and_spread,
    spread,
)
from thinkfl_operator.telemetry.traceql_metrics import TraceqlMetrics

#: Around the incident time spans are searched in finer slices (seconds).
FOCUS_BEFORE_S = 60.0
FOCUS_AFTER_S = 300.0
FOCUS_SLICE_S = 60.0
#: KPIs are fetched once for this far around the incident (the metrics tool reads t ± 20 min).
METRIC_HORIZON_S = 1500.0
#: How far around the incident the pods with KPIs are listed, and the dependency graph read
#: (seconds).
POD_HORIZON_S = 3600.0
#: The span-metrics baseline: this long on each side of the focus window (seconds), its copies
#: of the focus traces placed this far before the incident (between the two).
SPAN_BASELINE_S = 1800.0
SYNTHETIC_FROM_S, SYNTHETIC_TO_S = 1500.0, 300.0
#: Searches per side of the incident window for a span-set baseline (Tempo).
SPAN_SET_PARTS = 3
#: Traces asked per search when probing a service for the roots of its traces.
PROBE_LIMIT = 20


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
        span_metrics: SpanMetrics | None = None,
        traceql_metrics: TraceqlMetrics | None = None,
        span_sets: bool = False,
    ) -> None:
        super().__init__(service_of=service_of_pod, logs=logs)
        self.span_metrics = span_metrics
        self.traceql_metrics = traceql_metrics
        self.span_sets = span_sets  # a Tempo search's span sets may give the baseline
        #: The baseline read from span metrics (None: none found, or not asked yet).
        self.span_baseline: SpanBaseline | None = None
        self._span_asked = False  # Prometheus was asked for span metrics (once)
        self._synthesized = False  # the synthetic baseline traces were added (once)
        self.traces, self.prometheus, self.cfg = traces, metrics, cfg
        self.node_lookup = node_lookup  # pod → node when neither spans nor Prometheus say
        self.service, self.around_s, self.step_s = service, around_s, step_s
        self.name = f"{traces.name} at {traces.url}" if traces else "live"
        self._searched: list[tuple[float, float]] = []
        self._pods: list[str] | None = None
        self._metric_range = (0.0, 0.0)
        self._metric_pods_fetched: set[str] = set()
        self._entries: list[str] | None = None  # services searched when none is given
        self._fetched: set[str] = set()  # trace IDs fetched from Tempo
        self.partial_traces: list[str] = []

    # spans -------------------------------------------------------------------------------
    def _frame_between(self, start_us: int, end_us: int) -> pd.DataFrame:
        self._ensure_searched(start_us / 1e6, end_us / 1e6)
        return super()._frame_between(start_us, end_us)

    def _ensure_searched(self, start_s: float, end_s: float) -> None:
        """Search the slices of [start, end) not searched yet, nearest the incident first,
        within the request budget; what does not fit is skipped and counted in the notes."""
        if self.traces is None:
            return
        todo = [s for s in self._slices(start_s, end_s) if s not in self._searched]
        if not todo:
            return
        focus = self._focus()
        base = self._span_baseline() if focus is not None else None
        if focus is not None and base is not None:
            far = [s for s in todo if not overlaps(s, focus)]
            self._searched += far
            self.quality.add(f"baseline trace searches (the baseline came from {base.describe()})",
                             len(far))
            todo = [s for s in self._slices(*focus) if s not in self._searched]
            if not todo:
                return
        ordered = by_priority(todo, focus)
        if isinstance(self.traces, TempoClient):
            self._add(self._search_tempo(ordered))
        else:
            self._add(self._search_jaeger(ordered, end_s))
        self._add_synthetic()

    def _span_baseline(self) -> SpanBaseline | None:
        """The span-metrics baseline around the focus window, read once: from Prometheus (two
        or three queries), else (Tempo) from its TraceQL metrics (a request per side), else from
        its search's span sets (``_span_sets``); None when none has it."""
        focus = self._focus()
        if self._span_asked or focus is None:
            return self.span_baseline
        self._span_asked = True
        before = (focus[0] - SPAN_BASELINE_S, focus[0])
        after = (focus[1], focus[1] + SPAN_BASELINE_S)
        found = None
        if self.span_metrics is not None:
            found = self.span_metrics.baseline([before, after], before[0], after[1])
        # Tempo's own baselines read only what has happened: a side still in the future (an
        # incident diagnosed while it lasts) is cut at now, or left out
        now = time.time()
        sides = [(lo, min(hi, now)) for lo, hi in (before, after) if lo < now - 60]
        if (found is None or not found.keys) and self.traceql_metrics is not None \
                and self._left() > len(sides):
            found, why = self.traceql_metrics.baseline(sides)
            if why:
                instead = "the search span sets" if self.span_sets else "fetched traces"
                then = "from the sides that answered" if found is not None else f"{instead} used instead"
                self.quality.add(f"TraceQL metrics baseline ({why}; {then})")
        if (found is None or not found.keys) and self.span_sets and isinstance(self.traces, TempoClient):
            found = self._span_sets(sides)
        self.span_baseline = found if found is not None and found.keys else None
        return self.span_baseline

    def _span_sets(self, sides: list[tuple[float, float]]) -> SpanBaseline | None:
        """The baseline from the span sets of Tempo searches (``span_sets``): each side in
        ``SPAN_SET_PARTS`` parts (the newest traces of each, so the sample spreads over the
        side), together as many traces as the side's baseline slices would sample, every span
        of each. An optional query: not retried, and any failure (refused, unreachable, slow,
        an answer of another shape) is a note, after which baseline traces are fetched."""
        assert isinstance(self.traces, TempoClient)
        frames = []
        for start, end in sides:
            limit = self.cfg.baseline_limit * max(1, math.ceil((end - start) / self.cfg.search_slice_s))
            step = (end - start) / SPAN_SET_PARTS
            for k in range(SPAN_SET_PARTS):
                if self._left() <= 1:  # keep a request for the incident window
                    self._skip("span-set searches", 1)
                    continue
                try:
                    frames.append(self.traces.search_span_sets(
                        start + k * step, start + (k + 1) * step, math.ceil(limit / SPAN_SET_PARTS), retries=0))
                except HttpBackendError as exc:
                    self.quality.add(f"span-set searches ({exc}; baseline traces fetched instead)")
                    return None
        return span_set_baseline(frames)

    def _add_synthetic(self) -> None:
        """Copies of the focus window's traces with the span metrics' durations and errors,
        before the focus window (once, after the focus window was searched; nothing without a
        span-metrics baseline)."""
        focus, base = self._focus(), self.span_baseline
        if focus is None or base is None or self._synthesized or self._spans.empty:
            return
        starts = self._spans["start_us"].to_numpy()
        lo, hi = starts.searchsorted(int(focus[0] * 1e6)), starts.searchsorted(int(focus[1] * 1e6))
        assert self.around_s is not None
        self._synthesized = True
        self._add([synthetic_baseline(self._spans.iloc[lo:hi], base,
                                      self.around_s - SYNTHETIC_FROM_S,
                                      self.around_s - SYNTHETIC_TO_S)])

    def _slices(self, start_s: float, end_s: float) -> list[tuple[float, float]]:
        """Search slices covering [start, end): ``search_slice_s`` wide, and 60 s wide around the
        incident time (where every trace matters), each capped at ``search_limit`` traces."""
        coarse = self.cfg.search_slice_s
        focus = self._focus() or (end_s, end_s)
        edges = {start_s, end_s, *focus}
        edges |= {k * coarse for k in range(math.ceil(start_s / coarse), math.floor(end_s / coarse) + 1)}
        edges |= {k * FOCUS_SLICE_S for k in range(math.ceil(focus[0] / FOCUS_SLICE_S),
                                                   math.floor(focus[1] / FOCUS_SLICE_S) + 1)}
        points = sorted(e for e in edges if start_s <= e <= end_s)
        return [(lo, hi) for lo, hi in itertools.pairwise(points) if hi > lo]

    def _focus(self) -> tuple[float, float] | None:
        if self.around_s is None:
            return None
        return (self.around_s - FOCUS_BEFORE_S, self.around_s + FOCUS_AFTER_S)

    def _left(self) -> int:
        """Requests the trace backend may still get in this diagnosis."""
        return max(0, self.cfg.max_requests - (self.traces.requests if self.traces else 0))

    def _skip(self, what: str, count: int) -> None:
        if count > 0:
            self.quality.add(f"{what} past the request budget ({self.cfg.max_requests} "
                             f"requests to {self.traces.display_name if self.traces else '-'})",
                             count)

    def _search_jaeger(self, ordered: list[tuple[float, float]], end_s: float) -> list[pd.DataFrame]:
        """Per slice, one search per entry service (Jaeger needs a service per search); baseline
        slices merged when that would not fit the budget."""
        assert isinstance(self.traces, JaegerClient)
        found: list[pd.DataFrame] = []
        services = self._search_services(found, end_s)
        # Searches return whole traces, and a long trace comes back in every slice it spans:
        # a trace held already is left out of later answers before it is decoded.
        held = set(self._spans["trace_id"].unique()) if not self._spans.empty else set()
        held |= {t for frame in found for t in frame["trace_id"].unique()}
        capacity = self._left() // max(len(services), 1)
        for lo, hi in by_priority(fit(ordered, self._focus(), capacity), self._focus()):
            if not services or self._left() < len(services):
                self._skip("trace searches", len(services) or 1)
                continue
            limit = self.cfg.search_limit if self._near_incident(lo, hi) else self.cfg.baseline_limit
            for service in services:
                frame = self.traces.search_frame(service, lo, hi, limit, skip=held)
                held.update(frame["trace_id"].unique())
                found.append(frame)
            self._searched += [s for s in ordered if lo <= s[0] and s[1] <= hi]
        return found

    def _search_services(self, found: list[pd.DataFrame], end_s: float) -> list[str]:
        """The alerting service when given; else the entry services: from Jaeger's dependency
        graph, or from the roots of a first search in the focus window (``_probe_roots``)."""
        if self.service:
            return [self.service]
        if self._entries is None:
            assert isinstance(self.traces, JaegerClient)
            anchor = self.around_s if self.around_s is not None else end_s
            edges = self.traces.dependencies(anchor + FOCUS_AFTER_S, POD_HORIZON_S) \
                if self._left() > 0 else []
            entries = entry_services(edges) or self._probe_roots(found, anchor)
            self._skip("entry services", len(entries) - self._quarter())
            self._entries = entries[: self._quarter()]
        return self._entries

    def _probe_roots(self, found: list[pd.DataFrame], anchor: float) -> list[str]:
        """Services whose spans start the traces of the focus window: search one service not
        seen yet, note every service its traces pass through, repeat (a quarter of the
        budget at most). Usually one or two searches find every entry service."""
        assert isinstance(self.traces, JaegerClient)
        if self._left() == 0:
            return []
        services = self.traces.services()
        lo, hi = self._focus() or (anchor - FOCUS_BEFORE_S, anchor)
        seen: set[str] = set()
        roots: Counter[str] = Counter()
        probes = self._quarter()
        for service in services:
            if service in seen:
                continue
            if probes == 0 or self._left() == 0:
                self._skip("services not probed for entry points", 1)
                continue
            frame = self.traces.search_frame(service, lo, hi, PROBE_LIMIT)
            probes -= 1
            found.append(frame)
            seen |= {service, *frame["service"].astype(str)}
            roots.update(frame.loc[frame["parent_id"].astype(str) == "", "service"].astype(str))
        return [s for s, _ in roots.most_common()] or services[: self._quarter()]

    def _quarter(self) -> int:
        """Most entry services searched, and most probes to find them: a quarter of the budget."""
        return max(1, self.cfg.max_requests // 4)

    def _search_tempo(self, ordered: list[tuple[float, float]]) -> list[pd.DataFrame]:
        """One TraceQL search for the focus window and one each for the baseline before and
        after it (the newest traces of each, ``most_recent=true``); then, since Tempo sends
        whole traces only by ID, a sample of the traces found, two thirds of the budget left
        for the focus window, each part spread evenly over its time (half of the focus
        window's the slowest for their root operation)."""
        assert isinstance(self.traces, TempoClient)
        focus = self._focus()
        groups: dict[str, list[tuple[float, float]]] = {}
        for lo, hi in ordered:
            if focus is None or overlaps((lo, hi), focus):
                side = "near"
            else:
                side = "before" if hi <= focus[0] else "after"
            groups.setdefault(side, []).append((lo, hi))
        near: list[tuple[float, str, float, str]] = []
        far: list[tuple[float, str]] = []
        for side, slices in groups.items():
            if self._left() == 0:
                self._skip("trace searches", 1)
                continue
            lo, hi = min(s[0] for s in slices), max(s[1] for s in slices)
            limit = self.cfg.search_limit if side == "near" else self.cfg.baseline_limit * len(slices)
            hits = self.traces.search_traces(lo, hi, limit, service=self.service or None)
            fresh = [(lo if math.isnan(h.start_s) else h.start_s, h) for h in hits
                     if h.trace_id not in self._fetched]
            if side == "near":
                near += [(t, h.trace_id, h.duration_ms, h.root) for t, h in fresh]
            else:
                far += [(t, h.trace_id) for t, h in fresh]
            self._searched.extend(slices)
        left = self._left()
        near_k = min(len(near), max(left - len(far), -(-2 * left // 3)))
        chosen = slow_and_spread(near, near_k) + spread(far, left - near_k)
        self._skip("traces found but not fetched", len(near) + len(far) - len(chosen))
        self._fetched.update(chosen)
        return [self._fetch(trace_id) for trace_id in chosen]

    def _near_incident(self, start_s: float, end_s: float) -> bool:
        focus = self._focus()
        return focus is None or overlaps((start_s, end_s), focus)

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
              logs: LogSource | None = None, tls: TlsSettings | None = None) -> LiveStore:
    """A LiveStore from the settings (either backend may be absent); ``node_lookup`` tells a
    pod's node when Prometheus cannot; ``tls`` how certificates are checked (None: the
    process's ``THINKFL_TLS__…``)."""
    client: JaegerClient | TempoClient | None = None
    if traces.url and traces.backend == "jaeger":
        client = JaegerClient(traces.url, api=traces.api, timeout_s=traces.timeout_s,
                              retries=traces.retries, backoff_s=traces.backoff_s,
                              max_bytes=int(traces.max_body_mb * 2**20), tls=tls)
    elif traces.url:
        client = TempoClient(traces.url, timeout_s=traces.timeout_s, retries=traces.retries,
                             backoff_s=traces.backoff_s, max_bytes=int(traces.max_body_mb * 2**20),
                             tls=tls)
    metrics = None
    if prometheus.url:
        metrics = PrometheusMetrics(prometheus.url, prometheus.catalog or DEFAULT_CATALOG,
                                    timeout_s=prometheus.timeout_s, retries=prometheus.retries,
                                    backoff_s=prometheus.backoff_s,
                                    max_bytes=int(prometheus.max_body_mb * 2**20), tls=tls)
    spans = None
    if metrics is not None and client is not None and prometheus.reads_span_metrics(traces.backend):
        spans = SpanMetrics(metrics)
    tempo = client if isinstance(client, TempoClient) else None
    traceql = TraceqlMetrics(tempo) if tempo is not None and traces.tempo_baseline == "auto" else None
    return LiveStore(client, metrics, traces, service, around_s, prometheus.step_s, node_lookup, logs,
                     spans, traceql, span_sets=tempo is not None and traces.tempo_baseline != "traces")


def live_logs(cfg: LogsSettings, namespace: str = "",
              tls: TlsSettings | None = None) -> LogSource | None:
    """Loki when configured and logs are on (the Kubernetes API's pods/log is the operator's
    choice, made above this layer); None otherwise."""
    if not cfg.enabled or not cfg.loki_url:
        return None
    return LokiLogs(cfg, namespace, tls=tls)
