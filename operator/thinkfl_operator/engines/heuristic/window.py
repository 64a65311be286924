"""Which spans are the incident window and which are the normal baseline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from thinkfl_operator.errors import InvalidIncident, NoEvidence
from thinkfl_operator.models import Incident
from thinkfl_operator.settings import HeuristicSettings
from thinkfl_operator.telemetry.spans import SpanTable
from thinkfl_operator.telemetry.store import Store

MeasureFn = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class Windows:
    """Incident window [start_s, end_s) and the baseline around it, as span frames."""

    start_s: float
    end_s: float
    anchor_s: float  # the incident time (for the metrics tool)
    spans: SpanTable  # everything loaded (window and baseline)
    window: pd.DataFrame
    baseline: pd.DataFrame


def incident_window(store: Store, incident: Incident, cfg: HeuristicSettings) -> tuple[float, float]:
    """[start, end) in epoch seconds: after the given time, or around the given trace."""
    width = incident.window_s or cfg.window_seconds
    if incident.trace_id:
        trace = store.find_trace(incident.trace_id)
        root = trace.root()
        if root is None:
            raise NoEvidence(f"trace {incident.trace_id} not found in the {store.name} data")
        start = root.timestamp / 1000.0
        return start - width / 2, start + width / 2
    if incident.time_s is None:
        raise InvalidIncident("an incident needs a time or a trace ID")
    return incident.time_s - cfg.lead_seconds, incident.time_s + width


def split(store: Store, incident: Incident, cfg: HeuristicSettings, measured: MeasureFn) -> Windows:
    start, end = incident_window(store, incident, cfg)
    horizon = cfg.baseline_minutes * 60
    table = store.spans_between(int((start - horizon) * 1e6), int((end + horizon) * 1e6))
    frame = measured(table.frame)
    t = frame["start_us"] / 1e6
    window = frame[(t >= start) & (t < end)]
    if window.empty:
        raise NoEvidence(
            f"no spans between {_iso(start)} and {_iso(end)} in the {store.name} data"
        )
    guard = cfg.guard_seconds
    baseline = frame[(t < start - guard) | (t >= end + guard)]
    anchor = incident.time_s if incident.time_s is not None and not incident.trace_id else start
    return Windows(start, end, anchor, table, window, baseline)


def _iso(t: float) -> str:
    return pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")

