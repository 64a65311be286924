"""Pure builders of a FailureIncident's status: a ``Diagnosis`` in, a status patch out.

Each builder returns a dict for a JSON merge patch of ``.status``. Every value fits the CRD
schema (``crds/failureincidents.yaml``): lists capped at their ``maxItems``, strings cut to
their ``maxLength`` (with a trailing …), integers and strings only, never floats, times as
RFC 3339 UTC with ``Z``; and a Diagnosed status stays within ``STATUS_BYTES`` (12 KiB:
``fitted`` cuts the longest texts and lines, then the candidates after the third), so a watch
event stays small.
``pending``, ``diagnosing`` and ``failed`` set the result fields of an earlier diagnosis to
``None`` so the merge patch removes them (a stale answer must not sit beside a new phase);
``diagnosed`` writes all of them but the record: the full diagnosis record
lives in a ConfigMap the incident owns (``feedback.home``), which the kube layer writes and
names in ``recordConfigMap``; ``record`` (the record itself, as versions before kept it) and
``steps`` (the path as versions before wrote it) are only ever cleared.

What a person reads in ``kubectl describe`` is kept short (the README's demo incident: 69
lines), as the record has it all:
``rootCauses`` are the candidates with a positive score, padded with the next ones up to the
three ``print_results`` demands (``shown_causes``); ``path`` is the diagnostic path one line per
tool call, its first and last calls when there are more than ``MAX_PATH`` (``path_lines``);
``usage`` holds the counts (``startedAt`` and ``completedAt`` say the time; the seconds of each
stage are in the record); ``logEvidence`` is absent when the logs showed nothing; and the LogEvidence condition
is there when the logs could not be used (or an earlier diagnosis set it): what was read is said
in the Diagnosed condition's message and in the path's ``read_logs`` line.

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
#: The fewest candidates an answer has (print_results' contract; ``ranking`` pads to it).
MIN_ROOT_CAUSES = 3
MAX_TRACES = 10
#: Most lines of ``path``: the first ``PATH_HEAD`` calls (the walk's start), one line for the
#: calls left out, and the last ``PATH_TAIL`` (the last checks, the logs read, the final answer).
PATH_HEAD, PATH_TAIL = 2, 2
MAX_PATH = PATH_HEAD + 1 + PATH_TAIL
PATH_LINE_CHARS = 160
PATH_ARGUMENTS_CHARS = 64
MAX_NOTES = 10
SUMMARY_CHARS = 256
NOTE_CHARS = 256
REASON_CHARS = 512
MESSAGE_CHARS = 1024
NAME_CHARS = 253
TRACE_CHARS = 64
ENGINE_CHARS = 63

_REASON = re.compile(r"[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?")
_STATUSES = ("True", "False", "Unknown")
#: What a diagnosis writes; the other phases clear them.
RESULT_FIELDS = ("topCause", "summary", "rootCauses", "traces", "path", "steps", "engine", "model",
                 "usage", "notes", "logEvidence", "completedAt", "record", "recordConfigMap",
                 "grade")
MAX_LOG_LINES = 5
LOG_LINE_CHARS = 512
#: Most bytes of a Diagnosed status (compact JSON): with the object's metadata and a spec of
#: ordinary size, a watch event stays under 16 KiB (``fitted``).
STATUS_BYTES = 12 * 1024
SHORTENED = ("status shortened to fit 12 KiB: every step and candidate is whole in the diagnosis "
             "record (status.recordConfigMap)")


def diagnosed(diagnosis: Diagnosis, generation: int, started: datetime, completed: datetime,
              *, conditions: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The status of a finished diagnosis (phase Diagnosed)."""
    notes = [_line(n, NOTE_CHARS) for n in _status_notes(diagnosis)[:MAX_NOTES]]
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
        "rootCauses": [root_cause(rc) for rc in shown_causes(diagnosis.root_causes)],
        "traces": [_cut(t, TRACE_CHARS) for t in _unique(diagnosis.traces)[:MAX_TRACES]],
        "path": path_lines(diagnosis.steps),
        "steps": None,  # as versions before wrote it: the path is in ``path``, whole in the record
        "engine": _cut(diagnosis.engine, ENGINE_CHARS),
        "model": _cut(diagnosis.model, NAME_CHARS) or None,  # none when no model answered
        "usage": usage_entry(diagnosis.usage),
        "notes": notes or None,
        # none (not []) when the logs showed nothing: kubectl describe shows an empty list too
        "logEvidence": [_line(x, LOG_LINE_CHARS) for x in diagnosis.log_evidence[:MAX_LOG_LINES]] or None,
        "startedAt": format_utc(started),
        "completedAt": format_utc(completed),
    })


