"""Alertmanager webhook payloads → FailureIncident manifests (pure: no Kubernetes, no HTTP).

Alertmanager's ``webhook_config`` posts a group of alerts (payload ``version`` "4")::

    {"version": "4", "groupKey": ..., "status": "firing", "receiver": ..., "groupLabels": {...},
     "commonLabels": {...}, "commonAnnotations": {...}, "externalURL": ...,
     "alerts": [{"status": "firing", "labels": {...}, "annotations": {...},
                 "startsAt": "2023-02-06T13:08:45.828Z", "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": ..., "fingerprint": "1a30ba71cca2921f"}]}

Each *firing* alert with a usable service label becomes one ``FailureIncident`` whose name comes
from the alert's fingerprint and its ``startsAt`` (``alert-<fingerprint[:16]>-<8 hex digits>``):
Alertmanager re-sends a firing alert every group interval with the same pair, so it maps to the
same resource (the caller turns the second create's 409 Conflict into "exists"), while the same
alert firing again after it resolved starts anew and gets an incident of its own. The
fingerprint is also a label (``thinkfl.dev/fingerprint``) to find every incident of one alert.
Resolved alerts are only counted; alerts without a service label are skipped with a reason.

Values are cut to what the CRD and the API server accept, so an alert is never refused for its
size or its characters: the service is one line of at most 253 characters, the description at
most 2000, and a generator URL longer than ``MAX_URL`` is left out (a cut URL is a wrong one).
A payload holds at most ``max_alerts`` alerts read; the rest are counted as skipped.

The payload and each firing alert are read through pydantic models (``AlertmanagerPayload``,
``FiringAlert``: only the fields the intake uses, the others ignored); the first problem is
raised as a ``BadAlertPayload`` naming the field, as ``alerts[1].labels is not an object (got
array)``. A resolved alert is only counted, so nothing else of it is checked.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from thinkfl_operator.core import rfc3339
from thinkfl_operator.core.errors import UserInputError
from thinkfl_operator.core.models import ENGINES
from thinkfl_operator.incident.spec import MAX_DESCRIPTION, MAX_SERVICE

API_VERSION = "thinkfl.dev/v1alpha1"
KIND = "FailureIncident"
#: Longest generator URL kept as an annotation (Prometheus links are a few hundred characters).
MAX_URL = 4096
#: Alerts read from one payload (Alertmanager's own ``max_alerts`` cuts the same way).
MAX_ALERTS = 1000

LABEL_FINGERPRINT = "thinkfl.dev/fingerprint"
LABEL_SOURCE = "thinkfl.dev/source"
LABEL_ALERTNAME = "thinkfl.dev/alertname"
ANNOTATION_URL = "thinkfl.dev/alert-url"
SOURCE = "alertmanager"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9._-]+")


class BadAlertPayload(UserInputError):
    """The webhook body is not an Alertmanager payload; the message names what is wrong."""


class AlertmanagerPayload(BaseModel):
    """A webhook body, as far as the intake reads it (the alerts are read one by one)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    alerts: list[Any]
    status: Any = None  # the group's, the default of an alert's own


class FiringAlert(BaseModel):
    """One firing alert of a payload, in the order its fields are checked."""

    model_config = ConfigDict(extra="ignore", strict=True)

    status: Literal["firing"]
    labels: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None
    starts_at: str = Field(alias="startsAt")
    fingerprint: str | None = None
    generator_url: Any = Field(None, alias="generatorURL")


