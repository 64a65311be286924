"""What the status no longer shows is still there for whoever needs it: the feedback grade
reads the record's whole answer, so a true cause ranked after the third is graded at its rank,
not "not in the answer"; the seconds of each stage are in the record; the logs read are said in
the Diagnosed condition and the path."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.models import Diagnosis, Incident, RootCause, Topology
from thinkfl_operator.demo.synthetic import generate
from thinkfl_operator.feedback.record import build_record, encode_record
from thinkfl_operator.incident import status as incident_status
from thinkfl_operator.incident.spec import diagnosis_digest
from thinkfl_operator.kube import runner
from thinkfl_operator.kube.confirm import confirm

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SPEC = {"service": "frontend"}


def _diagnosis() -> Diagnosis:
    """One scored candidate and six at score 0: the status shows three of them."""
    services = ["recommendationservice", "frontend", "redis-cart", "adservice", "cartservice",
                "checkoutservice", "emailservice"]
    causes = [RootCause(rank=i + 1, node="", service=svc, pod=f"{svc}-0", reason="r",
                        score=100 if i == 0 else 0) for i, svc in enumerate(services)]
    topology = Topology(pods={f"{svc}-0": svc for svc in services}, nodes={})
    return Diagnosis(root_causes=causes, engine="heuristic", topology=topology)


def test_feedback_on_a_cause_not_shown_in_status_is_graded_at_its_rank_in_the_record() -> None:
    diagnosis = _diagnosis()
    status = incident_status.diagnosed(diagnosis, 1, NOW - timedelta(seconds=1), NOW)
    assert [rc["service"] for rc in status["rootCauses"]] == [
        "recommendationservice", "frontend", "redis-cart"]
    status.update(specDigest=diagnosis_digest(SPEC), recordConfigMap="fi-record")
    record = encode_record(build_record(diagnosis, Incident(service="frontend")))
    body = {"metadata": {"name": "fi", "namespace": "shop", "generation": 2},
            "spec": {**SPEC, "feedback": {"service": "cartservice"}}, "status": status}
    result = confirm(body, NOW, record=lambda: record)
    assert result.graded and result.rank == 5
    assert result.status["grade"]["rank"] == 5
    assert "true cause cartservice ranked 5 by the heuristic engine" in \
        result.status["conditions"][-1]["message"]


def test_what_describe_no_longer_shows_is_in_the_record_the_path_and_the_condition() -> None:
    """The demo's incident through the operator's use case (logs read, nothing moved in them)."""
    incident = generate(fault="network_delay", service="recommendationservice")
    body = {"metadata": {"name": "fi", "namespace": "shop", "uid": "u-1", "generation": 1,
                         "creationTimestamp": "2026-11-01T10:40:00Z"},
            "spec": {"service": "frontend", "time": "2026-11-01T10:40:00Z"}, "status": {}}
    out = runner.run(body, Settings(), lambda *_: incident.store(), 0)
    status = out.status
    assert status["phase"] == "Diagnosed"
    assert set(status["usage"]) == {"llmCalls", "toolCalls"} and status.get("attempts") is None
    usage = json.loads(gzip.decompress(base64.b64decode(out.record)))["usage"]
    assert usage["toolCalls"] == status["usage"]["toolCalls"]
    assert {"load", "walk", "logs"} <= {s["stage"] for s in usage["stages"]}
    assert all(isinstance(s["seconds"], float) and s["seconds"] >= 0 for s in usage["stages"])
    # The logs were read: said in the Diagnosed condition and the path, no LogEvidence condition.
    assert [c["type"] for c in status["conditions"]] == ["Diagnosed", "Done"]
    assert "; logs: " in status["conditions"][0]["message"] and " lines from " in status["conditions"][0]["message"]
    assert any(line.split(" ", 1)[1].startswith("read_logs(") for line in status["path"])
    assert status["logEvidence"] is None  # nothing moved in them: no empty list
    assert len(status["path"]) <= incident_status.MAX_PATH == 5
