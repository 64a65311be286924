"""The same TrainTicket incidents through live backends and through the offline store.

Spans: the day's traces served by a Jaeger (and a Tempo) query API fake, read by the real
clients. KPIs: the real Prometheus server, backfilled with the day's metric CSVs. The ranked
answer (service and pod, in order) must equal the offline one: the live path changes where
the evidence comes from, never what the engine concludes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.prometheus_server import RealPrometheus
from tests.fakes.trace_api import TraceApiServer
from tests.shared import shared_path
from thinkfl_operator.config.settings import (
    LogsSettings,
    PrometheusSettings,
    Settings,
    TracesSettings,
)
from thinkfl_operator.core.models import Diagnosis, Incident
from thinkfl_operator.engines.heuristic.engine import HeuristicEngine
from thinkfl_operator.evaluation.labels import read_faults
from thinkfl_operator.telemetry.live import LiveStore, open_live
from thinkfl_operator.telemetry.nezha import NezhaStore
from thinkfl_operator.telemetry.prometheus import NEZHA_CATALOG

pytestmark = pytest.mark.shared_data

#: Three faults of different kinds and services (positions in the label file).
FAULTS = (0, 1, 6)
#: The day's log files feed the offline store, and no log backend the live one here (Loki is
#: test_live_logs_cli's): both engines leave logs out, so like is compared with like.
SPANS_AND_METRICS = Settings(logs=LogsSettings(enabled=False))
#: The alert names the entry service, so a Jaeger search per slice covers every trace.
ENTRY = "ts-gateway-service"


@pytest.fixture(scope="module")
def day() -> Path:
    return shared_path("datasets", "nezha", "rca_data", "2023-01-30")


@pytest.fixture(scope="module")
def offline(day: Path) -> NezhaStore:
    return NezhaStore(day)


@pytest.fixture(scope="module")
def jaeger(offline: NezhaStore) -> Iterator[TraceApiServer]:
    frame = offline.spans_between(0, 2**62).frame
    with TraceApiServer(frame, flavor="jaeger", apis={"v1"}) as server:
        yield server


def _live(server: TraceApiServer, prometheus: RealPrometheus, backend: str, t_s: float) -> LiveStore:
    # No sampling and no request budget: every trace, so the answers can be equal
    # (bench/live_budget.py measures the budgeted plan).
    traces = TracesSettings(backend=backend, url=server.url, search_limit=10_000,
                            baseline_limit=10_000, max_requests=10_000, retries=0,
                            tempo_baseline="traces")
    metrics = PrometheusSettings(url=prometheus.url, catalog=NEZHA_CATALOG, retries=0)
    return open_live(traces, metrics, service=ENTRY, around_s=t_s)


def _answer(result: Diagnosis) -> list[tuple[str, str]]:
    return [(c.service, c.pod) for c in result.root_causes]


@pytest.mark.parametrize("position", FAULTS)
def test_jaeger_and_prometheus_give_the_offline_answer(
    position: int, day: Path, offline: NezhaStore, jaeger: TraceApiServer,
    prometheus_nezha_tt: RealPrometheus,
) -> None:
    fault = read_faults(day)[position]
    incident = Incident(time_s=fault.time_s, service=ENTRY)
    expected = HeuristicEngine(SPANS_AND_METRICS).diagnose(offline, incident)
    live = _live(jaeger, prometheus_nezha_tt, "jaeger", fault.time_s)
    result = HeuristicEngine(SPANS_AND_METRICS).diagnose(live, incident)
    assert _answer(result) == _answer(expected)
    assert result.root_causes[0].service == fault.service
    assert {s.tool for s in result.steps} >= {"search_traces", "search_fluctuating_metrics"}
    # Prometheus knows the nodes (the offline CSVs do not): the live answer names them.
    assert result.root_causes[0].node.startswith("node-")


def test_tempo_gives_the_offline_answer(
    day: Path, offline: NezhaStore, prometheus_nezha_tt: RealPrometheus
) -> None:
    fault = read_faults(day)[FAULTS[0]]
    incident = Incident(time_s=fault.time_s, service=ENTRY)
    expected = HeuristicEngine(SPANS_AND_METRICS).diagnose(offline, incident)
    lo, hi = int((fault.time_s - 2100) * 1e6), int((fault.time_s + 2400) * 1e6)
    frame = offline.spans_between(lo, hi).frame
    with TraceApiServer(frame, flavor="tempo", tempo_key="resourceSpans") as tempo:
        live = _live(tempo, prometheus_nezha_tt, "tempo", fault.time_s)
        result = HeuristicEngine(SPANS_AND_METRICS).diagnose(live, incident)
    assert _answer(result) == _answer(expected)


def test_cli_diagnoses_a_live_incident(
    day: Path, jaeger: TraceApiServer, prometheus_nezha_tt: RealPrometheus,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from thinkfl_operator.cli.main import main

    fault = read_faults(day)[FAULTS[0]]
    out = tmp_path / "live.json"
    code = main(["diagnose", "--jaeger-url", jaeger.url, "--prometheus-url", prometheus_nezha_tt.url,
                 "--time", fault.time_text, "--service", ENTRY, "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "Phase:       Diagnosed" in printed and f"jaeger at {jaeger.url}" in printed
    assert fault.service in printed.split("Root Causes:")[1].splitlines()[2]
