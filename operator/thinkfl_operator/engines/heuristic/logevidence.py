"""The incident's log evidence for the deterministic engine: read once, shifts per service.

The window starts ``logs.lead_seconds`` before the incident window (a service's errors often
start 40 to 90 s before an alert, or before the time a person gives), the history is the
``logs.history_minutes`` before it, a guard apart. A source that fails or has nothing gives no
evidence and a note: the diagnosis goes on with traces and metrics.
"""

from __future__ import annotations

import structlog

from thinkfl_operator.evidence.logshift import LogEvidence, log_shifts
from thinkfl_operator.settings import LogsSettings
from thinkfl_operator.telemetry.store import Store

log = structlog.get_logger(__name__)


def read_log_evidence(store: Store, start_s: float, end_s: float, cfg: LogsSettings) -> LogEvidence | None:
    """Shifts of every service's template mix in [start_s − lead, end_s) against its history;
    None when logs are off or the store has no log source."""
    source = getattr(store, "logs", None)
    if not cfg.enabled or source is None:
        return None
    window = (start_s - cfg.lead_seconds, end_s)
    history = (window[0] - cfg.guard_seconds - cfg.history_minutes * 60.0, window[0] - cfg.guard_seconds)
    batch = source.logs(history[0], window[1])
    evidence = log_shifts(batch, window, history, source.name)
    if batch.empty:
        evidence.notes.append(f"no log lines from {source.name} between the history and the window")
    elif not evidence.usable:
        evidence.notes.append(f"log evidence from {source.name} unusable: {evidence.window_minutes:.1f} min "
                              f"of window and {evidence.history_minutes:.1f} min of history covered")
    return evidence
