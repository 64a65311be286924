"""A store over frames already in memory: the base of the file stores and the synthetic demo."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from thinkfl_operator.telemetry.loglines import LogBatch, LogSource, batch_between
from thinkfl_operator.telemetry.naming import service_of_pod
from thinkfl_operator.telemetry.quality import DataQuality
from thinkfl_operator.telemetry.spans import SpanTable, clean_spans, empty_frame
from thinkfl_operator.telemetry.store import KpiBlock, MetricFrames, as_blocks


class MemoryStore:
    """Spans and KPI frames held in memory, selected by their own timestamps."""

    name = "memory"
    #: Reading another time range costs no request to a backend.
    remote = False

    def __init__(
        self,
        spans: pd.DataFrame | None = None,
        metrics: Mapping[str, KpiBlock | pd.DataFrame] | None = None,
        nodes: dict[str, str] | None = None,
        service_of: Callable[[str], str] = service_of_pod,
        logs: LogSource | None = None,
    ) -> None:
        self.quality = DataQuality()
        self.logs = logs
        self._spans = clean_spans(spans, self.quality) if spans is not None else empty_frame()
        self._metrics: MetricFrames = as_blocks(metrics)
        self._nodes = dict(nodes or {})
        self._service_of = service_of
        self._services: dict[str, str] = {}  # pod → service, asked once per pod
        self._trace_cache: dict[str, SpanTable] = {}

    # spans -------------------------------------------------------------------------------
    def _frame_between(self, start_us: int, end_us: int) -> pd.DataFrame:
        """Spans starting in [start_us, end_us): a binary search, the frame is sorted by start."""
        starts = self._spans["start_us"].to_numpy()
        lo, hi = starts.searchsorted(start_us, "left"), starts.searchsorted(end_us, "left")
        return self._spans.iloc[lo:hi]

    def spans_between(self, start_us: int, end_us: int) -> SpanTable:
        return SpanTable(self._frame_between(start_us, end_us))

    def find_trace(self, trace_id: str) -> SpanTable:
        if trace_id not in self._trace_cache:
            frame = self._all_spans()
            self._trace_cache[trace_id] = SpanTable(frame[frame["trace_id"] == trace_id])
        return self._trace_cache[trace_id]

    def _all_spans(self) -> pd.DataFrame:
        return self._spans

    # metrics -----------------------------------------------------------------------------
    def _pod_frame(self, pod: str) -> KpiBlock | None:
        return self._metrics.get(pod)

    def metrics(self, pods: list[str], start_s: float, end_s: float) -> MetricFrames:
        out: MetricFrames = {}
        for pod in pods:
            block = self._pod_frame(pod)
            if block is None:
                continue
            part = block.between(start_s, end_s)
            if len(part):
                out[pod] = part
        return out

    def metric_pods(self) -> list[str]:
        return sorted(self._metrics)

    # topology ----------------------------------------------------------------------------
    def node_of(self, pod: str) -> str:
        return self._nodes.get(pod, "")

    def service_of(self, pod: str) -> str:
        """The pod's service, by ``service_of`` (a function of the name: asked once per pod;
        an engine asks for every pod's several times per incident)."""
        found = self._services.get(pod)
        if found is None:
            found = self._services[pod] = self._service_of(pod)
        return found


class MemoryLogs:
    """A ``LogSource`` over lines already in memory (``loglines.LINE_COLUMNS``), complete for
    the span of their own times: the demo's generator and tests use it."""

    name = "memory logs"

    def __init__(self, lines: pd.DataFrame) -> None:
        self._lines = lines.sort_values("time_ns", kind="stable").reset_index(drop=True)
        times = self._lines["time_ns"].to_numpy()
        self._coverage = ((times[0] / 1e9, times[-1] / 1e9 + 1e-9),) if len(times) else ()

    def logs(self, start_s: float, end_s: float, services: Sequence[str] = ()) -> LogBatch:
        return batch_between(self._lines, self._coverage, start_s, end_s, services)
