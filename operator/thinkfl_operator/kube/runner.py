"""The operator's use case for one FailureIncident, without kopf: decide, diagnose, report.

Returns the status to write and the Events to post; the kopf handler only applies them.

* A spec that cannot be used is Failed at once (``InvalidSpec``), as is a configuration that
  cannot serve it (``InvalidConfiguration``), data with nothing to diagnose (``NoEvidence``), a
  diagnosis past its budget (``DeadlineExceeded``) and a bug (``InternalError``): retrying would
  not change the answer.
* An unreachable backend or LLM asks for a retry until the tries run out, then Failed
  (``BackendUnavailable``, ``LLMUnavailable``); a backend that refuses the request is Failed at
  once (``NotFound``, ``BackendRejected``), as is a model that gave no usable answer
  (``NoAnswer``).
* Engine ``auto`` with the model unreachable answers at once with the deterministic engine and
  marks the answer provisional (condition LLMFallback, reason ``ModelRetrying``): the model is
  asked again on each retry, and the deterministic answer stands after the last one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import structlog

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core import deadline
from thinkfl_operator.core.errors import (
    BackendError,
    DeadlineExceeded,
    InvalidIncident,
    NoEvidence,
    UserInputError,
)
from thinkfl_operator.core.models import Diagnosis, Incident
from thinkfl_operator.engines.diagnose import diagnose
from thinkfl_operator.engines.thinkfl.client import ChatClient
from thinkfl_operator.feedback.record import build_record, encode_record
from thinkfl_operator.incident.spec import diagnosis_digest, engine_of, parse_spec
from thinkfl_operator.incident.status import (
    COND_LLM_FALLBACK,
    DIAGNOSED,
    DIAGNOSING,
    PENDING,
    TERMINAL,
    diagnosed,
    diagnosing,
    failed,
    pending,
    set_condition,
)
from thinkfl_operator.telemetry.store import Store

log = structlog.get_logger(__name__)

REDIAGNOSE = "thinkfl.dev/rediagnose"
#: Annotation recording the rediagnose value last handled.
REDIAGNOSED = "thinkfl.dev/rediagnosed"
#: LLMFallback reason of a deterministic answer given while the model is asked again.
MODEL_RETRYING = "ModelRetrying"
MAX_DELAY_S = 600.0

StoreFactory = Callable[[Incident, Settings], Store]


@dataclass
class Outcome:
    status: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    retry: str = ""  # non-empty: try again after ``delay_s`` (``status`` is written meanwhile)
    delay_s: float = 0.0
    diagnosis: Diagnosis | None = None  # the final answer, when there is one
    seconds: float = 0.0  # wall-clock time of this try
    failure: str = ""  # the Failed reason (InvalidSpec, NoEvidence, BackendUnavailable, ...)
    backend: str = ""  # the backend that failed (jaeger, tempo, prometheus, llm), if one did
    record: str = ""  # the encoded diagnosis record: for the ConfigMap the incident owns


def generation_of(meta: Mapping[str, Any]) -> int:
    return int(meta.get("generation") or 1)


def request_key(meta: Mapping[str, Any]) -> tuple[str, int, str]:
    """What one diagnosis answers: this object (its uid), this generation, this rediagnose."""
    uid = meta.get("uid") or f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"
    return str(uid), generation_of(meta), str((meta.get("annotations") or {}).get(REDIAGNOSE) or "")


def needs_diagnosis(meta: Mapping[str, Any], spec: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """False when the incident was already diagnosed (or failed) for this spec and request.

    The spec is compared by digest (``status.specDigest``) so that feedback, which bumps the
    generation, does not ask for a new diagnosis; a status without a digest falls back to the
    generation. A provisional answer (the model is being asked again) still needs one."""
    if status.get("phase") not in TERMINAL or provisional(status):
        return True
    digest = status.get("specDigest")
    if digest and digest != diagnosis_digest(spec):
        return True
    if not digest and int(status.get("observedGeneration") or 0) != generation_of(meta):
        return True
    annotations = meta.get("annotations") or {}
    asked = annotations.get(REDIAGNOSE)
    return asked is not None and asked != annotations.get(REDIAGNOSED)


def provisional(status: Mapping[str, Any]) -> bool:
    """A Diagnosed status given by the deterministic engine while the model is asked again."""
    return status.get("phase") == DIAGNOSED and any(
        c.get("type") == COND_LLM_FALLBACK and c.get("reason") == MODEL_RETRYING
        for c in status.get("conditions") or [])


def starting(meta: Mapping[str, Any], spec: Mapping[str, Any], status: Mapping[str, Any],
             queued: bool = False) -> dict[str, Any] | None:
    """The status to show before a diagnosis starts: phase Diagnosing, or Pending when it has
    to wait for a worker (``queued``). None when there is nothing to diagnose, or the incident
    already shows that phase or a provisional answer."""
    if not needs_diagnosis(meta, spec, status) or provisional(status):
        return None
    phase = PENDING if queued else DIAGNOSING
    if status.get("phase") == phase:
        return None
    generation, now = generation_of(meta), datetime.now(UTC)
    if queued:
        return pending(generation, "waiting for a free worker: every one is diagnosing",
                       conditions=status.get("conditions") or [], now=now, reason="Queued")
    return diagnosing(generation, now, conditions=status.get("conditions") or [])


def retry_delay(settings: Settings, retry: int) -> float:
    """Seconds before try ``retry + 1``: the first delay, doubling, capped at 10 minutes."""
    return float(min(settings.operator.retry_delay_s * 2**retry, MAX_DELAY_S))


def run(body: Mapping[str, Any], settings: Settings, open_store: StoreFactory, attempt: int,
        chat: ChatClient | None = None) -> Outcome:
    """Diagnose one incident (try ``attempt``, from 0): the status, the Events, or a retry.

    The store ``open_store`` gives is this incident's and is closed when the diagnosis ends;
    ``chat`` is the process's client of the LLM endpoint (None: the engine opens its own)."""
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    generation = generation_of(meta)
    status = body.get("status") or {}
    started = datetime.now(UTC)
    try:
        incident = parse_spec(spec, meta.get("creationTimestamp"))
        engine = engine_of(spec, settings.engine)
    except UserInputError as exc:
        return _failed("InvalidSpec", str(exc), generation, spec)
    # The application's pods run in spec.targetNamespace, else beside the incident.
    incident = replace(incident, namespace=incident.namespace or str(meta.get("namespace") or ""))
    try:
        with deadline.within(settings.operator.deadline_s), \
                _closing(open_store(incident, settings)) as store:
            result = diagnose(store, incident, engine, settings, chat=chat)
    except Exception as exc:  # noqa: BLE001 -- every failure ends in a status; bugs are logged
        out = _unanswered(exc, settings, attempt, meta, spec, status)
        return _kept(out, status, settings, attempt, generation) if provisional(status) else out
    return _answered(result, incident, settings, attempt, started, meta, spec, status)