@dataclass(frozen=True)
class AlertIntakeConfig:
    """How alerts become incidents.

    ``service_labels`` are tried in order and the first non-empty one names the service;
    ``namespace`` receives the incidents; ``engine`` is written to each incident's spec
    (empty: left out, so the operator's default engine applies).
    """

    service_labels: tuple[str, ...] = ("service", "service_name", "app", "job")
    namespace: str = "default"
    engine: str = ""
    #: The label naming where the application's pods run (spec.targetNamespace); "" = none.
    namespace_label: str = "namespace"
    #: Alerts read from one payload; those past it are skipped (and counted).
    max_alerts: int = MAX_ALERTS

    def __post_init__(self) -> None:
        labels = tuple(self.service_labels)  # a list from settings is accepted too
        object.__setattr__(self, "service_labels", labels)
        if not labels or not all(isinstance(x, str) and x.strip() for x in labels):
            raise UserInputError(
                f"alert service labels must be non-empty label names, got {list(labels)!r}"
            )
        if not _DNS_LABEL.match(self.namespace):
            raise UserInputError(f"alert namespace {self.namespace!r} is not a DNS-1123 label")
        if self.max_alerts < 1:
            raise UserInputError(f"alert max_alerts must be at least 1, got {self.max_alerts}")
        if self.engine and self.engine not in ENGINES:
            raise UserInputError(
                f"alert engine {self.engine!r} is not one of {', '.join(ENGINES)} (or empty)"
            )


@dataclass
class IntakeResult:
    """What one payload gives: manifests to create, skipped alerts (with why), resolved count."""

    incidents: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    resolved: int = 0


def incidents_from_payload(payload: Any, cfg: AlertIntakeConfig) -> IntakeResult:
    """One FailureIncident manifest per distinct firing alert of an Alertmanager payload.

    Raises ``BadAlertPayload`` (naming the field) when the payload is not an object, has no
    ``alerts`` list, or an alert is not an object, has an unknown status, non-object labels or
    annotations, or a firing alert's ``startsAt`` is not an RFC 3339 time.
    """
    try:
        body = AlertmanagerPayload.model_validate(payload)
    except ValidationError as err:
        raise BadAlertPayload(_payload_problem(err.errors()[0], payload)) from None
    alerts = body.alerts

    result = IntakeResult()
    if len(alerts) > cfg.max_alerts:
        result.skipped.append(f"{len(alerts) - cfg.max_alerts} alerts past the first {cfg.max_alerts} "
                              f"of this payload were not read (alerts.maxAlerts)")
        alerts = alerts[: cfg.max_alerts]
    seen: set[str] = set()
    for index, raw in enumerate(alerts):
        where = f"alerts[{index}]"
        if isinstance(raw, dict) and raw.get("status", body.status) == "resolved":
            result.resolved += 1
            continue
        try:
            alert = FiringAlert.model_validate(
                {**raw, "status": raw.get("status", body.status)} if isinstance(raw, dict) else raw)
        except ValidationError as err:
            raise BadAlertPayload(_alert_problem(err.errors()[0], where)) from None
        labels = _strings(alert.labels)
        time_text = _rfc3339_utc(alert.starts_at, f"{where}.startsAt")
        fingerprint = _fingerprint(alert.fingerprint, labels)
        name = incident_name(fingerprint, time_text)
        if name in seen:
            continue
        seen.add(name)
        service = next((found for k in cfg.service_labels
                        if (found := one_line(labels.get(k, ""), MAX_SERVICE))), "")
        if not service:
            alertname = labels.get("alertname", "").strip()
            who = f"alert {alertname!r}" if alertname else "alert"
            result.skipped.append(
                f"{who} (fingerprint {fingerprint}): no service label "
                f"(none of {', '.join(cfg.service_labels)} is set)"
            )
            continue
        spec: dict[str, Any] = {"service": service, "time": time_text,
                                "description": _description(_strings(alert.annotations))}
        if cfg.engine:
            spec["engine"] = cfg.engine
        target = labels.get(cfg.namespace_label, "").strip() if cfg.namespace_label else ""
        if _DNS_LABEL.match(target):
            spec["targetNamespace"] = target
        result.incidents.append(_manifest(name, spec, alert, labels, fingerprint, cfg))
    return result


def _manifest(name: str, spec: dict[str, Any], alert: FiringAlert, labels: dict[str, str],
              fingerprint: str, cfg: AlertIntakeConfig) -> dict[str, Any]:
    """The FailureIncident of one alert: ``spec``, and labels and annotations to find it by."""
    alertname = labels.get("alertname", "").strip()
    meta_labels = {LABEL_FINGERPRINT: label_value(fingerprint), LABEL_SOURCE: SOURCE}
    if label_value(alertname):
        meta_labels[LABEL_ALERTNAME] = label_value(alertname)
    meta_annotations: dict[str, str] = {}
    url = alert.generator_url
    if isinstance(url, str) and url and len(url) <= MAX_URL and url.isprintable():
        meta_annotations[ANNOTATION_URL] = url
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": cfg.namespace, "labels": meta_labels,
                     "annotations": meta_annotations},
        "spec": spec,
    }


