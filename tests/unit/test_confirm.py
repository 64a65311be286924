"""``kube.confirm``: the SRE's label graded, refused, changed and removed, on objects shaped as
the API returns them, each result applied as the status merge patch kopf sends."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.models import Incident
from thinkfl_operator.demo.synthetic import SyntheticIncident, generate
from thinkfl_operator.engines.heuristic.engine import HeuristicEngine
from thinkfl_operator.feedback.record import build_record, encode_record
from thinkfl_operator.incident.spec import diagnosis_digest
from thinkfl_operator.kube.confirm import REMOVED, Confirmation, confirm

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ANNOTATION = "thinkfl.dev/root-cause"


@cache
def synthetic() -> tuple[SyntheticIncident, dict[str, Any]]:
    """The synthetic incident and the status of its deterministic diagnosis."""
    incident = generate(fault="network_delay", service="recommendationservice")
    spec = Incident(time_s=incident.time_s, service="frontend")
    diagnosis = HeuristicEngine(Settings()).diagnose(incident.store(), spec)
    status = {"phase": "Diagnosed", "engine": "heuristic", "observedGeneration": 1,
              "rootCauses": [c.as_dict() for c in diagnosis.root_causes],
              "record": encode_record(build_record(diagnosis, spec)),
              "specDigest": diagnosis_digest({"service": "frontend"}),
              "conditions": [{"type": "Diagnosed", "status": "True", "reason": "Diagnosed"}]}
    return incident, status


def body(feedback: dict[str, str] | None = None, annotation: str | None = None,
         generation: int = 1, **status: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"service": "frontend"}
    if feedback is not None:
        spec["feedback"] = feedback
    return {"metadata": {"name": "fi", "namespace": "shop", "generation": generation,
                         "annotations": {ANNOTATION: annotation} if annotation else {}},
            "spec": spec, "status": {**copy.deepcopy(synthetic()[1]), **status}}


def applied(obj: dict[str, Any], result: Confirmation) -> dict[str, Any]:
    """``obj`` with the result's status patch merged in (None deletes), as the API does."""
    out = copy.deepcopy(obj)
    for key, value in result.status.items():
        if value is None:
            out["status"].pop(key, None)
        else:
            out["status"][key] = value
    return out


def confirmed(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Confirmed")


def graded_object() -> dict[str, Any]:
    """An incident whose pod label was graded (generation 2: the label bumped it)."""
    obj = body(annotation=f"pod/{synthetic()[0].faulty_pod}", generation=2)
    return applied(obj, confirm(obj, NOW))


def test_a_label_grades_the_answer_once() -> None:
    obj = body(feedback={"service": "recommendationservice", "by": "alice"}, generation=2)
    result = confirm(obj, NOW)
    assert result.graded and result.rank == 1 and result.engine == "heuristic"
    assert result.status["grade"]["rank"] == 1 and result.status["grade"]["score"] == 100
    assert result.status["observedGeneration"] == 2  # only the feedback changed
    [(kind, reason, message)] = result.events
    assert (kind, reason) == ("Normal", "Confirmed") and "confirmed by alice" in message
    after = applied(obj, result)
    assert confirmed(after)["status"] == "True" and confirmed(after)["reason"] == "FeedbackGraded"
    again = confirm(after, NOW)  # a restart or the status echo: nothing to patch, no Event
    assert again.graded and again.status == {} and again.events == []


def test_a_new_note_moves_observed_generation_without_an_event() -> None:
    obj = graded_object()
    obj["metadata"]["generation"] = 3
    obj["spec"]["feedback"] = {"pod": synthetic()[0].faulty_pod, "note": "tc qdisc on the node"}
    result = confirm(obj, NOW)
    assert result.graded and result.events == []
    assert result.status["observedGeneration"] == 3
    assert confirmed(applied(obj, result))["observedGeneration"] == 3
    assert result.status["grade"] == obj["status"]["grade"]


def test_a_spec_change_leaves_observed_generation_to_the_diagnosis() -> None:
    obj = graded_object()
    obj["metadata"]["generation"] = 3
    obj["spec"]["time"] = "2026-11-01T10:45:00Z"  # asks for a new diagnosis
    result = confirm(obj, NOW)
    assert "observedGeneration" not in result.status


@pytest.mark.parametrize(("change", "reason", "message"), [
    ({"annotation": "svc:cartservice"}, "InvalidFeedback", "is not service/NAME, pod/NAME or node/NAME"),
    ({"feedback": {"service": "cartsvc"}}, "InvalidFeedback", 'did you mean "cartservice"?'),
    ({"feedback": {"rootCause": "x"}}, "InvalidFeedback", "spec.feedback.rootCause is not a feedback field"),
    ({"feedback": {"service": "cartservice"}, "phase": "Failed"}, "NotDiagnosed", "phase Failed"),
    ({"feedback": {"service": "cartservice"}, "record": "garbage!"}, "NoRecord", "not base64"),
])
def test_a_refused_label_says_why_and_drops_a_stale_grade(
        change: dict[str, Any], reason: str, message: str) -> None:
    obj = graded_object()
    obj["metadata"]["annotations"] = {ANNOTATION: change.pop("annotation")} if "annotation" in change else {}
    if "feedback" in change:
        obj["spec"]["feedback"] = change.pop("feedback")
    obj["status"].update(change)
    result = confirm(obj, NOW)
    assert not result.graded and result.status["grade"] is None
    after = applied(obj, result)
    assert confirmed(after)["status"] == "False" and confirmed(after)["reason"] == reason
    assert message in confirmed(after)["message"]
    assert [(k, r) for k, r, _ in result.events] == [("Warning", reason)]
    assert confirm(after, NOW).events == [] and confirm(after, NOW).status == {}


def test_a_label_before_the_answer_waits_for_it() -> None:
    result = confirm(body(feedback={"service": "cartservice"}, phase="Diagnosing"), NOW)
    assert result == Confirmation()


@pytest.mark.parametrize("given", ["annotation", "spec"])
def test_removing_the_label_undoes_the_grade(given: str) -> None:
    pod = synthetic()[0].faulty_pod
    obj = body(annotation=f"pod/{pod}") if given == "annotation" else body(feedback={"pod": pod})
    obj = applied(obj, confirm(obj, NOW))
    assert obj["status"]["grade"]["rank"] == 1
    obj["metadata"]["annotations"], obj["spec"] = {}, {"service": "frontend"}  # kubectl annotate fi x-
    obj["metadata"]["generation"] = 2 if given == "spec" else 1
    result = confirm(obj, NOW)
    assert not result.graded and result.status["grade"] is None
    assert [(k, r) for k, r, _ in result.events] == [("Normal", REMOVED)]
    after = applied(obj, result)
    assert "grade" not in after["status"] and after["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert confirmed(after)["status"] == "False" and confirmed(after)["reason"] == REMOVED
    assert confirm(after, NOW) == Confirmation()  # undone once


def test_removing_a_refused_label_clears_the_refusal() -> None:
    obj = body(annotation="svc:oops")
    obj = applied(obj, confirm(obj, NOW))
    obj["metadata"]["annotations"] = {}
    after = applied(obj, confirm(obj, NOW))
    assert confirmed(after)["reason"] == REMOVED


def test_no_label_and_nothing_to_undo_changes_nothing() -> None:
    assert confirm(body(), NOW) == Confirmation()
    lagging = body(generation=2)  # e.g. an empty feedback edit: only observedGeneration moves
    assert confirm(lagging, NOW) == Confirmation(status={"observedGeneration": 2})