def fitted(status: dict[str, Any], limit: int = STATUS_BYTES) -> dict[str, Any]:
    """``status`` within ``limit`` bytes of compact JSON: the longest texts and path lines are
    cut, then the candidates after the third left out, in ``_SHRINKS``' order, until it fits; a
    note says so. Nothing is lost: the diagnosis record (its ConfigMap) keeps every step and
    candidate whole."""
    if _bytes(status) <= limit:
        return status
    notes = (status["notes"] or [])[: MAX_NOTES - 1]
    status["notes"] = [*notes, SHORTENED]
    for shrink in _SHRINKS:
        shrink(status)
        if _bytes(status) <= limit:
            break
    return status


def _texts(key: str, limit: int) -> Callable[[dict[str, Any]], None]:
    """Cut the strings ``status[key]`` to ``limit`` characters (the shortening note kept)."""
    def shrink(status: dict[str, Any]) -> None:
        if status[key]:
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


def _causes(count: int) -> Callable[[dict[str, Any]], None]:
    """Keep the first ``count`` root causes (never fewer than the three an answer has)."""
    def shrink(status: dict[str, Any]) -> None:
        status["rootCauses"] = status["rootCauses"][: max(count, MIN_ROOT_CAUSES)]
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


def shown_causes(root_causes: Sequence[RootCause]) -> list[RootCause]:
    """The candidates ``status.rootCauses`` shows: those with a positive score, then the next
    ones up to ``MIN_ROOT_CAUSES`` (at most ``MAX_ROOT_CAUSES``). The ranking is by score, so
    they are its first entries; the record keeps every candidate."""
    scored = sum(1 for rc in root_causes if rc.score > 0)
    return list(root_causes[: min(max(scored, MIN_ROOT_CAUSES), MAX_ROOT_CAUSES)])


def path_lines(steps: Sequence[Step]) -> list[str]:
    """The diagnostic path, one line per tool call: ``N. tool(name=value, …) → summary`` (the
    arguments cut to 64 characters, the summary's middle left out past 160 in all). More than
    ``MAX_PATH`` calls: the first ``PATH_HEAD``, one line naming the calls left out, then the
    last ``PATH_TAIL``."""
    numbered = list(enumerate(steps, start=1))
    if len(numbered) <= MAX_PATH:
        return [_path_line(n, step) for n, step in numbered]
    head, tail = numbered[:PATH_HEAD], numbered[-PATH_TAIL:]
    first, last = head[-1][0] + 1, tail[0][0] - 1
    gap = (f"{first}–{last}. … {last - first + 1} calls more: every call with its whole answer "
           "is in the diagnosis record (status.recordConfigMap)")
    return [*(_path_line(n, s) for n, s in head), gap, *(_path_line(n, s) for n, s in tail)]


def _path_line(number: int, step: Step) -> str:
    arguments = ", ".join(f"{k}={v if isinstance(v, str) else compact_json(v)}"
                          for k, v in step.arguments.items())
    head = f"{number}. {step.tool}({_cut(arguments, PATH_ARGUMENTS_CHARS)}) →"
    summary = _cut_middle(" ".join(str(step.summary).split()), max(16, PATH_LINE_CHARS - len(head) - 1))
    return _cut(" ".join(head.split()) + " " + summary, PATH_LINE_CHARS)


