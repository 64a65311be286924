"""What every evidence source offers the tools: spans by time or trace, KPI frames by pod."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from thinkfl_operator.telemetry.loglines import LogSource
from thinkfl_operator.telemetry.quality import DataQuality
from thinkfl_operator.telemetry.spans import SpanTable


@dataclass(frozen=True, slots=True)
class KpiBlock:
    """One pod's (or node's) KPI samples: times (epoch s, sorted) × KPIs, as plain arrays."""

    ts: np.ndarray
    values: np.ndarray  # shape (len(ts), len(kpis)), float64, NaN = missing
    kpis: tuple[str, ...]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> KpiBlock:
        """From a frame indexed by epoch seconds with one column per KPI."""
        frame = frame.sort_index()
        return cls(frame.index.to_numpy(dtype="float64"), frame.to_numpy(dtype="float64"),
                   tuple(str(c) for c in frame.columns))

    def between(self, start_s: float, end_s: float) -> KpiBlock:
        lo, hi = self.ts.searchsorted(start_s, "left"), self.ts.searchsorted(end_s, "right")
        return KpiBlock(self.ts[lo:hi], self.values[lo:hi], self.kpis)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, index=pd.Index(self.ts, name="ts"), columns=list(self.kpis))

    def __len__(self) -> int:
        return len(self.ts)


#: Per-pod KPI samples: pod (or node) → its block.
MetricFrames = dict[str, KpiBlock]


def as_block(data: KpiBlock | pd.DataFrame) -> KpiBlock:
    return data if isinstance(data, KpiBlock) else KpiBlock.from_frame(data)


def as_blocks(data: Mapping[str, KpiBlock | pd.DataFrame] | None) -> MetricFrames:
    return {name: as_block(block) for name, block in (data or {}).items()}


class Store(Protocol):
    """A read-only source of spans and metrics (offline dataset or live backends)."""

    name: str
    quality: DataQuality
    #: Where the application's log lines come from (None: no log evidence).
    logs: LogSource | None
    #: Reading another time range means requests to live backends (read only what is needed).
    remote: bool

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
