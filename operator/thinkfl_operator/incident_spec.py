"""A FailureIncident's spec → the ``Incident`` the engines diagnose.

The API server already checks the spec against the CRD schema (``crds/failureincidents.yaml``);
this module checks it again with the same patterns and rules (a unit test keeps the patterns
identical), because objects written under an older CRD, and specs read from files, never went
through admission. Every problem is reported at once, in one ``InvalidIncident`` whose message
names each field and its value.

No kopf here: the kube layer calls ``parse_spec`` and ``engine_of`` and turns the error into a
permanent failure.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from thinkfl_operator.errors import InvalidIncident
from thinkfl_operator.models import Incident

ENGINES = ("auto", "thinkfl", "heuristic")

#: The CRD's patterns, word for word.
HEX_ID_PATTERN = r"^[0-9a-fA-F]{1,32}$"
SERVICE_PATTERN = r"^\S(.*\S)?$"
TIME_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
WINDOW_PATTERN = r"^([0-9]{1,5}h)?([0-9]{1,5}m)?([0-9]{1,6}s)?$"
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

MAX_WINDOW_S = 24 * 3600
MAX_TRACES = 10
MAX_DESCRIPTION = 2000
MAX_SERVICE = 253
MAX_NAMESPACE = 63

FIELDS = ("traceID", "rootSpanID", "service", "time", "window", "maxTraces",
          "targetNamespace", "description", "engine", "feedback")
#: Spec fields that say nothing about what to diagnose (the SRE's answer, checked by ``feedback``).
NOT_DIAGNOSED = ("feedback",)
STARTING_POINT = "a FailureIncident needs spec.traceID or spec.service (spec.time defaults to its creation time)"

_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_WINDOW = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", re.ASCII)
_SHOWN = 80  # characters of a bad value quoted in a message


def parse_spec(spec: Mapping[str, Any], created: str | None = None) -> Incident:
    """The incident a FailureIncident spec describes.

    ``created`` is the object's ``metadata.creationTimestamp``, the default of ``spec.time``.
    Raises ``InvalidIncident`` naming every bad field and value.
    """
    if not isinstance(spec, Mapping):
        raise InvalidIncident(f"a FailureIncident spec must be an object, not {quoted(spec)}")
    problems: list[str] = []
    fields = _Fields(spec, problems)
    trace_id = fields.hex_id("traceID", "trace ID")
    root_span_id = fields.hex_id("rootSpanID", "span ID")
    service = fields.string("service", SERVICE_PATTERN, MAX_SERVICE,
                            "a service name (1 to 253 characters, no leading or trailing spaces)")
    time_s = fields.time()
    window_s = fields.window()
    max_traces = fields.max_traces()
    namespace = fields.string("targetNamespace", NAMESPACE_PATTERN, MAX_NAMESPACE,
                              "a namespace name (lowercase letters, digits and '-', at most 63 "
                              "characters)")
    description = fields.description()
    fields.engine()
    problems.extend(_unknown_fields(spec))
    if not trace_id and not service and not fields.failed("traceID", "service", "time"):
        problems.append(STARTING_POINT)
    if root_span_id and not trace_id and not fields.failed("traceID"):
        problems.append(f"spec.rootSpanID {quoted(spec['rootSpanID'])} needs spec.traceID")
    if time_s is None and created is not None:
        time_s = _created_time(created, problems)
    if problems:
        raise InvalidIncident("; ".join(problems))
    return Incident(time_s=time_s, trace_id=trace_id, root_span_id=root_span_id,
                    service=service, window_s=window_s, max_traces=max_traces,
                    description=description, namespace=namespace)


def engine_of(spec: Mapping[str, Any], default: str) -> str:
    """``spec.engine``, or ``default`` (the operator's setting) when the spec names none."""
    if default not in ENGINES:
        raise ValueError(f"default engine {default!r} is not one of {', '.join(ENGINES)}")
    value = spec.get("engine")
    if value is None:
        return default
    if value not in ENGINES:
        raise InvalidIncident(_bad_engine(value))
    return str(value)


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 time with a zone (``Z`` or ``±hh:mm``); ``ValueError`` when it is not one.

    Fractions finer than microseconds are cut; the result is aware (its own offset)."""
    if re.fullmatch(TIME_PATTERN, text) is None:
        raise ValueError(f"{text!r} is not an RFC 3339 time")
    match = _TIME.fullmatch(text)
    if match is None:  # unreachable: TIME_PATTERN is stricter
        raise ValueError(f"{text!r} is not an RFC 3339 time")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    micro = int((match[7] or "0").ljust(6, "0")[:6])
    zone = UTC
    if match[8] != "Z":
        offset = timedelta(hours=int(match[10]), minutes=int(match[11]))
        zone = timezone(-offset if match[9] == "-" else offset)
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)


def parse_window(text: str) -> float:
    """Seconds in a window like ``90s``, ``15m``, ``1h`` or ``1h30m``; ``ValueError`` if not one."""
    match = _WINDOW.fullmatch(text) if re.fullmatch(WINDOW_PATTERN, text) else None
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration like 90s, 15m or 1h")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


class _Fields:
    """Reads one spec field at a time, adding a sentence to ``problems`` for each bad one."""

    def __init__(self, spec: Mapping[str, Any], problems: list[str]) -> None:
        self.spec, self.problems = spec, problems
        self._bad: set[str] = set()

    def failed(self, *names: str) -> bool:
        return any(name in self._bad for name in names)

    def _text(self, name: str) -> str | None:
        value = self.spec.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            self._problem(name, f"spec.{name} {quoted(value)} is not a string")
            return None
        return value

    def _problem(self, name: str, sentence: str) -> None:
        self._bad.add(name)
        self.problems.append(sentence)

    def hex_id(self, name: str, what: str) -> str:
        value = self._text(name)
        if value is None:
            return ""
        if re.fullmatch(HEX_ID_PATTERN, value) is None:
            self._problem(name, f"spec.{name} {quoted(value)} is not a {what} "
                                "(1 to 32 hexadecimal digits)")
            return ""
        return value.lower()

    def string(self, name: str, pattern: str, limit: int, what: str) -> str:
        value = self._text(name)
        if value is None:
            return ""
        if len(value) > limit or re.fullmatch(pattern, value) is None:
            self._problem(name, f"spec.{name} {quoted(value)} is not {what}")
            return ""
        return value

    def time(self) -> float | None:
        value = self._text("time")
        if value is None:
            return None
        try:
            return parse_rfc3339(value).timestamp()
        except ValueError:
            self._problem("time", f"spec.time {quoted(value)} is not an RFC 3339 time")
            return None

    def window(self) -> float | None:
        value = self._text("window")
        if value is None:
            return None
        try:
            seconds = parse_window(value)
        except ValueError:
            self._problem("window", f"spec.window {quoted(value)} is not a duration "
                                    "like 90s, 15m or 1h")
            return None
        if seconds <= 0:
            self._problem("window", f"spec.window {quoted(value)} is not longer than 0s")
            return None
        if seconds > MAX_WINDOW_S:
            self._problem("window", f"spec.window {quoted(value)} is longer than 24h")
            return None
        return seconds

    def max_traces(self) -> int | None:
        value = self.spec.get("maxTraces")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TRACES:
            self._problem("maxTraces", f"spec.maxTraces {quoted(value)} is not a whole number "
                                       f"from 1 to {MAX_TRACES}")
            return None
        return value

    def description(self) -> str:
        value = self._text("description")
        if value is None:
            return ""
        if len(value) > MAX_DESCRIPTION:
            self._problem("description", f"spec.description is {len(value)} characters long; "
                                         f"at most {MAX_DESCRIPTION} are allowed")
            return ""
        return value

    def engine(self) -> None:
        value = self.spec.get("engine")
        if value is not None and value not in ENGINES:
            self._problem("engine", _bad_engine(value))


def _unknown_fields(spec: Mapping[str, Any]) -> list[str]:
    return [f"spec.{key} is not a FailureIncident field (known: {', '.join(FIELDS)})"
            for key in spec if key not in FIELDS]


def _created_time(created: str, problems: list[str]) -> float | None:
    try:
        return parse_rfc3339(created).timestamp()
    except ValueError:
        problems.append(f"metadata.creationTimestamp {quoted(created)} is not an RFC 3339 time")
        return None


def _bad_engine(value: object) -> str:
    return f"spec.engine {quoted(value)} is not one of {', '.join(ENGINES)}"


def quoted(value: object) -> str:
    """A value as a message quotes it: strings in double quotes, numbers bare, long ones cut."""
    if isinstance(value, str) and len(value) > _SHOWN:
        value = value[: _SHOWN - 1] + "…"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def diagnosis_digest(spec: Mapping[str, Any]) -> str:
    """A short digest of what the spec asks to diagnose (``NOT_DIAGNOSED`` fields left out), so
    a status can tell whether it answers the current spec."""
    asked = {k: v for k, v in spec.items() if k not in NOT_DIAGNOSED}
    text = json.dumps(asked, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
