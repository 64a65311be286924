"""Pure builders of a FailureIncident's status: a ``Diagnosis`` in, a status patch out.

Each builder returns a dict for a JSON merge patch of ``.status``. Every value fits the CRD
schema (``crds/failureincidents.yaml``): lists capped at their ``maxItems``, strings cut to
their ``maxLength`` (with a trailing …), integers and strings only, never floats, times as
RFC 3339 UTC with ``Z``; and a Diagnosed status stays within ``STATUS_BYTES`` (12 KiB:
``fitted`` cuts the longest texts, then the middle of the path), so a watch event stays small.
``pending``, ``diagnosing`` and ``failed`` set the result fields of an earlier diagnosis to
``None`` so the merge patch removes them (a stale answer must not sit beside a new phase);
``diagnosed`` writes all of them but the record: the full diagnosis record
lives in a ConfigMap the incident owns (``feedback.home``), which the kube layer writes and
names in ``recordConfigMap``; ``record`` (the record itself, as versions before kept it) is only
ever cleared.

Conditions follow the Kubernetes convention: pass the object's current ``conditions`` so a
condition whose status does not change keeps its ``lastTransitionTime``.

No kopf here: the kube layer applies these patches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from thinkfl_operator.core.models import LOGS_PREFIX, Diagnosis, RootCause, Step, Usage
from thinkfl_operator.core.rfc3339 import format_utc

PENDING, DIAGNOSING, DIAGNOSED, FAILED = "Pending", "Diagnosing", "Diagnosed", "Failed"
#: The phases in the order an incident goes through them (the CRD's enum), and the two it ends in.
PHASES = (PENDING, DIAGNOSING, DIAGNOSED, FAILED)
TERMINAL = (DIAGNOSED, FAILED)
#: Reasons besides the phases' own names: of the Diagnosed condition while an engine works and
#: of the Done condition before a retry; of a Failed phase (with ``errors``' BackendUnavailable
#: and the LLM client's LLMUnavailable).
IN_PROGRESS, RETRYING = "InProgress", "Retrying"
INVALID_SPEC, NO_EVIDENCE = "InvalidSpec", "NoEvidence"
#: Condition types.
COND_DIAGNOSED, COND_LLM_FALLBACK, COND_LOGS = "Diagnosed", "LLMFallback", "LogEvidence"
#: True in both terminal states (Diagnosed, or Failed for good), False before: what
#: ``kubectl wait --for=condition=Done fi/NAME`` waits for.
COND_DONE = "Done"

# Caps from the CRD schema.
MAX_ROOT_CAUSES = 10
MAX_TRACES = 10
MAX_STEPS = 40
MAX_NOTES = 10
MAX_STAGES = 16
SUMMARY_CHARS = 256
NOTE_CHARS = 256
STEP_SUMMARY_CHARS = 256
ARGUMENTS_CHARS = 512
REASON_CHARS = 512
MESSAGE_CHARS = 1024
NAME_CHARS = 253
TRACE_CHARS = 64
TOOL_CHARS = 64
ENGINE_CHARS = 63

_REASON = re.compile(r"[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?")
_STATUSES = ("True", "False", "Unknown")
#: What a diagnosis writes; the other phases clear them.
RESULT_FIELDS = ("topCause", "summary", "rootCauses", "traces", "steps", "engine", "model",
                 "usage", "notes", "logEvidence", "completedAt", "record", "recordConfigMap",
                 "grade")
MAX_LOG_LINES = 5
LOG_LINE_CHARS = 512
#: Most bytes of a Diagnosed status (compact JSON): with the object's metadata and a spec of
#: ordinary size, a watch event stays under 16 KiB (``fitted``).
STATUS_BYTES = 12 * 1024
SHORTENED = ("status shortened to fit 12 KiB: every step and reason is whole in the diagnosis "
             "record (status.recordConfigMap)")


def diagnosed(diagnosis: Diagnosis, generation: int, started: datetime, completed: datetime,
              *, conditions: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The status of a finished diagnosis (phase Diagnosed)."""
    notes = [_line(n, NOTE_CHARS) for n in diagnosis.notes[:MAX_NOTES]]
    top = diagnosis.top
    conds = set_condition(list(conditions or []), COND_DIAGNOSED, "True", DIAGNOSED,
                          _diagnosed_message(diagnosis), generation, completed)
    conds = _fallback_condition(conds, diagnosis.fallback_reason, generation, completed)
    conds = _logs_condition(conds, diagnosis, generation, completed)
    conds = set_condition(conds, COND_DONE, "True", DIAGNOSED, "the root causes are in status",
                          generation, completed)
    return fitted({
        "phase": DIAGNOSED,
        "observedGeneration": generation,
        "conditions": conds,
        "topCause": _cut(_name(top), NAME_CHARS) if top else "",
        "summary": summary_line(diagnosis),
        "rootCauses": [root_cause(rc) for rc in diagnosis.root_causes[:MAX_ROOT_CAUSES]],
        "traces": [_cut(t, TRACE_CHARS) for t in _unique(diagnosis.traces)[:MAX_TRACES]],
        "steps": step_entries(diagnosis.steps),
        "engine": _cut(diagnosis.engine, ENGINE_CHARS),
        "model": _cut(diagnosis.model, NAME_CHARS),
        "usage": usage_entry(diagnosis.usage, (completed - started).total_seconds()),
        "notes": notes,
        "logEvidence": [_line(x, LOG_LINE_CHARS) for x in diagnosis.log_evidence[:MAX_LOG_LINES]],
        "startedAt": format_utc(started),
        "completedAt": format_utc(completed),
    })