def lost(body: Mapping[str, Any], settings: Settings, attempt: int, exc: BackendError) -> Outcome:
    """Try ``attempt`` ended outside ``run`` (the worker process running it died): a retry while
    tries are left, else Failed with ``exc``'s reason, as for a backend that failed."""
    meta, spec, status = body.get("metadata") or {}, body.get("spec") or {}, body.get("status") or {}
    out = _unanswered(exc, settings, attempt, meta, spec, status)
    return _kept(out, status, settings, attempt, generation_of(meta)) if provisional(status) else out


@contextlib.contextmanager
def _closing(store: Store) -> Iterator[Store]:
    """``store``, closed (its HTTP sessions) however the diagnosis ends."""
    try:
        yield store
    finally:
        close_quietly(store)


def close_quietly(*clients: object) -> None:
    """``close()`` each client that has one (a store over files has none); a failure to close
    is logged, never raised: the answer or the shutdown it follows stands."""
    for client in clients:
        close = getattr(client, "close", None)
        if close is None:
            continue
        try:
            close()
        except Exception as exc:  # noqa: BLE001 -- closing must not replace the outcome
            log.warning("client not closed", client=type(client).__name__, error=str(exc))


def _unanswered(exc: Exception, settings: Settings, attempt: int, meta: Mapping[str, Any],
                spec: Mapping[str, Any], status: Mapping[str, Any]) -> Outcome:
    generation = generation_of(meta)
    if isinstance(exc, InvalidIncident):
        return _failed("InvalidSpec", str(exc), generation, spec)
    if isinstance(exc, UserInputError):
        return _failed("InvalidConfiguration", str(exc), generation, spec)
    if isinstance(exc, NoEvidence):
        return _failed("NoEvidence", str(exc), generation, spec)
    if isinstance(exc, DeadlineExceeded):
        return _failed("DeadlineExceeded", str(exc), generation, spec)
    if isinstance(exc, BackendError):
        return _backend_failure(exc, settings, attempt, generation, spec, status)
    # A bug: say so on the object instead of retrying forever.
    log.error("diagnosis crashed", incident=f"{meta.get('namespace')}/{meta.get('name')}",
              exc_info=exc)
    return _failed("InternalError", f"{type(exc).__name__}: {exc} (an operator bug; set the "
                                    f"{REDIAGNOSE} annotation to try again)", generation, spec)


