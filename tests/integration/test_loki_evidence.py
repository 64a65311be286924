"""Log evidence through Loki, both ways the stand-in can answer: lines (no pattern ingester) and
Loki 3's pattern counts. A thrown exception that only the logs show must lead either way: the
pattern path must not mix Loki's templates with ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes.loki_api import LokiApiServer
from thinkfl_operator.cli.main import main
from thinkfl_operator.cli.timeparse import iso
from thinkfl_operator.config.settings import LogsSettings, Settings
from thinkfl_operator.core.models import Incident
from thinkfl_operator.demo.synthetic import generate
from thinkfl_operator.engines.heuristic.engine import HeuristicEngine
from thinkfl_operator.telemetry.loki import LokiLogs

INCIDENT = generate(fault="exception", service="cartservice", minutes=40)


@pytest.mark.parametrize("patterns", [False, True])
def test_an_exception_only_logs_show_leads_through_loki(patterns: bool) -> None:
    lines = INCIDENT.logs.assign(namespace="shop", app=INCIDENT.logs["service"])
    with LokiApiServer(lines, labels=("namespace", "pod", "app"), patterns=patterns) as server:
        logs = LogsSettings(loki_url=server.url, service_labels=["app"], history_minutes=30, retries=0)
        source = LokiLogs(logs, "shop")
        try:
            result = HeuristicEngine(Settings(logs=logs)).diagnose(
                INCIDENT.store(logs=source), Incident(time_s=INCIDENT.time_s))
        finally:
            source.close()
        requests = len(server.requests)
    assert result.root_causes[0].service == "cartservice"
    assert result.logs_read is True and result.log_evidence[0].startswith("cartservice: new ERROR")
    assert requests <= 40
    expected = "history as Loki patterns" if patterns else "no pattern ingester"
    assert any(expected in note for note in result.notes), result.notes


def test_logs_alone_diagnose_from_the_command_line(tmp_path: Path) -> None:
    """No tracing backend at all: ``thinkfl diagnose --loki-url URL --time T`` diagnoses from
    the logs and says so."""
    lines = INCIDENT.logs.assign(namespace="shop", app=INCIDENT.logs["service"])
    out = tmp_path / "result.json"
    with LokiApiServer(lines, labels=("namespace", "pod", "app")) as server:
        code = main(["diagnose", "--loki-url", server.url, "--namespace", "shop", "--time",
                     iso(INCIDENT.time_s), "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["root_causes"][0]["service"] == "cartservice"
    assert "no spans in the incident window: diagnosed from logs" in result["notes"]