def fitted(status: dict[str, Any], limit: int = STATUS_BYTES) -> dict[str, Any]:
    """``status`` within ``limit`` bytes of compact JSON: the longest texts are cut, then steps
    in the middle of the path are left out (their numbers show the gap), in ``_SHRINKS``'
    order, until it fits; a note says so. Nothing is lost: the diagnosis record (its
    ConfigMap) keeps every step and reason whole."""
    if _bytes(status) <= limit:
        return status
    notes = status["notes"][: MAX_NOTES - 1]
    status["notes"] = [*notes, SHORTENED]
    for shrink in _SHRINKS:
        shrink(status)
        if _bytes(status) <= limit:
            break
    return status


def _texts(key: str, limit: int) -> Callable[[dict[str, Any]], None]:
    """Cut the strings ``status[key]`` to ``limit`` characters (the shortening note kept)."""
    def shrink(status: dict[str, Any]) -> None:
        status[key] = [t if t == SHORTENED else _cut(t, limit) for t in status[key]]
    return shrink


def _fields(key: str, limit: int, *names: str) -> Callable[[dict[str, Any]], None]:
    """Cut the fields ``names`` of each entry of ``status[key]`` to ``limit`` characters."""
    def shrink(status: dict[str, Any]) -> None:
        for entry in status[key]:
            for name in names:
                if name in entry:
                    entry[name] = _cut(entry[name], limit)
    return shrink


def _first_steps(count: int) -> Callable[[dict[str, Any]], None]:
    """Keep the first ``count - 1`` steps and the last (the final answer)."""
    def shrink(status: dict[str, Any]) -> None:
        steps = status["steps"]
        if len(steps) > count:
            status["steps"] = steps[: count - 1] + steps[-1:]
    return shrink


