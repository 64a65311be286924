"""The CRD's schema as OpenAPI v2 (Swagger 2.0), in the protobuf encoding kubectl asks for.

kubectl reads ``/openapi/v2`` with ``Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf``
and decodes gnostic's ``openapi.v2.Document``; before v1.27 (Debian bookworm's kubernetes-client
is v1.20) it is all ``explain`` and ``apply``'s client-side validation read. Only what a CRD's
structural schema uses is written: the field numbers are gnostic's ``OpenAPIv2.proto``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

#: What kubectl sends in Accept for the protobuf document.
PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # an int64 as protobuf writes it
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _bytes(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _text(field: int, value: str) -> bytes:
    return _bytes(field, value.encode("utf-8"))


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(int(value))


def _double(field: int, value: float) -> bytes:
    return _varint(field << 3 | 1) + struct.pack("<d", float(value))


def _any(field: int, value: Any) -> bytes:
    """gnostic's ``Any``: the value as YAML (field 2)."""
    return _bytes(field, _text(2, yaml.safe_dump(value, default_flow_style=True).strip()))


def _named(field: int, pairs: Iterable[tuple[str, bytes]]) -> bytes:
    """A repeated ``Named…`` message: name (1), value (2)."""
    return b"".join(_bytes(field, _text(1, name) + _bytes(2, value)) for name, value in pairs)


def schema(node: Mapping[str, Any]) -> bytes:
    """An ``openapi.v2.Schema`` from a structural OpenAPI v3 schema node."""
    out = b""
    for key, field in (("format", 2), ("description", 4), ("pattern", 13)):
        if key in node:
            out += _text(field, str(node[key]))
    for key, field in (("maximum", 7), ("minimum", 9)):
        if key in node:
            out += _double(field, node[key])
    for key, field in (("maxLength", 11), ("minLength", 12), ("maxItems", 14), ("minItems", 15),
                       ("maxProperties", 17)):
        if key in node:
            out += _int(field, node[key])
    out += b"".join(_text(19, name) for name in node.get("required", []))
    out += b"".join(_any(20, value) for value in node.get("enum", []))
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        out += _bytes(21, _bytes(1, schema(extra)))
    elif isinstance(extra, bool):
        out += _bytes(21, _int(2, int(extra)))
    if "type" in node:
        out += _bytes(22, _text(1, node["type"]))
    if isinstance(node.get("items"), Mapping):
        out += _bytes(23, _bytes(1, schema(node["items"])))
    if "properties" in node:
        out += _bytes(25, _named(1, ((k, schema(v)) for k, v in node["properties"].items())))
    return out + _named(31, ((k, _text(2, yaml.safe_dump(v).strip())) for k, v in node.items()
                             if k.startswith("x-")))


def document(definitions: Mapping[str, Mapping[str, Any]]) -> bytes:
    """An ``openapi.v2.Document``: swagger (1), info (2), definitions (9); no paths."""
    info = _text(1, "Kubernetes") + _text(2, "v0.1.0")
    named = _named(1, ((name, schema(node)) for name, node in definitions.items()))
    return _text(1, "2.0") + _bytes(2, info) + _bytes(8, b"") + _bytes(9, named)