def _kept(out: Outcome, status: Mapping[str, Any], settings: Settings, attempt: int,
          generation: int) -> Outcome:
    """A try after a provisional answer failed on its own: the deterministic answer shown stays
    (the model is asked again while tries are left, else the answer is final)."""
    tries = settings.operator.retries + 1
    why = out.retry or (out.events[0][2] if out.events else out.failure)
    now = datetime.now(UTC)
    if out.retry:
        message = (f"the last try failed ({why}); the model is asked again in {out.delay_s:g} s "
                   f"(try {attempt + 2} of {tries})")
        reason = MODEL_RETRYING
    else:
        message = f"the model could not be asked again ({why}); the deterministic answer stands"
        reason = "DeterministicEngineAnswered"
    conditions = set_condition(list(status.get("conditions") or []), COND_LLM_FALLBACK, "True",
                               reason, message, generation, now)
    kept = Outcome(status={"conditions": conditions, "attempts": attempt + 1}, retry=out.retry,
                   delay_s=out.delay_s, backend=out.backend)
    if not out.retry:
        kept.events = [("Warning", "LLMFallback", message)]
    return kept


def _answered(result: Diagnosis, incident: Incident, settings: Settings, attempt: int,
              started: datetime, meta: Mapping[str, Any], spec: Mapping[str, Any],
              status: Mapping[str, Any]) -> Outcome:
    completed = datetime.now(UTC)
    generation = generation_of(meta)
    tries = settings.operator.retries + 1
    out = Outcome(status=diagnosed(result, generation, started, completed,
                                   conditions=status.get("conditions") or []),
                  seconds=(completed - started).total_seconds())
    out.status["specDigest"] = diagnosis_digest(spec)
    out.record = encode_record(build_record(result, incident))
    out.status["record"] = None  # an older version's record in the status goes
    out.status["attempts"] = _attempts(attempt)
    retrying = result.llm_unreachable and attempt + 1 < tries
    if retrying:
        out.retry = f"the model is unreachable: {result.fallback_reason}"
        out.delay_s = retry_delay(settings, attempt)
        out.status["conditions"] = set_condition(
            out.status["conditions"], COND_LLM_FALLBACK, "True", MODEL_RETRYING,
            f"{result.fallback_reason}; the model is asked again in {out.delay_s:g} s "
            f"(try {attempt + 2} of {tries})", generation, completed)
    else:
        out.diagnosis = result
    if result.llm_unreachable:
        out.backend = "llm"
    if not result.llm_unreachable or attempt == 0:
        out.events = _answer_events(result)
    elif not retrying:  # the last try, and the model is still unreachable
        still = f"the model is still unreachable after {tries} tries; the deterministic answer stands"
        out.events = [("Warning", "LLMFallback", still)]
    return out


def _answer_events(result: Diagnosis) -> list[tuple[str, str, str]]:
    events = []
    if result.fallback_reason is not None:
        events.append(("Warning", "LLMFallback", result.fallback_reason))
    top = result.top
    message = f"top cause {top.service or top.node} ({top.pod or '-'}), score {top.score}" if top else "no cause"
    events.append(("Normal", "Diagnosed", f"{message}; engine {result.engine}"))
    return events


def _backend_failure(exc: BackendError, settings: Settings, attempt: int, generation: int,
                     spec: Mapping[str, Any], status: Mapping[str, Any]) -> Outcome:
    backend = str(exc.backend or "unknown").lower()
    tries = settings.operator.retries + 1
    if exc.retryable and attempt + 1 < tries:
        delay = retry_delay(settings, attempt)
        message = f"{exc}; try {attempt + 2} of {tries} in {delay:g} s"
        shown = diagnosing(generation, datetime.now(UTC), conditions=status.get("conditions") or [],
                           attempts=attempt + 1, reason="Retrying", message=message)
        return Outcome(status=shown, retry=str(exc), delay_s=delay, backend=backend)
    text = f"{exc} (gave up after {tries} {'try' if tries == 1 else 'tries'})" \
        if exc.retryable else str(exc)
    out = _failed(exc.reason, text, generation, spec)
    out.backend = backend
    out.status["attempts"] = _attempts(attempt)
    return out


def _attempts(attempt: int) -> int | None:
    """``status.attempts`` of a finished diagnosis: the tries made, or none (the field goes)
    when the first one answered."""
    return attempt + 1 if attempt else None


def _failed(reason: str, message: str, generation: int, spec: Mapping[str, Any]) -> Outcome:
    status = failed(reason, message, generation, retryable=False)
    status["specDigest"] = diagnosis_digest(spec)
    return Outcome(status=status, events=[("Warning", "Failed", f"{reason}: {message}")],
                   failure=reason)
