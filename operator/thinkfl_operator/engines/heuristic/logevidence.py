"""The incident's log evidence for the deterministic engine: read once, shifts per service.

The window starts ``logs.lead_seconds`` before the incident window (a service's errors often
start 40 to 90 s before an alert, or before the time a person gives), the history is the
``logs.history_minutes`` before it, a guard apart. A source that fails or has nothing gives no
evidence and a note: the diagnosis goes on with traces and metrics.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from thinkfl_operator.config.settings import LogsSettings
from thinkfl_operator.engines.heuristic.traffic import (
    OperationCalls,
    TemplateTraffic,
    template_operations,
)
from thinkfl_operator.evidence.logshift import LineKeys, LogEvidence, line_keys, log_shifts
from thinkfl_operator.evidence.templates import categorized
from thinkfl_operator.telemetry.loglines import LogBatch, LogSource, clip_coverage
from thinkfl_operator.telemetry.store import Store


class LogCache:
    """The templated lines of one period of one source, reused by every incident inside it
    (an evaluation preloads the whole day; a live incident reads its own period once)."""

    def __init__(self) -> None:
        self._source: LogSource | None = None
        self._range = (0.0, 0.0)
        self._batch = LogBatch()
        self._times = self._batch.lines["time_ns"].to_numpy()  # the lines' times, read once per load
        self._owners: tuple[pd.DataFrame, pd.DataFrame, OperationCalls, TemplateTraffic] | None = None
        self._keys: LineKeys | None = None

    def owners(self, spans: pd.DataFrame) -> tuple[pd.DataFrame, OperationCalls]:
        """Each cached template's operation, and the calls of every operation, from ``spans``
        (joined and coded once per span frame)."""
        return self._joined(spans)[1:3]

    def traffic(self, spans: pd.DataFrame) -> TemplateTraffic:
        """``template_traffic`` of ``owners(spans)``, for any window and history."""
        return self._joined(spans)[3]

    def _joined(self, spans: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, OperationCalls, TemplateTraffic]:
        if self._owners is None or self._owners[0] is not spans:
            owners, calls = template_operations(spans, self._batch.lines), OperationCalls(spans)
            self._owners = (spans, owners, calls, TemplateTraffic(calls, owners))
        return self._owners

    def batch(self, source: LogSource, start_s: float, end_s: float) -> LogBatch:
        """The source's lines in [start_s, end_s) with ``template`` and ``level`` columns."""
        lo, hi = self._range
        if source is not self._source or start_s < lo or end_s > hi:
            self.load(source, start_s, end_s)
        a, b = self._rows(start_s, end_s)
        lines = self._batch.lines
        coverage = clip_coverage(self._batch.coverage, start_s, end_s)
        patterns = self._batch.patterns
        if not patterns.empty:
            t = patterns["time_s"].to_numpy()
            patterns = patterns[(t >= start_s) & (t < end_s)]
        return replace(self._batch, lines=lines.iloc[a:b], coverage=coverage, patterns=patterns)

    def warm(self, spans: pd.DataFrame) -> None:
        """Key every loaded line and join the templates' owners from ``spans`` now (each
        incident would on first use)."""
        self.keys(*self._range)
        if not spans.empty:
            self.owners(spans)

    def keys(self, start_s: float, end_s: float) -> LineKeys:
        """The ``LineKeys`` of ``batch(…, start_s, end_s)``'s lines (keyed once per load)."""
        if self._keys is None:
            self._keys = line_keys(self._batch.lines)
        a, b = self._rows(start_s, end_s)
        return self._keys[a:b]

    def _rows(self, start_s: float, end_s: float) -> tuple[int, int]:
        times = self._times
        return int(times.searchsorted(int(start_s * 1e9))), int(times.searchsorted(int(end_s * 1e9)))

    def load(self, source: LogSource, start_s: float, end_s: float) -> None:
        batch = source.logs(start_s, end_s)
        lines = batch.lines
        if not lines["time_ns"].is_monotonic_increasing:
            lines = lines.sort_values("time_ns", kind="stable")
        template, level = categorized(lines["line"])
        # categories: every incident counts by integer codes, not by strings
        lines = lines.assign(template=template, level=level, service=_categories(lines["service"]),
                             pod=_categories(lines["pod"]))
        self._source, self._range = source, (start_s, end_s)
        self._batch = replace(batch, lines=lines)
        self._times = lines["time_ns"].to_numpy()
        self._owners = None
        self._keys = None


def _categories(column: pd.Series) -> pd.Series:
    """``column.astype("category")`` of its text: a categorical with sorted categories (the
    Nezha reader's) only loses those no row of it holds (the same categories, in the same
    order, and the same codes)."""
    if not (isinstance(column.dtype, pd.CategoricalDtype) and column.cat.categories.is_monotonic_increasing
            and column.cat.categories.is_unique and not column.hasnans):
        return column.astype("category")
    codes, categories = column.cat.codes.to_numpy(), column.cat.categories
    used = np.flatnonzero(np.bincount(codes, minlength=len(categories)))
    if len(used) == len(categories):
        return column
    rank = np.zeros(len(categories), dtype=codes.dtype)
    rank[used] = np.arange(len(used))
    return pd.Series(pd.Categorical.from_codes(rank[codes], categories=categories[used]), index=column.index)


def log_period(start_s: float, end_s: float, cfg: LogsSettings) -> tuple[tuple[float, float], tuple[float, float]]:
    """The log window (from ``lead_seconds`` before ``start_s``) and the history before it."""
    window = (start_s - cfg.lead_seconds, end_s)
    history = (window[0] - cfg.guard_seconds - cfg.history_minutes * 60.0, window[0] - cfg.guard_seconds)
    return window, history


def logs_on(store: Store, cfg: LogsSettings) -> bool:
    """Whether log evidence is read for ``store``: logs enabled and a source to read."""
    return cfg.enabled and store.logs is not None


def read_log_evidence(store: Store, start_s: float, end_s: float, cfg: LogsSettings,
                      cache: LogCache | None = None, spans: pd.DataFrame | None = None) -> LogEvidence | None:
    """Shifts of every service's template mix in [start_s − lead, end_s) against its history;
    None when logs are off or the store has no log source."""
    source = store.logs
    if source is None or not logs_on(store, cfg):
        return None
    window, history = log_period(start_s, end_s, cfg)
    cache = cache or LogCache()
    batch = cache.batch(source, history[0], window[1])
    traffic: dict[tuple[str, str], float] = {}
    if spans is not None and not spans.empty:
        traffic = cache.traffic(spans).between(window, history)
    evidence = log_shifts(batch, window, history, source.name, traffic, cache.keys(history[0], window[1]))
    if batch.empty:
        evidence.notes.append(f"no log lines from {source.name} between the history and the window")
    elif not evidence.usable:
        evidence.notes.append(f"log evidence from {source.name} unusable: {evidence.window_minutes:.1f} min "
                              f"of window and {evidence.history_minutes:.1f} min of history covered")
    return evidence
