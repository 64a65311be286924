"""The SRE's feedback on a diagnosed incident, without kopf: grade the answer, say so.

The label comes from ``spec.feedback`` or the ``thinkfl.dev/root-cause`` annotation
(``feedback.label``); the names it gives are checked against the topology the diagnosis
observed (kept in the diagnosis record: its ConfigMap, or ``status.record`` of an older version,
``feedback.home``); the answer the record keeps (every candidate: ``status.rootCauses`` shows
only the first ones) is graded with the multi-factor grader. The diagnosis is never re-run. Returns the status patch (``grade`` and the
``Confirmed`` condition) and the Event to post, or nothing when nothing changed, so replaying
the same object (a restart, a status echo) neither patches nor posts again. When the label is
removed, a grade or Confirmed condition left from it is undone: no grade, ``Confirmed`` False
with reason ``FeedbackRemoved``, and an Event. A change of the feedback that leaves the grade as
it is (a note, the fault type) still moves ``observedGeneration``: only the feedback changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from thinkfl_operator.core.models import RootCause
from thinkfl_operator.feedback.grading import causes_of, grade_answer, grade_status
from thinkfl_operator.feedback.label import Feedback, InvalidFeedback, feedback_of, validate
from thinkfl_operator.feedback.record import InvalidRecord, decode_record, topology_of
from thinkfl_operator.incident.spec import diagnosis_digest
from thinkfl_operator.incident.status import DIAGNOSED, FAILED, set_condition
from thinkfl_operator.kube.runner import generation_of

COND_CONFIRMED = "Confirmed"
#: Reason of the Confirmed condition once the label is removed (the grade goes with it).
REMOVED = "FeedbackRemoved"
REMOVED_MESSAGE = ("the root-cause feedback was removed (spec.feedback and the "
                   "thinkfl.dev/root-cause annotation): the answer is no longer graded")


@dataclass
class Confirmation:
    """What the feedback gives: ``rank`` and ``engine`` when graded; the patch and Event only
    when they change the object."""

    graded: bool = False
    rank: int | None = None
    engine: str = ""
    status: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


def confirm(body: Mapping[str, Any], now: datetime | None = None, *,
            record: Callable[[], str] | None = None) -> Confirmation:
    """Grade the incident's answer against its label (see the module docstring). ``record``
    gives the record's text, called only when a label is to be checked (default:
    ``status.record``); it raises ``InvalidRecord`` when there is none."""
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    status = body.get("status") or {}
    try:
        label = feedback_of(spec, meta.get("annotations") or {})
    except InvalidFeedback as exc:
        return _refused(body, "InvalidFeedback", str(exc), now)
    if label is None:
        return _removed(body, now)
    if status.get("phase") == FAILED:
        return _refused(body, "NotDiagnosed",
                        "the incident has no diagnosis to grade (phase Failed)", now)
    if status.get("phase") != DIAGNOSED:
        return Confirmation()  # graded when the diagnosis is written
    try:
        text = record() if record is not None else str(status.get("record") or "")
        decoded = decode_record(text)
        label = validate(label, topology_of(decoded))
    except InvalidRecord as exc:
        return _refused(body, "NoRecord", f"the diagnosis record cannot be read: {exc}", now)
    except InvalidFeedback as exc:
        return _refused(body, "InvalidFeedback", str(exc), now)
    return _graded(body, label, now, causes_of(decoded["answer"]) or _causes(status))


def _graded(body: Mapping[str, Any], label: Feedback, now: datetime | None,
            causes: list[RootCause]) -> Confirmation:
    status = body.get("status") or {}
    engine = str(status.get("engine") or "")
    graded = grade_answer(causes, label)
    grade = grade_status(graded)
    message = _message(label, graded.rank, engine, grade["score"])
    out = Confirmation(graded=True, rank=graded.rank, engine=engine)
    changed = status.get("grade") != grade or not _condition_is(status, "True", message)
    if changed or _lagging(body):  # a new note or author alone still moves observedGeneration
        out.status = _patch(body, "True", "FeedbackGraded", message, now)
        out.status["grade"] = grade
    if changed:
        out.events.append(("Normal", "Confirmed", message))
    return out


def _refused(body: Mapping[str, Any], reason: str, message: str,
             now: datetime | None) -> Confirmation:
    return _undone(body, reason, message, "Warning", now,
                   changed=not _condition_is(body.get("status") or {}, "False", message))


def _removed(body: Mapping[str, Any], now: datetime | None) -> Confirmation:
    """No label any more: a grade or a Confirmed condition left from one is undone, once."""
    status = body.get("status") or {}
    confirmed = [c for c in status.get("conditions") or [] if c.get("type") == COND_CONFIRMED]
    if status.get("grade") is not None or any(c.get("reason") != REMOVED for c in confirmed):
        return _undone(body, REMOVED, REMOVED_MESSAGE, "Normal", now, changed=True)
    if confirmed:  # undone already; only a later generation may still be to observe
        return _undone(body, REMOVED, REMOVED_MESSAGE, "Normal", now, changed=False)
    generation = generation_of(body.get("metadata") or {})
    return Confirmation(status={"observedGeneration": generation} if _lagging(body) else {})


def _undone(body: Mapping[str, Any], reason: str, message: str, kind: str,
            now: datetime | None, changed: bool) -> Confirmation:
    """Confirmed False with ``reason`` and no grade; an Event when that changes the object."""
    out = Confirmation()
    changed = changed or (body.get("status") or {}).get("grade") is not None
    if changed or _lagging(body):
        out.status = _patch(body, "False", reason, message, now)
        out.status["grade"] = None  # a stale grade must not sit beside a refused label
    if changed:
        out.events.append((kind, reason, message))
    return out


def _lagging(body: Mapping[str, Any]) -> bool:
    """Only the feedback changed since the diagnosis, and observedGeneration does not say so."""
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    status = body.get("status") or {}
    return status.get("phase") in (DIAGNOSED, FAILED) \
        and status.get("specDigest") == diagnosis_digest(spec) \
        and status.get("observedGeneration") != generation_of(meta)


def _patch(body: Mapping[str, Any], state: str, reason: str, message: str,
           now: datetime | None) -> dict[str, Any]:
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    status = body.get("status") or {}
    generation = generation_of(meta)
    conditions = set_condition(list(status.get("conditions") or []), COND_CONFIRMED, state,
                               reason, message, generation, now or datetime.now(UTC))
    patch: dict[str, Any] = {"conditions": conditions}
    if status.get("specDigest") == diagnosis_digest(spec):
        patch["observedGeneration"] = generation  # only the feedback changed since
    return patch


def _condition_is(status: Mapping[str, Any], state: str, message: str) -> bool:
    return any(c.get("type") == COND_CONFIRMED and c.get("status") == state
               and c.get("message") == message for c in status.get("conditions") or [])


def _causes(status: Mapping[str, Any]) -> list[RootCause]:
    return [RootCause(rank=int(c.get("rank") or 0), node=str(c.get("node") or ""),
                      service=str(c.get("service") or ""), pod=str(c.get("pod") or ""),
                      reason=str(c.get("reason") or ""), score=int(c.get("score") or 0))
            for c in status.get("rootCauses") or []]


def _message(label: Feedback, rank: int | None, engine: str, score: int) -> str:
    truth = label.service or label.pod or label.node
    where = f"ranked {rank}" if rank is not None else "not in the answer"
    who = f" (confirmed by {label.by})" if label.by else ""
    return f"true cause {truth} {where} by the {engine or 'unknown'} engine; grade {score}/100{who}"
