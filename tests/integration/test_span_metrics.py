"""The baseline from span metrics: a real Prometheus backfilled with the span metrics the
OpenTelemetry Collector's spanmetrics connector (Jaeger SPM reads the same names) or Tempo's
metrics-generator would have written for a TrainTicket day's spans, plus the day's KPIs; the
day's traces served by the Jaeger query API stand-in.

With span metrics the live plan searches the incident's focus window only, and the engine's
top cause is still the offline store's (which reads every baseline trace) and the injected
service. Where Prometheus has none, the plan samples baseline traces as before.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest

from tests.fakes.prometheus_server import (
    RealPrometheus,
    join_openmetrics,
    nezha_to_openmetrics,
    require_binaries,
    spans_to_spanmetrics,
)
from tests.fakes.trace_api import TraceApiServer
from tests.shared import NEZHA_TT_DAY, shared_path
from thinkfl_operator.config.settings import (
    LogsSettings,
    PrometheusSettings,
    Settings,
    TracesSettings,
)
from thinkfl_operator.core.models import Incident
from thinkfl_operator.engines.heuristic.engine import HeuristicEngine
from thinkfl_operator.evaluation.labels import Fault
from thinkfl_operator.telemetry.live import FOCUS_AFTER_S, FOCUS_BEFORE_S, LiveStore, open_live
from thinkfl_operator.telemetry.nezha import NezhaStore
from thinkfl_operator.telemetry.prometheus import NEZHA_CATALOG, PrometheusMetrics
from thinkfl_operator.telemetry.span_metrics import bucket_quantiles

pytestmark = pytest.mark.shared_data

SPANS_AND_METRICS = Settings(logs=LogsSettings(enabled=False))
#: Span metrics are backfilled around these faults (network delay, CPU contention) only ...
WITH_SPAN_METRICS = (0, 1)
#: ... and this one is more than an hour later: its Prometheus has KPIs but no span metrics.
WITHOUT = 12
HISTOGRAM = {"otel": "traces_span_metrics_duration_milliseconds_bucket",
             "tempo": "traces_spanmetrics_latency_bucket"}


@pytest.fixture(scope="module")
def day() -> Path:
    return shared_path(*NEZHA_TT_DAY)


@pytest.fixture(scope="module")
def faults(nezha_tt_faults: list[Fault]) -> list[Fault]:
    return nezha_tt_faults


@pytest.fixture(scope="module")
def spans(nezha_tt_spans: pd.DataFrame) -> pd.DataFrame:
    return nezha_tt_spans


@pytest.fixture(scope="module")
def jaeger(spans: pd.DataFrame) -> Iterator[TraceApiServer]:
    with TraceApiServer(spans, flavor="jaeger") as server:
        yield server


@pytest.fixture(scope="module", params=["otel", "tempo"])
def prometheus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
               day: Path, spans: pd.DataFrame, faults: list[Fault]) -> Iterator[tuple[str, RealPrometheus]]:
    """KPIs of the whole day, span metrics (in the naming of the parameter) from 35 minutes
    before the first fault of ``WITH_SPAN_METRICS`` to 40 minutes after the last."""
    require_binaries()
    naming = str(request.param)
    work = tmp_path_factory.mktemp(f"prometheus-spanmetrics-{naming}")
    times = [faults[i].time_s for i in WITH_SPAN_METRICS]
    kpis = nezha_to_openmetrics(day / "metric", work / "kpis.om")
    span_om = spans_to_spanmetrics(spans, work / "spans.om", naming, min(times) - 2100, max(times) + 2400)
    source = join_openmetrics(work / "all.om", kpis, span_om)
    with RealPrometheus(source, workdir=work / "server") as server:
        for path in (kpis, span_om, source):
            path.unlink()
        yield naming, server


def _live(jaeger: TraceApiServer, prometheus: RealPrometheus, t_s: float) -> LiveStore:
    """As a new user runs it: the incident time only, the default request budget."""
    traces = TracesSettings(backend="jaeger", url=jaeger.url, retries=0)
    metrics = PrometheusSettings(url=prometheus.url, catalog=NEZHA_CATALOG, retries=0, span_metrics=True)
    return open_live(traces, metrics, around_s=t_s)


def _search_ranges(requests: list[str]) -> list[tuple[float, float]]:
    """(start, end) seconds of every trace search among the stand-in's requests."""
    out = []
    for request in requests:
        parts = urlsplit(request)
        query = parse_qs(parts.query)
        if parts.path == "/api/v3/traces":
            out.append((pd.Timestamp(query["query.start_time_min"][0]).timestamp(),
                        pd.Timestamp(query["query.start_time_max"][0]).timestamp()))
        elif parts.path == "/api/traces" and "start" in query:
            out.append((int(query["start"][0]) / 1e6, int(query["end"][0]) / 1e6))
    return out


