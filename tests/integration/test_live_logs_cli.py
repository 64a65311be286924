"""``thinkfl diagnose`` on live backends with logs: a code fault of the TrainTicket day whose
traces barely move, its spans from a Jaeger query API stand-in and its log lines from the Loki
stand-in (the day's own lines), found through the logs; and with ``--no-logs`` the same run reads
no log evidence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.loki_api import LokiApiServer
from tests.fakes.trace_api import TraceApiServer
from tests.shared import shared_path
from thinkfl_operator.cli.main import main
from thinkfl_operator.evaluation.labels import Fault, read_faults
from thinkfl_operator.telemetry.nezha import NezhaStore
from thinkfl_operator.telemetry.nezha_logs import NezhaLogs

pytestmark = pytest.mark.shared_data

ENTRY = "ts-gateway-service"


@pytest.fixture(scope="module")
def day() -> Path:
    return shared_path("datasets", "nezha", "rca_data", "2023-01-29")


@pytest.fixture(scope="module")
def backends(day: Path) -> Iterator[tuple[str, str]]:
    spans = NezhaStore(day).spans_between(0, 2**62).frame
    lines = NezhaLogs(day / "log").logs(0, 2**33).lines.assign(namespace="train-ticket")
    with TraceApiServer(spans, flavor="jaeger", apis={"v1"}) as jaeger, \
            LokiApiServer(lines, labels=("namespace", "pod")) as loki:
        yield jaeger.url, loki.url


#: A wrong return value and an exception, of two services (positions in the label file).
FAULTS = (1, 10)


def _code_fault(day: Path, position: int) -> Fault:
    fault = read_faults(day)[position]
    assert fault.fault_type in ("return", "exception")
    return fault


@pytest.fixture(autouse=True)
def whole_trace_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every trace of a slice, as in test_live_equivalence: the live path then sees what the
    offline store sees, and only the log source differs."""
    monkeypatch.setenv("THINKFL_TRACES__SEARCH_LIMIT", "10000")
    monkeypatch.setenv("THINKFL_TRACES__BASELINE_LIMIT", "10000")


def _diagnose(day: Path, urls: tuple[str, str], tmp_path: Path, *flags: str,
              position: int = FAULTS[0]) -> dict[str, Any]:
    fault = _code_fault(day, position)
    out = tmp_path / "result.json"
    code = main(["diagnose", "--jaeger-url", urls[0], "--loki-url", urls[1], "--namespace", "train-ticket",
                 "--service", ENTRY, "--time", fault.time_text, "--json", str(out), *flags])
    assert code == 0
    payload: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return payload


@pytest.mark.parametrize("position", FAULTS)
def test_a_code_fault_is_found_through_loki(position: int, day: Path, backends: tuple[str, str],
                                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = _diagnose(day, backends, tmp_path, position=position)
    printed = capsys.readouterr().out
    truth = _code_fault(day, position).service
    assert result["root_causes"][0]["service"] == truth
    assert result["log_evidence"] and result["log_evidence"][0].startswith(truth)
    assert any(n.startswith("logs: ") and "from loki" in n for n in result["notes"])
    assert "Log Evidence:" in printed and "Loki" not in printed.split("Source:")[0]


def test_no_logs_reads_no_log_evidence(day: Path, backends: tuple[str, str], tmp_path: Path) -> None:
    result = _diagnose(day, backends, tmp_path, "--no-logs")
    assert result["log_evidence"] == []
    assert not any(n.startswith("logs: ") for n in result["notes"])
