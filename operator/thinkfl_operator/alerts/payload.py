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
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from thinkfl_operator.errors import UserInputError

API_VERSION = "thinkfl.dev/v1alpha1"
KIND = "FailureIncident"
ENGINES = ("auto", "thinkfl", "heuristic")
#: The CRD's limits (crds/failureincidents.yaml): spec.description and spec.service.
MAX_DESCRIPTION = 2000
MAX_SERVICE = 253
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
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


class BadAlertPayload(UserInputError):
    """The webhook body is not an Alertmanager payload; the message names what is wrong."""


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
    if not isinstance(payload, dict):
        raise BadAlertPayload(f"payload is not a JSON object (got {_json_type(payload)})")
    if "alerts" not in payload:
        raise BadAlertPayload("payload has no 'alerts' field")
    alerts = payload["alerts"]
    if not isinstance(alerts, list):
        raise BadAlertPayload(f"'alerts' is not a list (got {_json_type(alerts)})")
    group_status = payload.get("status")

    result = IntakeResult()
    if len(alerts) > cfg.max_alerts:
        result.skipped.append(f"{len(alerts) - cfg.max_alerts} alerts past the first {cfg.max_alerts} "
                              f"of this payload were not read (alerts.maxAlerts)")
        alerts = alerts[: cfg.max_alerts]
    seen: set[str] = set()
    for index, alert in enumerate(alerts):
        where = f"alerts[{index}]"
        if not isinstance(alert, dict):
            raise BadAlertPayload(f"{where} is not an object (got {_json_type(alert)})")
        status = alert.get("status", group_status)
        if status == "resolved":
            result.resolved += 1
            continue
        if status != "firing":
            raise BadAlertPayload(f"{where}.status is {status!r}, not 'firing' or 'resolved'")
        labels = _string_map(alert.get("labels"), f"{where}.labels")
        annotations = _string_map(alert.get("annotations"), f"{where}.annotations")
        time_text = _rfc3339_utc(alert.get("startsAt"), f"{where}.startsAt")
        fingerprint = _fingerprint(alert.get("fingerprint"), labels, f"{where}.fingerprint")
        name = incident_name(fingerprint, time_text)
        if name in seen:
            continue
        seen.add(name)
        alertname = labels.get("alertname", "").strip()

        service = next((found for k in cfg.service_labels
                        if (found := one_line(labels.get(k, ""), MAX_SERVICE))), "")
        if not service:
            who = f"alert {alertname!r}" if alertname else "alert"
            result.skipped.append(
                f"{who} (fingerprint {fingerprint}): no service label "
                f"(none of {', '.join(cfg.service_labels)} is set)"
            )
            continue

        meta_labels = {LABEL_FINGERPRINT: label_value(fingerprint), LABEL_SOURCE: SOURCE}
        if label_value(alertname):
            meta_labels[LABEL_ALERTNAME] = label_value(alertname)
        meta_annotations: dict[str, str] = {}
        url = alert.get("generatorURL")
        if isinstance(url, str) and url and len(url) <= MAX_URL and url.isprintable():
            meta_annotations[ANNOTATION_URL] = url
        spec: dict[str, Any] = {
            "service": service,
            "time": time_text,
            "description": _description(annotations),
        }
        if cfg.engine:
            spec["engine"] = cfg.engine
        target = labels.get(cfg.namespace_label, "").strip() if cfg.namespace_label else ""
        if _DNS_LABEL.match(target):
            spec["targetNamespace"] = target
        result.incidents.append({
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {
                "name": name,
                "namespace": cfg.namespace,
                "labels": meta_labels,
                "annotations": meta_annotations,
            },
            "spec": spec,
        })
    return result


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


def _fingerprint(raw: Any, labels: dict[str, str], where: str) -> str:
    """The alert's fingerprint, or (when absent) a stable hash of its label set."""
    if raw is not None and not isinstance(raw, str):
        raise BadAlertPayload(f"{where} is not a string (got {_json_type(raw)})")
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


def _string_map(raw: Any, where: str) -> dict[str, str]:
    """A label or annotation map; absent/null is empty, non-string values are dropped."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadAlertPayload(f"{where} is not an object (got {_json_type(raw)})")
    return {str(k): v for k, v in raw.items() if isinstance(v, str)}


def _rfc3339_utc(raw: Any, where: str) -> str:
    """An RFC 3339 time (any offset, up to nanoseconds) as UTC ``...Z`` (microseconds kept)."""
    if not isinstance(raw, str):
        what = "missing" if raw is None else f"not a string (got {_json_type(raw)})"
        raise BadAlertPayload(f"{where} is {what}")
    match = _RFC3339.match(raw.strip())
    if not match:
        raise BadAlertPayload(f"{where} {raw!r} is not an RFC 3339 time")
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    try:
        offset = timedelta(0) if zulu else (1 if sign == "+" else -1) * timedelta(
            hours=int(off_h), minutes=int(off_m))
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                          micro, tzinfo=timezone(offset)).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise BadAlertPayload(f"{where} {raw!r} is not a valid time: {exc}") from None
    if moment.year < 1970:  # Go's zero time "0001-01-01T00:00:00Z" means "unset"
        raise BadAlertPayload(f"{where} {raw!r} is not set (before 1970)")
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


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
