"""A FailureIncident's spec → the ``Incident`` the engines diagnose.

``IncidentSpec`` (and ``FeedbackSpec`` inside it) is the spec's schema as pydantic models: the
same fields, types, patterns and bounds as the CRD (``crds/failureincidents.yaml``; a unit test
compares the CRD's schema with ``IncidentSpec.model_json_schema()``). The API server already
checks a spec against the CRD; the operator checks it again, because objects written under an
older CRD, and specs read from files, never went through admission. Every problem is reported
at once, in one ``InvalidIncident`` whose message names each field and its value; the CRD's two
CEL rules (a starting point; ``rootSpanID`` needs ``traceID``) are checked here too.

No kopf here: the kube layer calls ``parse_spec`` and ``engine_of`` and turns the error into a
permanent failure.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SkipValidation, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from thinkfl_operator.core import rfc3339
from thinkfl_operator.core.errors import InvalidIncident
from thinkfl_operator.core.models import ENGINES as ENGINES  # noqa: PLC0414 (cli.parser reads it here)
from thinkfl_operator.core.models import EngineName, Incident

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
MAX_NAME = 253  # a Kubernetes object name (spec.feedback's node, service, pod, by)

STARTING_POINT = "a FailureIncident needs spec.traceID or spec.service (spec.time defaults to its creation time)"

_WINDOW = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", re.ASCII)
_SHOWN = 80  # characters of a bad value quoted in a message


def parse_window(text: str) -> float:
    """Seconds in a window like ``90s``, ``15m``, ``1h`` or ``1h30m``; ``ValueError`` if not one."""
    match = _WINDOW.fullmatch(text) if re.fullmatch(WINDOW_PATTERN, text) else None
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration like 90s, 15m or 1h")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def _real_time(text: str) -> str:
    """The CRD's ``format: date-time``: the pattern passed, the date must exist too."""
    try:
        rfc3339.parse(text)
    except ValueError:
        raise PydanticCustomError("date_time", "not an existing date and time") from None
    return text


def _window_bounds(text: str) -> str:
    """The CRD's CEL rule on spec.window: more than 0s, at most 24h."""
    seconds = parse_window(text)
    if seconds <= 0:
        raise PydanticCustomError("window_zero", "not longer than 0s")
    if seconds > MAX_WINDOW_S:
        raise PydanticCustomError("window_long", "longer than 24h")
    return text


HexId = Annotated[str, Field(min_length=1, max_length=32, pattern=HEX_ID_PATTERN)]
_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)


class FeedbackSpec(BaseModel):
    """``spec.feedback``: the real root cause as an SRE recorded it (read by ``feedback.label``)."""

    model_config = _STRICT

    node: str | None = Field(None, max_length=MAX_NAME)
    service: str | None = Field(None, max_length=MAX_NAME)
    pod: str | None = Field(None, max_length=MAX_NAME)
    fault_type: str | None = Field(None, alias="faultType", max_length=63)
    note: str | None = Field(None, max_length=MAX_DESCRIPTION)
    by: str | None = Field(None, max_length=MAX_NAME)


class IncidentSpec(BaseModel):
    """A FailureIncident's ``spec``, field by field as the CRD declares it (camelCase aliases)."""

    model_config = _STRICT

    trace_id: HexId | None = Field(None, alias="traceID")
    root_span_id: HexId | None = Field(None, alias="rootSpanID")
    service: str | None = Field(None, min_length=1, max_length=MAX_SERVICE, pattern=SERVICE_PATTERN)
    time: Annotated[str, Field(max_length=40, pattern=TIME_PATTERN,
                               json_schema_extra={"format": "date-time"}),
                    AfterValidator(_real_time)] | None = None
    window: Annotated[str, Field(min_length=2, max_length=20, pattern=WINDOW_PATTERN),
                      AfterValidator(_window_bounds)] | None = None
    max_traces: int | None = Field(None, alias="maxTraces", ge=1, le=MAX_TRACES)
    target_namespace: str | None = Field(None, alias="targetNamespace", min_length=1,
                                         max_length=MAX_NAMESPACE, pattern=NAMESPACE_PATTERN)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    engine: EngineName | None = None
    #: Checked apart (``feedback.label``): a bad label must not stop the diagnosis.
    feedback: SkipValidation[FeedbackSpec] | None = None

    def incident(self, time_s: float | None) -> Incident:
        return Incident(time_s=time_s, trace_id=(self.trace_id or "").lower(),
                        root_span_id=(self.root_span_id or "").lower(),
                        service=self.service or "",
                        window_s=None if self.window is None else parse_window(self.window),
                        max_traces=self.max_traces, description=self.description or "",
                        namespace=self.target_namespace or "")


