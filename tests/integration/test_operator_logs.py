"""Log evidence through the real operator (kopf against kmock): what moved goes to
``status.logEvidence``, what was read to the Diagnosed condition's message; a log backend that
cannot answer never fails the incident, it is diagnosed from traces and metrics and says so in
a LogEvidence condition."""

from __future__ import annotations

import csv
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.integration.operator_harness import (
    INCIDENT,
    T,
    create_fi,
    fi_body,
    operator,
    wait_status,
)
from thinkfl_operator.config.settings import LogsSettings, Settings
from thinkfl_operator.core.models import Incident
from thinkfl_operator.telemetry.loglines import LogSource
from thinkfl_operator.telemetry.loki import LokiLogs
from thinkfl_operator.telemetry.nezha_logs import NezhaLogs
from thinkfl_operator.telemetry.store import Store

HEADER = ["Timestamp", "TimeUnixNano", "Node", "PodName", "Container", "TraceID", "SpanID", "Log"]


def _log_folder(root: Path) -> Path:
    """An hour of steady lines of every service, and from the incident on, the faulty one's
    usual ``#53`` line gone and a new ERROR line in its place (an exception)."""
    folder = root / "logs" / "log"
    folder.mkdir(parents=True)
    pods = sorted({p for p in INCIDENT.spans["pod"].astype(str).unique()})
    faulty = INCIDENT.faulty_pod
    rows = []
    for second in range(int(INCIDENT.time_s) - 3600, int(INCIDENT.time_s) + 180, 5):
        for pod in pods:
            lines = [f"INFO Handler#47 request served in {second % 97} ms"]
            if pod != faulty or second < INCIDENT.time_s:
                lines.append("INFO Handler#53 recommendations listed")
            else:
                lines.append("ERROR Handler#60 catalog lookup failed: NullPointerException")
            for line in lines:
                doc = json.dumps({"log": line + "\n", "stream": "stdout", "time": ""}, separators=(",", ":"))
                rows.append(["", str(second * 10**9), "n", pod, "server", "", "", doc])
    with (folder / "all_log.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return folder


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _diagnosed(api: Any, name: str, logs: LogSource) -> dict[str, Any]:
    """The status of incident ``name`` diagnosed by the real operator with ``logs`` beside the
    synthetic incident's spans and metrics (it must end Diagnosed)."""
    def factory(incident: Incident, settings: Settings) -> Store:
        return INCIDENT.store(logs=logs)

    async with operator(api, factory):
        await create_fi(api, fi_body(name, {"service": "frontend", "time": T, "engine": "heuristic"}))
        status = await wait_status(api, name, ("Diagnosed", "Failed"))
    assert status["phase"] == "Diagnosed", status
    return status


@pytest.mark.asyncio
async def test_log_evidence_is_written_to_the_status(api: Any, tmp_path: Path) -> None:
    folder = _log_folder(tmp_path)

    status = await _diagnosed(api, "with-logs", NezhaLogs(folder))
    conditions = {c["type"]: c for c in status["conditions"]}
    assert "LogEvidence" not in conditions  # set when the logs could not be used
    assert "; logs: " in conditions["Diagnosed"]["message"], conditions["Diagnosed"]
    first = status["logEvidence"][0]
    assert first.startswith(f"{INCIDENT.faulty_service}: ")
    assert "`Handler#60 catalog lookup failed:`" in first or "`Handler#53 recommendations listed`" in first
    assert status["rootCauses"][0]["service"] == INCIDENT.faulty_service


@pytest.mark.asyncio
async def test_unreachable_loki_leaves_the_diagnosis_to_traces_and_metrics(api: Any) -> None:
    loki = LogsSettings(loki_url=f"http://127.0.0.1:{_closed_port()}", retries=0, timeout_s=1.0)

    status = await _diagnosed(api, "no-loki", LokiLogs(loki))
    condition = {c["type"]: c for c in status["conditions"]}["LogEvidence"]
    assert condition["status"] == "False" and condition["reason"] == "LogsUnavailable"
    assert "Loki" in condition["message"] and "diagnosed without logs" in condition["message"]
    assert status["rootCauses"][0]["service"] == INCIDENT.faulty_service
    assert "logEvidence" not in status  # nothing read: no empty list
