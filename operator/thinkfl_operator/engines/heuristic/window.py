"""Which spans are the incident window and which are the normal baseline."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from thinkfl_operator.config.settings import HeuristicSettings
from thinkfl_operator.core.errors import InvalidIncident, NoEvidence
from thinkfl_operator.core.models import Incident
from thinkfl_operator.core.rfc3339 import human_utc
from thinkfl_operator.engines.heuristic.cache import MeasuredCache, positions
from thinkfl_operator.engines.heuristic.signals import STAT_COLUMNS, Measured
from thinkfl_operator.telemetry.store import Store


@dataclass(frozen=True)
class Windows:
    """Incident window [start_s, end_s) and the baseline around it, as span frames."""

    start_s: float
    end_s: float
    anchor_s: float  # the incident time (for the metrics tool)
    window: pd.DataFrame
    #: The baseline's row positions in ``measured.frame`` (whose index is the row position).
    baseline_rows: np.ndarray
    measured: Measured

    @cached_property
    def baseline(self) -> pd.DataFrame:
        """The baseline spans' statistics columns (made only when asked: the engine reads
        the measured frame at ``baseline_rows``)."""
        return self.measured.frame[STAT_COLUMNS].iloc[self.baseline_rows]


def incident_window(store: Store, incident: Incident, cfg: HeuristicSettings) -> tuple[float, float, float]:
    """[start, end) in epoch seconds and the anchor time: after the given time, or around the
    given trace (anchored at its root span, the timestamp the model is shown)."""
    width = incident.window_s or cfg.window_seconds
    if incident.trace_id:
        trace = store.find_trace(incident.trace_id)
        root = trace.root()
        if root is None:
            raise NoEvidence(f"trace {incident.trace_id} not found in the {store.name} data")
        start = root.timestamp / 1000.0
        return start - width / 2, start + width / 2, start
    if incident.time_s is None:
        raise InvalidIncident("an incident needs a time or a trace ID")
    return (*time_window(incident.time_s, incident, cfg), incident.time_s)


def time_window(time_s: float, incident: Incident, cfg: HeuristicSettings) -> tuple[float, float]:
    """[start, end) of an incident given by its time: ``lead_seconds`` before it to its window after."""
    return time_s - cfg.lead_seconds, time_s + (incident.window_s or cfg.window_seconds)


def split(store: Store, incident: Incident, cfg: HeuristicSettings, cache: MeasuredCache) -> Windows:
    start, end, anchor = incident_window(store, incident, cfg)
    horizon = cfg.baseline_minutes * 60
    measured = cache.measured(store, start - horizon, end + horizon)
    first, stop = positions(measured, start - horizon, end + horizon)
    lo, hi = (min(max(p, first), stop) for p in positions(measured, start, end))
    window = measured.frame.iloc[lo:hi]  # its index: the rows' positions in measured.frame
    if window.empty:
        raise NoEvidence(
            f"no spans between {human_utc(start)} and {human_utc(end)} in the {store.name} data"
        )
    guard = cfg.guard_seconds
    before, after = (min(max(p, first), stop) for p in positions(measured, start - guard, end + guard))
    return Windows(start, end, anchor, window,
                   np.concatenate([np.arange(first, before), np.arange(after, stop)]), measured)