@pytest.mark.parametrize("position", WITH_SPAN_METRICS)
def test_span_metrics_replace_the_baseline_traces(
    position: int, day: Path, faults: list[Fault], jaeger: TraceApiServer,
    prometheus: tuple[str, RealPrometheus],
) -> None:
    naming, server = prometheus
    fault = faults[position]
    incident = Incident(time_s=fault.time_s)
    expected = HeuristicEngine(SPANS_AND_METRICS).diagnose(NezhaStore(day), incident)
    before = len(jaeger.requests)
    store = _live(jaeger, server, fault.time_s)
    result = HeuristicEngine(SPANS_AND_METRICS).diagnose(store, incident)
    requests = jaeger.requests[before:]

    assert store.span_baseline is not None
    assert store.span_baseline.naming.histogram == HISTOGRAM[naming]
    assert store.span_baseline.service_graph == (naming == "tempo")
    assert len(store.span_baseline.keys) > 50
    searches = _search_ranges(requests)
    assert searches
    focus = (fault.time_s - FOCUS_BEFORE_S, fault.time_s + FOCUS_AFTER_S)
    assert all(lo >= focus[0] - 1 and hi <= focus[1] + 1 for lo, hi in searches), searches
    assert len(requests) <= TracesSettings().max_requests
    assert store.span_metrics is not None and store.span_metrics.sent <= 3
    assert any(f"the baseline came from {store.span_baseline.describe()}" in n for n in result.notes)
    assert result.root_causes[0].service == expected.root_causes[0].service == fault.service
    store.close()


def test_without_span_metrics_the_baseline_traces_are_searched(
    faults: list[Fault], jaeger: TraceApiServer, prometheus: tuple[str, RealPrometheus],
) -> None:
    _, server = prometheus
    fault = faults[WITHOUT]
    before = len(jaeger.requests)
    store = _live(jaeger, server, fault.time_s)
    HeuristicEngine(SPANS_AND_METRICS).diagnose(store, Incident(time_s=fault.time_s))
    assert store.span_baseline is None
    assert store.span_metrics is not None and store.span_metrics.sent == 1  # the detection only
    focus = (fault.time_s - FOCUS_BEFORE_S, fault.time_s + FOCUS_AFTER_S)
    searches = _search_ranges(jaeger.requests[before:])
    assert any(hi <= focus[0] or lo >= focus[1] for lo, hi in searches)
    store.close()


def test_local_quantiles_are_prometheus_histogram_quantile(
    faults: list[Fault], prometheus: tuple[str, RealPrometheus],
) -> None:
    naming, server = prometheus
    histogram = HISTOGRAM[naming]
    service = "service_name" if naming == "otel" else "service"
    at = faults[WITH_SPAN_METRICS[0]].time_s
    client = PrometheusMetrics(server.url, NEZHA_CATALOG, retries=0)
    inner = f"sum by ({service}, span_name, le) (increase({histogram}[1800s]))"
    buckets = client.query(inner, at)
    for q in (0.1, 0.5, 0.9):
        theirs = {(r["metric"][service], r["metric"]["span_name"]): float(r["value"][1])
                  for r in client.query(f"histogram_quantile({q}, {inner})", at)}
        checked = 0
        for key, value in theirs.items():
            rows = sorted((float(r["metric"]["le"]), float(r["value"][1])) for r in buckets
                           if (r["metric"][service], r["metric"]["span_name"]) == key)
            bounds, counts = np.array([b for b, _ in rows]), np.array([c for _, c in rows])
            if math.isnan(value) or counts[-1] == 0:
                continue
            ours = bucket_quantiles(bounds, counts, np.array([q]))[0]
            assert ours == pytest.approx(value, rel=1e-9), (key, q)
            checked += 1
        assert checked > 20
    client.close()