def aliases(model: type[BaseModel]) -> tuple[str, ...]:
    """A model's fields as the CRD names them, in order."""
    return tuple(f.alias or name for name, f in model.model_fields.items())


#: The spec's fields as the CRD names them, in the CRD's order.
FIELDS = aliases(IncidentSpec)
#: Spec fields that say nothing about what to diagnose (the SRE's answer, checked by ``feedback``).
NOT_DIAGNOSED = ("feedback",)

#: What a bad value of each field is not (the end of "spec.<field> <value> is not ...").
_EXPECTED = {
    "traceID": "a trace ID (1 to 32 hexadecimal digits)",
    "rootSpanID": "a span ID (1 to 32 hexadecimal digits)",
    "service": "a service name (1 to 253 characters, no leading or trailing spaces)",
    "time": "an RFC 3339 time",
    "window": "a duration like 90s, 15m or 1h",
    "maxTraces": f"a whole number from 1 to {MAX_TRACES}",
    "targetNamespace": ("a namespace name (lowercase letters, digits and '-', at most 63 "
                        "characters)"),
    "engine": f"one of {', '.join(ENGINES)}",
}


def parse_spec(spec: Mapping[str, Any], created: str | None = None) -> Incident:
    """The incident a FailureIncident spec describes.

    ``created`` is the object's ``metadata.creationTimestamp``, the default of ``spec.time``.
    Raises ``InvalidIncident`` naming every bad field and value.
    """
    if not isinstance(spec, Mapping):
        raise InvalidIncident(f"a FailureIncident spec must be an object, not {quoted(spec)}")
    errors: list[ErrorDetails] = []
    try:
        model: IncidentSpec | None = IncidentSpec.model_validate(dict(spec))
    except ValidationError as err:
        model, errors = None, err.errors()
    problems = [spec_problem(e) for e in errors]
    bad = {str(e["loc"][0]) for e in errors if e["loc"]}
    given = {name for name in FIELDS if spec.get(name) is not None and name not in bad}
    if not given & {"traceID", "service"} and not bad & {"traceID", "service", "time"}:
        problems.append(STARTING_POINT)
    if "rootSpanID" in given and "traceID" not in given | bad:
        problems.append(f"spec.rootSpanID {quoted(spec['rootSpanID'])} needs spec.traceID")
    time_s = None
    if "time" in given:
        time_s = rfc3339.parse(spec["time"]).timestamp()
    elif created is not None and "time" not in bad:
        time_s = _created_time(created, problems)
    if problems or model is None:
        raise InvalidIncident("; ".join(problems))
    return model.incident(time_s)


def spec_problem(error: ErrorDetails, model: type[BaseModel] = IncidentSpec,
                 prefix: str = "spec") -> str:
    """One pydantic error as the sentence a person reads: the field, its value, what is wrong."""
    loc = ".".join(str(part) for part in error["loc"])
    where, value, kind = f"{prefix}.{loc}", error["input"], error["type"]
    if kind == "extra_forbidden":
        what = "a FailureIncident" if model is IncidentSpec else "a feedback"
        return f"{where} is not {what} field (known: {', '.join(aliases(model))})"
    if kind == "string_type":
        return f"{where} {quoted(value)} is not a string"
    if kind in ("window_zero", "window_long"):
        return f"{where} {quoted(value)} is {error['msg']}"
    expected = _EXPECTED.get(loc) if model is IncidentSpec else None
    if expected is not None:
        return f"{where} {quoted(value)} is not {expected}"
    if kind == "string_too_long":
        limit = error.get("ctx", {}).get("max_length")
        return f"{where} is {len(value)} characters long; at most {limit} are allowed"
    return f"{where} {quoted(value)}: {error['msg']}"


def engine_of(spec: Mapping[str, Any], default: str) -> str:
    """``spec.engine``, or ``default`` (the operator's setting) when the spec names none."""
    if default not in ENGINES:
        raise ValueError(f"default engine {default!r} is not one of {', '.join(ENGINES)}")
    value = spec.get("engine")
    if value is None:
        return default
    if value not in ENGINES:
        raise InvalidIncident(f"spec.engine {quoted(value)} is not {_EXPECTED['engine']}")
    return str(value)


def _created_time(created: str, problems: list[str]) -> float | None:
    try:
        return rfc3339.parse(created).timestamp()
    except ValueError:
        problems.append(f"metadata.creationTimestamp {quoted(created)} is not an RFC 3339 time")
        return None


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
