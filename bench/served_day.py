"""A labeled day served as a live cluster would serve it, for the live benchmarks.

The day's traces come from the Jaeger or Tempo query API stand-in, in its own process (as a
real backend would be: no shared GIL), every request delayed by ``latency_s``; its KPIs, and
optionally the span metrics a collector or Tempo's metrics-generator would have written for its
spans, from a real Prometheus (Debian package, backfilled). Used by ``live_budget.py`` and
``live_incident.py``.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.background import Fault, in_own_process
from tests.fakes.prometheus_server import (
    RealPrometheus,
    join_openmetrics,
    nezha_to_openmetrics,
    spans_to_spanmetrics,
)
from tests.fakes.trace_api import TraceApiServer

from thinkfl_operator.config.settings import LogsSettings, Settings

#: Logs are left out on both sides (the offline store reads the day's log files, the live one
#: has no log backend here), so live and offline answers compare like with like
#: (Loki: bench/live_logs.py).
SPANS_AND_METRICS = Settings(logs=LogsSettings(enabled=False))


@contextmanager
def served_day(day: Path, frame: pd.DataFrame, backend: str, latency_s: float = 0.0,
               span_metrics: str = "none", traceql_metrics: bool = False,
               ) -> Iterator[tuple[str, RealPrometheus]]:
    """(trace API URL, Prometheus) serving ``frame`` (the day's spans) and ``day``'s KPIs;
    ``span_metrics`` ("otel" or "tempo") also backfills the spans' span metrics;
    ``traceql_metrics``: the Tempo stand-in also answers TraceQL metrics queries (Tempo 2.6+
    with a metrics-generator; without, it answers them 404 as Tempo before 2.6 does)."""
    faults = [Fault(status=None, delay_s=latency_s, times=None, path="/")] if latency_s > 0 else []
    apis = ({"v1", "v2", "search", "metrics"} if traceql_metrics else {"v1", "v2", "search"}) \
        if backend == "tempo" else None
    with tempfile.TemporaryDirectory() as tmp:
        openmetrics = nezha_to_openmetrics(day / "metric", Path(tmp) / "tt.om")
        if span_metrics != "none":
            first, last = frame["start_us"].min() / 1e6, frame["start_us"].max() / 1e6
            spans = spans_to_spanmetrics(frame, Path(tmp) / "spans.om", span_metrics, first, last + 60)
            openmetrics = join_openmetrics(Path(tmp) / "all.om", openmetrics, spans)
        with RealPrometheus(openmetrics, workdir=Path(tmp) / "prom") as prometheus, \
                in_own_process(lambda: TraceApiServer(frame, flavor=backend, faults=faults, apis=apis),
                               timeout_s=300) as traces_url:
            yield traces_url, prometheus