def incident_name(fingerprint: str, starts_at: str) -> str:
    """``alert-<first 16 hex digits>-<8 hex digits of startsAt>``, lowercased; a non-hex
    fingerprint is hashed first. One name per firing of one alert."""
    head = (fingerprint[:16].lower() if _HEX.match(fingerprint)
            else hashlib.sha256(fingerprint.encode()).hexdigest()[:16])
    return f"alert-{head}-{hashlib.sha256(starts_at.encode()).hexdigest()[:8]}"


def one_line(text: str, limit: int) -> str:
    """``text`` on one line (every run of whitespace, newlines included, one space), at most
    ``limit`` characters, without leading or trailing spaces."""
    return " ".join(text.split())[:limit].rstrip()


def label_value(text: str) -> str:
    """``text`` as a Kubernetes label value: [A-Za-z0-9._-], ≤ 63 chars, alphanumeric ends."""
    cleaned = _LABEL_VALUE_BAD.sub("-", text)[:63]
    return cleaned.strip("._-")


def _fingerprint(raw: str | None, labels: dict[str, str]) -> str:
    """The alert's fingerprint, or (when absent) a stable hash of its label set."""
    if raw and raw.strip():
        return raw.strip()
    canonical = "\x00".join(f"{k}\x00{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _description(annotations: dict[str, str]) -> str:
    """``summary`` and ``description`` (the non-empty, distinct ones), one per line, ≤ 2000."""
    parts: list[str] = []
    for key in ("summary", "description"):
        text = annotations.get(key, "").strip()
        if text and text not in parts:
            parts.append(text)
    joined = "\n".join(parts)
    if len(joined) > MAX_DESCRIPTION:
        joined = joined[: MAX_DESCRIPTION - 1] + "…"
    return joined


def _strings(raw: dict[str, Any] | None) -> dict[str, str]:
    """A label or annotation map; absent/null is empty, non-string values are dropped."""
    return {k: v for k, v in (raw or {}).items() if isinstance(v, str)}


def _rfc3339_utc(raw: str, where: str) -> str:
    """An RFC 3339 time (any offset, up to nanoseconds) as UTC ``...Z`` (microseconds kept)."""
    try:
        moment = rfc3339.parse(raw.strip()).astimezone(UTC)
    except rfc3339.NotRFC3339:
        raise BadAlertPayload(f"{where} {raw!r} is not an RFC 3339 time") from None
    except (ValueError, OverflowError) as exc:
        raise BadAlertPayload(f"{where} {raw!r} is not a valid time: {exc}") from None
    if moment.year < 1970:  # Go's zero time "0001-01-01T00:00:00Z" means "unset"
        raise BadAlertPayload(f"{where} {raw!r} is not set (before 1970)")
    return rfc3339.format_utc(moment, fraction=True)


def _payload_problem(error: ErrorDetails, payload: Any) -> str:
    if not error["loc"]:
        return f"payload is not a JSON object (got {_json_type(payload)})"
    if error["type"] == "missing":
        return "payload has no 'alerts' field"
    return f"'alerts' is not a list (got {_json_type(error['input'])})"


def _alert_problem(error: ErrorDetails, where: str) -> str:
    """The first problem of an alert, as ``alerts[1].labels is not an object (got array)``."""
    field_ = ".".join([where, *(str(part) for part in error["loc"])])
    value, kind = error["input"], error["type"]
    if kind == "literal_error":
        return f"{field_} is {value!r}, not 'firing' or 'resolved'"
    if kind == "missing" or (value is None and error["loc"]):
        return f"{field_} is missing"
    noun = "a string" if kind == "string_type" else "an object"
    return f"{field_} is not {noun} (got {_json_type(value)})"


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