def _bytes(status: dict[str, Any]) -> int:
    return len(json.dumps(status, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def diagnosing(generation: int, started: datetime, *,
               conditions: Sequence[dict[str, Any]] | None = None,
               attempts: int | None = None, reason: str = IN_PROGRESS,
               message: str = "the incident is being diagnosed") -> dict[str, Any]:
    """The status while an engine works (phase Diagnosing, Diagnosed Unknown/``reason``); a
    retry says why and when in ``message`` (reason ``Retrying``)."""
    conds = set_condition(list(conditions or []), COND_DIAGNOSED, "Unknown", reason,
                          message, generation, started)
    conds = set_condition(conds, COND_DONE, "False", DIAGNOSING, "the incident is being diagnosed",
                          generation, started)
    patch = _cleared(DIAGNOSING, generation, conds, attempts)
    patch["startedAt"] = format_utc(started)
    return patch


def pending(generation: int, message: str = "waiting to be diagnosed", *,
            conditions: Sequence[dict[str, Any]] | None = None,
            now: datetime | None = None, reason: str = PENDING) -> dict[str, Any]:
    """The status of an incident not yet started (phase Pending, Diagnosed Unknown/``reason``)."""
    conds = set_condition(list(conditions or []), COND_DIAGNOSED, "Unknown", reason,
                          message, generation, now or _now())
    conds = set_condition(conds, COND_DONE, "False", PENDING, "waiting to be diagnosed",
                          generation, now or _now())
    patch = _cleared(PENDING, generation, conds, None)
    patch["startedAt"] = None
    return patch


def failed(reason: str, message: str, generation: int, retryable: bool, *,
           conditions: Sequence[dict[str, Any]] | None = None, now: datetime | None = None,
           attempts: int | None = None) -> dict[str, Any]:
    """The status of a diagnosis that could not finish (phase Failed, Diagnosed False).

    ``reason`` is CamelCase: InvalidSpec, BackendUnavailable, NoEvidence, LLMUnavailable, ….
    A retryable failure says so in its message and has no ``completedAt`` (it is not over)."""
    moment = now or _now()
    text = f"{_line(message, MESSAGE_CHARS)}; will retry" if retryable else message
    conds = set_condition(list(conditions or []), COND_DIAGNOSED, "False", reason, text,
                          generation, moment)
    conds = set_condition(conds, COND_DONE, "False" if retryable else "True",
                          RETRYING if retryable else FAILED, text, generation, moment)
    patch = _cleared(FAILED, generation, conds, attempts)
    patch["summary"] = _line(f"{reason}: {message}", SUMMARY_CHARS)
    patch["completedAt"] = None if retryable else format_utc(moment)
    return patch


def set_condition(conditions: list[dict[str, Any]], type: str, status: str, reason: str,
                  message: str, generation: int, now: datetime) -> list[dict[str, Any]]:
    """A new list with condition ``type`` set; the others are kept as they are, in order.

    ``lastTransitionTime`` moves to ``now`` only when the condition is new or its status
    changes. ``ValueError`` for a status other than True/False/Unknown or a reason that is not
    CamelCase (both are programming errors)."""
    if status not in _STATUSES:
        raise ValueError(f"condition status {status!r} is not one of {', '.join(_STATUSES)}")
    if _REASON.fullmatch(reason) is None:
        raise ValueError(f"condition reason {reason!r} is not CamelCase")
    out = [dict(c) for c in conditions]
    old = next((c for c in out if c.get("type") == type), None)
    kept = old.get("lastTransitionTime") if old and old.get("status") == status else None
    entry = {
        "type": type,
        "status": status,
        "reason": reason,
        "message": _line(message, MESSAGE_CHARS),
        "lastTransitionTime": str(kept) if kept else format_utc(now),
        "observedGeneration": generation,
    }
    if old is None:
        out.append(entry)
    else:
        out[out.index(old)] = entry
    return out


def summary_line(diagnosis: Diagnosis) -> str:
    """``service (pod): reason`` of the top cause in one line of at most 256 characters."""
    top = diagnosis.top
    if top is None:
        return "no root cause found"
    name = _name(top)
    head = f"{name} ({top.pod})" if top.pod and top.pod != name else name
    return _line(f"{head}: {top.reason}" if top.reason.strip() else head, SUMMARY_CHARS)


def root_cause(rc: RootCause) -> dict[str, Any]:
    """One ranked candidate; empty names are left out."""
    out: dict[str, Any] = {"rank": max(1, min(int(rc.rank), MAX_ROOT_CAUSES))}
    for key, value in (("service", rc.service), ("pod", rc.pod), ("node", rc.node)):
        if value:
            out[key] = _cut(value, NAME_CHARS)
    if rc.reason.strip():
        out["reason"] = _line(rc.reason, REASON_CHARS)
    out["score"] = max(0, min(int(rc.score), 100))
    return out


def step_entries(steps: Sequence[Step]) -> list[dict[str, Any]]:
    """The diagnostic path: at most 40 steps, the first 39 and the last (the final answer)."""
    numbered = list(enumerate(steps, start=1))
    if len(numbered) > MAX_STEPS:
        numbered = numbered[: MAX_STEPS - 1] + numbered[-1:]
    return [{
        "step": number,
        "tool": _cut(step.tool, TOOL_CHARS),
        "arguments": _cut(compact_json(step.arguments), ARGUMENTS_CHARS),
        "summary": _line(step.summary, STEP_SUMMARY_CHARS),
    } for number, step in numbered]


def usage_entry(usage: Usage, seconds: float) -> dict[str, Any]:
    """Counts as integers, the wall-clock ``seconds`` as a two-decimal string and in ms."""
    seconds = max(0.0, seconds)
    stages = list(usage.seconds.items())[:MAX_STAGES]
    return {
        "llmCalls": int(usage.llm_calls),
        "promptTokens": int(usage.prompt_tokens),
        "completionTokens": int(usage.completion_tokens),
        "toolCalls": int(usage.tool_calls),
        "seconds": f"{seconds:.2f}",
        "milliseconds": round(seconds * 1000),
        "stageMilliseconds": {str(k): max(0, round(v * 1000)) for k, v in stages},
    }


def compact_json(value: Any) -> str:
    """JSON without spaces (non-ASCII kept as is; anything unknown as its string)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


# helpers ----------------------------------------------------------------------------------

def _cleared(phase: str, generation: int, conditions: list[dict[str, Any]],
             attempts: int | None) -> dict[str, Any]:
    patch: dict[str, Any] = {"phase": phase, "observedGeneration": generation,
                             "conditions": conditions}
    patch.update(dict.fromkeys(RESULT_FIELDS))
    if attempts is not None:
        patch["attempts"] = attempts
    return patch


def _fallback_condition(conditions: list[dict[str, Any]], reason: str | None, generation: int,
                        now: datetime) -> list[dict[str, Any]]:
    """LLMFallback True with the reason when the deterministic engine answered for the model;
    False when it did not and an earlier diagnosis had set it; absent otherwise."""
    if reason is not None:
        return set_condition(conditions, COND_LLM_FALLBACK, "True", "DeterministicEngineAnswered",
                             reason, generation, now)
    if any(c.get("type") == COND_LLM_FALLBACK for c in conditions):
        return set_condition(conditions, COND_LLM_FALLBACK, "False", "NoFallback",
                             "the configured engine answered", generation, now)
    return conditions


def _logs_condition(conditions: list[dict[str, Any]], diagnosis: Diagnosis, generation: int,
                    now: datetime) -> list[dict[str, Any]]:
    """LogEvidence True (LogsRead) or False (LogsUnavailable, the diagnosis went on without
    logs); absent when no log source is configured, or False (NoLogSource) when an earlier
    diagnosis of the incident had one."""
    if diagnosis.logs_read is None:
        if any(c.get("type") == COND_LOGS for c in conditions):
            return set_condition(conditions, COND_LOGS, "False", "NoLogSource",
                                 "no log source is configured: diagnosed without logs", generation, now)
        return conditions
    about = next((n for n in diagnosis.notes if n.startswith(LOGS_PREFIX)), "")
    if diagnosis.logs_read:
        return set_condition(conditions, COND_LOGS, "True", "LogsRead",
                             about[len(LOGS_PREFIX):].strip() or "log lines read", generation, now)
    problems = [n for n in diagnosis.notes if "log" in n.lower() and n != about]
    message = "; ".join(problems) or "the log source had too little to compare"
    return set_condition(conditions, COND_LOGS, "False", "LogsUnavailable",
                         f"diagnosed without logs: {message}", generation, now)


def _diagnosed_message(diagnosis: Diagnosis) -> str:
    count = len(diagnosis.root_causes)
    top = diagnosis.top
    if top is None:
        return f"the {diagnosis.engine} engine found no root cause"
    return (f"{count} candidate{'s' if count != 1 else ''} ranked by the {diagnosis.engine} "
            f"engine; most likely: {_name(top)}")


def _name(rc: RootCause) -> str:
    return rc.service or rc.pod or rc.node or "unknown"


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def _line(text: str, limit: int) -> str:
    """One line (whitespace runs become one space), cut to ``limit`` characters."""
    return _cut(" ".join(str(text).split()), limit)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _now() -> datetime:
    return datetime.now(UTC)


#: What ``fitted`` gives up, in order: long reasons, notes and log lines, long step texts, then
#: steps in the middle of the path, then shorter texts again.
_SHRINKS: tuple[Callable[[dict[str, Any]], None], ...] = (
    _fields("rootCauses", 256, "reason"),
    _texts("notes", 160), _texts("logEvidence", 160),
    _fields("steps", 160, "arguments", "summary"),
    _first_steps(20),
    _fields("rootCauses", 128, "reason"), _fields("steps", 96, "arguments", "summary"),
    _texts("notes", 96), _texts("logEvidence", 96),
    _first_steps(10),
    _fields("rootCauses", 64, "reason"), _fields("steps", 48, "arguments", "summary"),
)

