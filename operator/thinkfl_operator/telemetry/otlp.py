"""OTLP/JSON traces (Jaeger api_v3, Tempo) → rows of the span frame (``spans.COLUMNS``).

Accepted shapes: ``{"resourceSpans": […]}`` and Tempo's older ``{"batches": […]}``; inside a
resource, ``scopeSpans`` and the old ``instrumentationLibrarySpans``. IDs may be hex or base64
(Tempo, protobuf JSON) and come out as lowercase hex, trace IDs left-padded to 32 characters and
span IDs to 16 (backends that drop leading zeros send 31 characters). Omitted fields take their
protobuf default (0, ""), as protobuf JSON omits defaults.

Per span: ``start_us``/``duration_us`` from ``startTimeUnixNano``/``endTimeUnixNano`` (strings or
numbers); ``kind`` from an int (2) or an enum name (``SPAN_KIND_SERVER``) as "server", "client",
"internal", "producer", "consumer" ("" when unspecified); ``status`` "2" for an error status
(``2`` or ``STATUS_CODE_ERROR``) and "0" otherwise; ``service`` from the resource attribute
``service.name``; ``pod`` from ``k8s.pod.name``, else ``host.name``, else
``service.instance.id``, else the service; ``node`` from ``k8s.node.name``.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from thinkfl_operator.core.errors import InvalidIncident
from thinkfl_operator.telemetry.spans import COLUMNS, empty_frame

TRACE_ID_HEX = 32
SPAN_ID_HEX = 16
ERROR_STATUS = "2"
OK_STATUS = "0"
KINDS = ("", "internal", "server", "client", "producer", "consumer")
POD_ATTRIBUTES = ("k8s.pod.name", "host.name", "service.instance.id")
NODE_ATTRIBUTE = "k8s.node.name"

#: A span frame row, in ``COLUMNS`` order.
Row = tuple[str, str, str, str, str, str, str, int, int, str, str]

_HEX = re.compile(r"[0-9a-f]+")
_KIND_NAMES = {f"SPAN_KIND_{k.upper()}": k for k in KINDS if k} | {"SPAN_KIND_UNSPECIFIED": ""}
_ERROR_CODES = {"2", "STATUS_CODE_ERROR", "ERROR"}
_RESOURCE_KEYS = ("resourceSpans", "batches")
_SCOPE_KEYS = ("scopeSpans", "instrumentationLibrarySpans")


# ---------------------------------------------------------------------------------- IDs

def normalize_id(text: object, width: int) -> str:
    """Lowercase hex left-padded to ``width``; base64 (standard or URL-safe) decoded to hex.
    Text that is neither is returned stripped and lowercased (the caller decides)."""
    if isinstance(text, str) and len(text) == width and text.isalnum():
        try:  # the usual case, fast: already hex of the right width
            int(text, 16)
            return text.lower()
        except ValueError:
            pass
    if text is None:
        return ""
    raw = str(text).strip()
    if not raw:
        return ""
    lower = raw.lower()
    if _HEX.fullmatch(lower):
        return lower.rjust(width, "0") if len(lower) <= width else lower
    decoded = base64_bytes(raw)
    if decoded is not None and 0 < len(decoded) * 2 <= width:
        return decoded.hex().rjust(width, "0")
    return lower


def normalize_trace_id(text: object) -> str:
    """A trace ID as 32 lowercase hex characters (from hex of any case, 31-character hex
    with the leading zero dropped, or base64)."""
    return normalize_id(text, TRACE_ID_HEX)


def require_trace_id(text: object) -> str:
    """``normalize_trace_id``, raising ``InvalidIncident`` unless the result is 32 hex digits."""
    value = normalize_trace_id(text)
    if len(value) != TRACE_ID_HEX or not _HEX.fullmatch(value):
        raise InvalidIncident(f"trace ID {str(text).strip()!r} is not a hex or base64 trace ID")
    return value


def normalize_span_id(text: object) -> str:
    """A span ID as 16 lowercase hex characters; "" for an absent or all-zero ID."""
    value = normalize_id(text, SPAN_ID_HEX)
    return "" if value.strip("0") == "" else value


def base64_bytes(text: str) -> bytes | None:
    """Standard or URL-safe base64 (padding optional) decoded; None when it is not base64."""
    padded = text + "=" * (-len(text) % 4)
    for altchars in (None, b"-_"):
        try:
            return base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


# ---------------------------------------------------------------------------------- values

def any_value(value: Mapping[str, Any] | None) -> Any:
    """The Python value of an OTLP ``AnyValue`` (int64 sent as strings → int, bytes → bytes,
    arrays → list, key-value lists → dict); None when empty."""
    if not isinstance(value, Mapping):
        return value
    if "stringValue" in value:
        return str(value["stringValue"])
    if "intValue" in value:
        try:
            return int_value(value["intValue"])
        except ValueError:
            return value["intValue"]
    if "boolValue" in value:
        flag = value["boolValue"]
        return flag if isinstance(flag, bool) else str(flag).lower() == "true"
    if "doubleValue" in value:
        return _float(value["doubleValue"])
    if "arrayValue" in value:
        array = value["arrayValue"] or {}
        return [any_value(v) for v in array.get("values") or []]
    if "kvlistValue" in value:
        kvlist = value["kvlistValue"] or {}
        return attributes(kvlist.get("values") or [])
    if "bytesValue" in value:
        return base64_bytes(str(value["bytesValue"])) or b""
    return None


def attributes(items: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    """OTLP ``[{"key": …, "value": AnyValue}]`` → ``{key: value}`` (the last repeat wins)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if isinstance(item, Mapping) and "key" in item:
            out[str(item["key"])] = any_value(item.get("value"))
    return out


