"""The SRE's label: the real root cause of one FailureIncident, read and checked.

Two ways to give it:

* ``spec.feedback`` = ``{node?, service?, pod?, faultType?, note?, by?}``, the full form;
* the annotation ``thinkfl.dev/root-cause: service/NAME`` (or ``pod/NAME``, ``node/NAME``), one
  ``kubectl annotate`` away for the common case.

``feedback_of`` reads whichever is there. When both are, the spec wins: it is the declared form
the API server checked against the CRD schema, and it carries what the annotation cannot (fault
type, note, author); a stale annotation must not silently override it. ``validate`` then checks
the names against the incident's observed topology and completes the label (a pod brings its
service and node). Every error is an ``InvalidFeedback`` naming the field and the value.
``spec.feedback`` is read through its model (``incident.spec.FeedbackSpec``, the CRD's schema).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from thinkfl_operator.core.errors import UserInputError
from thinkfl_operator.core.models import Topology
from thinkfl_operator.incident.spec import FeedbackSpec, quoted, spec_problem

ANNOTATION = "thinkfl.dev/root-cause"
SPEC_FIELD = "spec.feedback"
#: spec.feedback keys → Feedback attributes.
SPEC_KEYS = {f.alias or name: name for name, f in FeedbackSpec.model_fields.items()}

_FORM = re.compile(r"\s*(service|pod|node)\s*/\s*([^\s/]+)\s*", re.IGNORECASE)
_LISTED = 8  # names listed in a message before "…"


class InvalidFeedback(UserInputError):
    """A root-cause label that cannot be used: unknown form, no cause named, or a name the
    incident never observed. Not retryable: the SRE has to correct it."""


@dataclass(frozen=True, slots=True)
class Feedback:
    """The real root cause as an SRE gave it (any of node, service, pod), and notes about it."""

    node: str = ""
    service: str = ""
    pod: str = ""
    fault_type: str = ""
    note: str = ""
    by: str = ""
    origin: str = field(default=SPEC_FIELD, compare=False)  # where it was read (for messages)

    def where(self, kind: str) -> str:
        """How a message names the label's ``kind`` field: ``spec.feedback.pod``, or the
        annotation followed by the kind."""
        return f"{self.origin}.{kind}" if self.origin == SPEC_FIELD else f"{self.origin} {kind}"


def from_spec(value: Mapping[str, Any] | None) -> Feedback | None:
    """The label in ``spec.feedback``; None when there is none."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidFeedback(f"{SPEC_FIELD} must be an object like {{service: NAME}}, "
                              f"not {quoted(value)}")
    try:
        spec = FeedbackSpec.model_validate(dict(value))
    except ValidationError as err:
        raise InvalidFeedback("; ".join(spec_problem(e, FeedbackSpec, SPEC_FIELD)
                                        for e in err.errors())) from None
    fields = {name: text.strip() for name, text in spec.model_dump(exclude_none=True).items()}
    return _named(Feedback(**fields))


def from_annotation(text: str) -> Feedback:
    """The label in the ``thinkfl.dev/root-cause`` annotation: ``service/NAME``, ``pod/NAME``
    or ``node/NAME`` (spaces around the parts are ignored)."""
    match = _FORM.fullmatch(text)
    if match is None:
        raise InvalidFeedback(f"{ANNOTATION} {quoted(text)} is not service/NAME, pod/NAME or node/NAME")
    return Feedback(origin=ANNOTATION, **{match[1].lower(): match[2]})


def feedback_of(spec: Mapping[str, Any], annotations: Mapping[str, str]) -> Feedback | None:
    """The incident's label: ``spec.feedback`` if given, else the annotation, else None."""
    label = from_spec(spec.get("feedback"))
    if label is not None:
        return label
    text = annotations.get(ANNOTATION)
    return None if text is None else from_annotation(text)


def validate(feedback: Feedback, topology: Topology) -> Feedback:
    """The label checked against the observed topology and completed from it.

    A pod brings its service and its node; a service or a node brings nothing more (a service
    runs many pods, a node hosts many services). Names the incident never observed, and names
    that contradict the pod's, raise ``InvalidFeedback``.
    """
    _named(feedback)
    service, node = feedback.service, feedback.node
    if feedback.pod:
        _known(feedback, "pod", feedback.pod, topology.pods)
        service = _agree(feedback, "service", service, topology.pods[feedback.pod])
        node = _agree(feedback, "node", node, topology.nodes.get(feedback.pod, ""))
    if service:
        _known(feedback, "service", service, topology.services)
    if node:
        _known(feedback, "node", node, set(topology.nodes.values()))
    return replace(feedback, service=service, node=node)


def _named(feedback: Feedback) -> Feedback:
    if not (feedback.node or feedback.service or feedback.pod):
        raise InvalidFeedback(f"{feedback.origin} names no root cause: give "
                              f"{feedback.where('service')}, {feedback.where('pod')} "
                              f"or {feedback.where('node')}")
    return feedback


def _known(feedback: Feedback, kind: str, name: str, names: Collection[str]) -> None:
    if name in names:
        return
    known = sorted(n for n in names if n)
    listing = f"{kind}s: {', '.join(known[:_LISTED])}{'…' if len(known) > _LISTED else ''}" \
        if known else f"no {kind}s were observed"
    message = (f"{feedback.where(kind)} {quoted(name)} is not in this incident's observed "
               f"topology ({listing})")
    close = difflib.get_close_matches(name, known, n=1)
    raise InvalidFeedback(message + (f"; did you mean {quoted(close[0])}?" if close else ""))


def _agree(feedback: Feedback, kind: str, given: str, observed: str) -> str:
    """The pod's observed ``kind`` (service or node), unless the label says otherwise."""
    if given and observed and given != observed:
        raise InvalidFeedback(f"{feedback.where(kind)} {quoted(given)} contradicts "
                              f"{feedback.where('pod')} {quoted(feedback.pod)}, whose {kind} "
                              f"is {quoted(observed)}")
    return given or observed
