"""What ``status.rootCauses`` no longer shows is still there for whoever needs it: the feedback
grade reads the record's whole answer, so a true cause ranked after the third is graded at its
rank, not "not in the answer"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from thinkfl_operator.core.models import Diagnosis, Incident, RootCause, Topology
from thinkfl_operator.feedback.record import build_record, encode_record
from thinkfl_operator.incident import status as incident_status
from thinkfl_operator.incident.spec import diagnosis_digest
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