def text_value(value: Any) -> str:
    """An attribute value as text ("" for None; booleans as true/false)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def span_kind(value: object) -> str:
    """Span kind text from an OTLP int (2), enum name (``SPAN_KIND_SERVER``) or plain name."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return KINDS[value] if 0 <= value < len(KINDS) else ""
    text = str(value).strip()
    if text.isdigit():
        return span_kind(int(text))
    if text.upper() in _KIND_NAMES:
        return _KIND_NAMES[text.upper()]
    lower = text.lower()
    return lower if lower in KINDS else ""


def span_status(status: object, attrs: Mapping[str, Any] | None = None,
                events: Iterable[Mapping[str, Any]] | None = None) -> str:
    """"2" for an error: an OTLP error status (``{"code": 2}`` or ``STATUS_CODE_ERROR``), error
    attributes (``error_attributes``) or an ``exception`` event; else "0"."""
    code = status.get("code") if isinstance(status, Mapping) else status
    if str(code).strip().upper() in _ERROR_CODES or error_attributes(attrs or {}):
        return ERROR_STATUS
    if any(str(e.get("name") or "").lower() == "exception" for e in events or () if isinstance(e, Mapping)):
        return ERROR_STATUS
    return OK_STATUS


#: gRPC codes OpenTelemetry's semantic conventions count as server errors.
_GRPC_ERRORS = {2, 4, 12, 13, 14, 15}


def error_attributes(attrs: Mapping[str, Any]) -> bool:
    """Whether span attributes (Jaeger tags) say the span failed: ``error=true``,
    ``otel.status_code=ERROR``, an HTTP status ≥ 500 (``http.status_code`` or
    ``http.response.status_code``), or a gRPC code the conventions call an error."""
    error = attrs.get("error")
    if error is True or str(error).lower() == "true":
        return True
    if str(attrs.get("otel.status_code") or "").upper() == "ERROR":
        return True
    for key in ("http.status_code", "http.response.status_code"):
        if _number(attrs.get(key)) >= 500:
            return True
    return _number(attrs.get("rpc.grpc.status_code"), -1) in _GRPC_ERRORS


