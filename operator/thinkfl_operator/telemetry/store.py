"""What every evidence source offers the tools: spans by time or trace, KPI frames by pod."""

from __future__ import annotations

from typing import Protocol

import pandas as pd

from thinkfl_operator.telemetry.quality import DataQuality
from thinkfl_operator.telemetry.spans import SpanTable

#: Per-pod KPI samples: pod → frame indexed by epoch seconds (float, sorted), one column per KPI.
MetricFrames = dict[str, pd.DataFrame]


class Store(Protocol):
    """A read-only source of spans and metrics (offline dataset or live backends)."""

    name: str
    quality: DataQuality

    def spans_between(self, start_us: int, end_us: int) -> SpanTable:
        """Every span that starts in [start_us, end_us) (by its own timestamp)."""
        ...

    def find_trace(self, trace_id: str) -> SpanTable:
        """All spans of one trace (empty when unknown)."""
        ...

    def metrics(self, pods: list[str], start_s: float, end_s: float) -> MetricFrames:
        """KPI samples of these pods with timestamps in [start_s, end_s]."""
        ...

    def metric_pods(self) -> list[str]:
        """Pods that have KPI series."""
        ...

    def node_of(self, pod: str) -> str:
        """The node a pod runs on, "" when unknown."""
        ...

    def service_of(self, pod: str) -> str:
        """The service a pod belongs to."""
        ...
