"""Log evidence, whatever it came from: a batch of log lines (or Loki's pattern counts) and the
time it is complete for.

Three sources produce it behind one interface (``LogSource``): the Nezha ``log/`` CSVs
(``telemetry.nezha_logs``), Grafana Loki (``telemetry.loki``) and the Kubernetes API's
``pods/log`` (``kubeapi.podlogs``). The engine reads rates (lines per minute), so every batch
says which intervals it holds *every* line of (``coverage``): a source that had to stop at a
line budget or an entry limit covers less than it was asked for, and rates stay honest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

#: Columns of ``LogBatch.lines``, sorted by ``time_ns``. ``service`` is derived from the pod (or
#: the stream's service label); ``trace_id``/``span_id`` are "" when the line carries none.
LINE_COLUMNS = ("time_ns", "pod", "service", "line", "trace_id", "span_id")
#: Columns of ``LogBatch.patterns`` (Loki's pattern ingester: a template and its count per step).
PATTERN_COLUMNS = ("time_s", "service", "pattern", "count")
#: A line is cut to this many characters before it is kept (a 1 MiB line costs no more).
MAX_LINE_CHARS = 2000


@dataclass(frozen=True)
class LogBatch:
    """What a log source returned for [start_s, end_s)."""

    lines: pd.DataFrame = field(default_factory=lambda: empty_lines())
    #: Intervals (epoch s, sorted, disjoint) in which ``lines`` holds every line the source has.
    coverage: tuple[tuple[float, float], ...] = ()
    #: Pre-aggregated templates (sources that ship no lines); empty for line sources.
    patterns: pd.DataFrame = field(default_factory=lambda: empty_patterns())
    #: What a person should know: truncated at a budget, unreachable backend, skipped rows.
    notes: tuple[str, ...] = ()
    #: How many requests the source made for this batch (benchmarks, budgets).
    requests: int = 0

    @property
    def empty(self) -> bool:
        return bool(self.lines.empty and self.patterns.empty)


class LogSource(Protocol):
    """Read-only log lines of the application's pods."""

    name: str

    def logs(self, start_s: float, end_s: float, services: Sequence[str] = ()) -> LogBatch:
        """Lines stamped in [start_s, end_s) (by their own timestamps), of ``services`` when
        given (else every service the source sees). Never raises for an unreachable or refusing
        backend: the batch is then empty and its ``notes`` say why."""
        ...


def empty_lines() -> pd.DataFrame:
    return pd.DataFrame({
        "time_ns": np.empty(0, dtype="int64"), "pod": pd.Series([], dtype=object),
        "service": pd.Series([], dtype=object), "line": pd.Series([], dtype=object),
        "trace_id": pd.Series([], dtype=object), "span_id": pd.Series([], dtype=object),
    })


def empty_patterns() -> pd.DataFrame:
    return pd.DataFrame({"time_s": np.empty(0, dtype="float64"), "service": pd.Series([], dtype=object),
                         "pattern": pd.Series([], dtype=object), "count": np.empty(0, dtype="int64")})


def merge_coverage(intervals: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """Sorted, disjoint union of the intervals (touching ones joined)."""
    out: list[tuple[float, float]] = []
    for lo, hi in sorted((float(a), float(b)) for a, b in intervals if b > a):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def covered_seconds(coverage: Sequence[tuple[float, float]], start_s: float, end_s: float) -> float:
    """How many seconds of [start_s, end_s) the coverage holds."""
    return float(sum(max(0.0, min(hi, end_s) - max(lo, start_s)) for lo, hi in coverage))


def clip_coverage(coverage: Sequence[tuple[float, float]], start_s: float,
                  end_s: float) -> tuple[tuple[float, float], ...]:
    """The coverage intervals cut to [start_s, end_s) (those outside it dropped)."""
    return tuple((max(lo, start_s), min(hi, end_s)) for lo, hi in coverage if hi > start_s and lo < end_s)


def batch_between(lines: pd.DataFrame, coverage: Sequence[tuple[float, float]], start_s: float,
                  end_s: float, services: Sequence[str] = ()) -> LogBatch:
    """The ``lines`` (sorted by ``time_ns``) stamped in [start_s, end_s), of ``services`` when
    given, with the coverage cut to that range: what an in-memory source answers."""
    times = lines["time_ns"].to_numpy()
    lo, hi = times.searchsorted(int(start_s * 1e9)), times.searchsorted(int(end_s * 1e9))
    part = lines.iloc[lo:hi]
    if services:
        part = part[part["service"].isin(list(services))]
    return LogBatch(lines=part, coverage=clip_coverage(coverage, start_s, end_s))