def _number(value: object, default: int = 0) -> int:
    try:
        return int(str(value).strip()) if value is not None and value != "" else default
    except ValueError:
        return default


def int_value(value: object, default: int | None = None) -> int:
    """An int64 sent as a JSON number or string (0 when absent). Text that is no number raises
    ``ValueError``, or gives ``default`` when one is set."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if value is None or value == "":
        return 0
    try:
        text = str(value).strip()
        return int(text) if text.lstrip("-").isdigit() else int(float(text))
    except (ValueError, OverflowError):
        if default is None:
            raise ValueError(f"not an integer: {value!r}") from None
        return default


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


# ---------------------------------------------------------------------------------- spans

def resource_spans(payload: Mapping[str, Any] | Sequence[Any]) -> list[Mapping[str, Any]]:
    """The resource-span blocks of an OTLP ``TracesData`` (``resourceSpans`` or ``batches``),
    or of a bare list of them."""
    if isinstance(payload, Mapping):
        blocks: list[Any] = []
        for key in _RESOURCE_KEYS:
            blocks.extend(payload.get(key) or [])
    else:
        blocks = list(payload)
    return [b for b in blocks if isinstance(b, Mapping)]


def otlp_rows(payload: Mapping[str, Any] | Sequence[Any],
              skip: Container[str] = ()) -> Iterator[Row]:
    """One span frame row per OTLP span, in document order (duplicates kept); spans of the
    traces in ``skip`` (already held whole) are passed over without being decoded."""
    for block in resource_spans(payload):
        resource = attributes((block.get("resource") or {}).get("attributes"))
        service = text_value(resource.get("service.name"))
        pod = next((text_value(resource[k]) for k in POD_ATTRIBUTES if resource.get(k)), service)
        node = text_value(resource.get(NODE_ATTRIBUTE))
        for key in _SCOPE_KEYS:
            for scope in block.get(key) or []:
                for span in (scope or {}).get("spans") or []:
                    if skip and normalize_trace_id(span.get("traceId")) in skip:
                        continue
                    yield _row(span, service, pod, node)


def _row(span: Mapping[str, Any], service: str, pod: str, node: str) -> Row:
    start_ns = int_value(span.get("startTimeUnixNano"), 0)
    end_ns = int_value(span.get("endTimeUnixNano"), 0)
    return (
        normalize_trace_id(span.get("traceId")),
        normalize_span_id(span.get("spanId")),
        normalize_span_id(span.get("parentSpanId")),
        pod,
        service,
        node,
        str(span.get("name") or ""),
        start_ns // 1000,
        (end_ns - start_ns) // 1000,
        span_status(span.get("status"), _error_keys(span.get("attributes")), span.get("events")),
        span_kind(span.get("kind")),
    )


#: The attributes ``error_attributes`` reads: only these are decoded per span.
_ERROR_KEYS = frozenset(("error", "otel.status_code", "http.status_code",
                         "http.response.status_code", "rpc.grpc.status_code"))


def _error_keys(items: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    """``attributes`` restricted to ``_ERROR_KEYS`` (decoding every attribute of every span
    was most of the decode time)."""
    return attributes(item for item in items or () if isinstance(item, Mapping)
                      and item.get("key") in _ERROR_KEYS)


def otlp_frame(payload: Mapping[str, Any] | Sequence[Any]) -> pd.DataFrame:
    """A span frame (``COLUMNS``) from an OTLP/JSON ``TracesData``; not cleaned."""
    return span_frame(otlp_rows(payload))


def span_frame(rows: Iterable[Sequence[object]]) -> pd.DataFrame:
    """A span frame from rows in ``COLUMNS`` order (text columns as str, times as int64)."""
    records = list(rows)
    if not records:
        return empty_frame()
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    return frame.astype({"start_us": "int64", "duration_us": "int64"})
