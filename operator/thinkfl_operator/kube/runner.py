"""The operator's use case for one FailureIncident, without kopf: decide, diagnose, report.

Returns the status to write and the Events to post; the kopf handler only applies them. A spec
that cannot be used is Failed at once with the reason; no evidence is Failed (nothing will
appear by retrying); an unreachable backend or LLM asks for a retry until the tries run out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from thinkfl_operator.diagnosis import diagnose
from thinkfl_operator.errors import BackendError, NoEvidence, UserInputError
from thinkfl_operator.feedback.record import build_record, encode_record
from thinkfl_operator.incident_spec import diagnosis_digest, engine_of, parse_spec
from thinkfl_operator.incident_status import diagnosed, failed
from thinkfl_operator.models import Diagnosis, Incident
from thinkfl_operator.settings import Settings
from thinkfl_operator.telemetry.store import Store

TERMINAL = ("Diagnosed", "Failed")
REDIAGNOSE = "thinkfl.dev/rediagnose"
#: Annotation recording the rediagnose value last handled.
REDIAGNOSED = "thinkfl.dev/rediagnosed"

StoreFactory = Callable[[Incident, Settings], Store]


@dataclass
class Outcome:
    status: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    retry: str = ""  # non-empty: a retryable failure, try again later
    diagnosis: Diagnosis | None = None  # the answer, when there is one
    seconds: float = 0.0  # wall-clock time of this try
    failure: str = ""  # the Failed reason (InvalidSpec, NoEvidence, BackendUnavailable)
    backend: str = ""  # the backend that failed (jaeger, tempo, prometheus, llm), if one did


def generation_of(meta: Mapping[str, Any]) -> int:
    return int(meta.get("generation") or 1)


def needs_diagnosis(meta: Mapping[str, Any], spec: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """False when the incident was already diagnosed (or failed) for this spec and request.

    The spec is compared by digest (``status.specDigest``) so that feedback, which bumps the
    generation, does not ask for a new diagnosis; a status without a digest falls back to the
    generation."""
    if status.get("phase") not in TERMINAL:
        return True
    digest = status.get("specDigest")
    if digest and digest != diagnosis_digest(spec):
        return True
    if not digest and int(status.get("observedGeneration") or 0) != generation_of(meta):
        return True
    annotations = meta.get("annotations") or {}
    return bool(annotations.get(REDIAGNOSE, "") != annotations.get(REDIAGNOSED, ""))


def run(body: Mapping[str, Any], settings: Settings, open_store: StoreFactory, attempt: int) -> Outcome:
    """Diagnose one incident: the status to write, the Events, or a request to retry."""
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    generation = generation_of(meta)
    started = datetime.now(UTC)
    try:
        incident = parse_spec(spec, meta.get("creationTimestamp"))
        engine = engine_of(spec, settings.engine)
        result = diagnose(open_store(incident, settings), incident, engine, settings)
    except UserInputError as exc:
        return _failed("InvalidSpec", str(exc), generation, spec)
    except NoEvidence as exc:
        return _failed("NoEvidence", str(exc), generation, spec)
    except BackendError as exc:
        backend = str(getattr(exc, "backend", "") or "unknown").lower()
        if exc.retryable and attempt < settings.operator.retries:
            return Outcome(retry=str(exc), backend=backend)
        out = _failed("BackendUnavailable", str(exc), generation, spec)
        out.backend = backend
        return out
    completed = datetime.now(UTC)
    out = Outcome(status=diagnosed(result, generation, started, completed), diagnosis=result,
                  seconds=(completed - started).total_seconds())
    out.status["specDigest"] = diagnosis_digest(spec)
    out.status["record"] = encode_record(build_record(result, incident))
    if result.fallback_reason is not None:
        out.events.append(("Warning", "LLMFallback", result.fallback_reason))
    top = result.top
    message = f"top cause {top.service or top.node} ({top.pod or '-'}), score {top.score}" if top else "no cause"
    out.events.append(("Normal", "Diagnosed", f"{message}; engine {result.engine}"))
    return out


def _failed(reason: str, message: str, generation: int, spec: Mapping[str, Any]) -> Outcome:
    status = failed(reason, message, generation, retryable=False)
    status["specDigest"] = diagnosis_digest(spec)
    return Outcome(status=status, events=[("Warning", "Failed", f"{reason}: {message}")],
                   failure=reason)