def _cut_middle(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, its middle left out (…): a summary's end, such as
    the slowest span's duration, says as much as its start."""
    if len(text) <= limit:
        return text
    start = limit // 2
    return text[:start] + "…" + text[len(text) - (limit - start - 1):]


def usage_entry(usage: Usage) -> dict[str, Any]:
    """Counts as integers (the tokens only when the model was asked). The time is not shown
    twice: ``startedAt`` and ``completedAt`` say it, and the record keeps each stage's seconds
    (``usage`` in the record the kube layer writes); versions before wrote ``seconds``,
    ``stages`` and ``milliseconds`` here, which a diagnosis now clears."""
    out: dict[str, Any] = {"llmCalls": int(usage.llm_calls)}
    if usage.llm_calls or usage.prompt_tokens or usage.completion_tokens:
        out["promptTokens"] = int(usage.prompt_tokens)
        out["completionTokens"] = int(usage.completion_tokens)
    out["toolCalls"] = int(usage.tool_calls)
    return out


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
    """LogEvidence False when the diagnosis went on without logs: LogsUnavailable (the source
    failed or had too little), or NoLogSource when an earlier diagnosis of the incident had a
    source. Logs read: True (LogsRead) when an earlier diagnosis had set the condition, absent
    otherwise (the Diagnosed condition's message and the ``read_logs`` step say what was read).
    Absent when no log source is configured."""
    earlier = any(c.get("type") == COND_LOGS for c in conditions)
    if diagnosis.logs_read is None:
        if earlier:
            return set_condition(conditions, COND_LOGS, "False", "NoLogSource",
                                 "no log source is configured: diagnosed without logs", generation, now)
        return conditions
    about = _logs_read(diagnosis)
    if diagnosis.logs_read:
        if earlier:
            return set_condition(conditions, COND_LOGS, "True", "LogsRead", about, generation, now)
        return conditions
    problems = [n for n in diagnosis.notes if "log" in n.lower() and not n.startswith(LOGS_PREFIX)]
    message = "; ".join(problems) or "the log source had too little to compare"
    return set_condition(conditions, COND_LOGS, "False", "LogsUnavailable",
                         f"diagnosed without logs: {message}", generation, now)


def _diagnosed_message(diagnosis: Diagnosis) -> str:
    """How many candidates, which engine, the most likely; and the log lines read, if any."""
    count = len(diagnosis.root_causes)
    top = diagnosis.top
    if top is None:
        text = f"the {diagnosis.engine} engine found no root cause"
    else:
        text = (f"{count} candidate{'s' if count != 1 else ''} ranked by the {diagnosis.engine} "
                f"engine; most likely: {_name(top)}")
    return f"{text}; logs: {_logs_read(diagnosis)}" if diagnosis.logs_read else text


def _logs_read(diagnosis: Diagnosis) -> str:
    """What the log source gave (its ``logs:`` note), e.g. ``54510 lines from loki, 3.5 min of
    window against 54 min of history``."""
    about = next((n for n in diagnosis.notes if n.startswith(LOGS_PREFIX)), "")
    return about[len(LOGS_PREFIX):].strip() or "log lines read"


def _status_notes(diagnosis: Diagnosis) -> list[str]:
    """The notes but the one on the logs read, which the Diagnosed condition says already."""
    if diagnosis.logs_read:
        return [n for n in diagnosis.notes if not n.startswith(LOGS_PREFIX)]
    return list(diagnosis.notes)


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


#: What ``fitted`` gives up, in order: long reasons, notes and log lines, then the path's lines
#: and the candidates after the third, then shorter texts again.
_SHRINKS: tuple[Callable[[dict[str, Any]], None], ...] = (
    _fields("rootCauses", 256, "reason"),
    _texts("notes", 160), _texts("logEvidence", 160),
    _texts("path", 96), _causes(5),
    _fields("rootCauses", 128, "reason"),
    _texts("notes", 96), _texts("logEvidence", 96),
    _fields("rootCauses", 64, "reason"), _texts("path", 48), _causes(MIN_ROOT_CAUSES),
)

