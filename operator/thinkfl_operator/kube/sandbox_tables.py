"""Server-side printing: the ``meta.k8s.io/v1`` Table that ``kubectl get`` asks the API for.

An API server prints a custom resource by its CRD's ``additionalPrinterColumns`` (after a Name
column) and an Event by Kubernetes' own columns (LAST SEEN, TYPE, REASON, OBJECT, MESSAGE); a
``date`` cell is an age, as apimachinery's ``HumanDuration`` writes it. Used by ``sandbox_api``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from thinkfl_operator.kube.crd import served

#: A column: its definition in the Table, and how to read its cell from an object.
Column = tuple[dict[str, Any], Callable[[Mapping[str, Any]], Any]]


def _definition(name: str, description: str = "", priority: int = 0, type_: str = "string",
                format_: str = "") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": format_, "description": description, "priority": priority}


def _at(obj: Mapping[str, Any], path: str) -> Any:
    value: Any = obj
    for key in path.strip(".").split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _age(timestamp: Any) -> str | None:
    if not timestamp:
        return None
    since = datetime.now(UTC) - datetime.fromisoformat(str(timestamp))
    return human_duration(since.total_seconds())


def _printer_column(column: Mapping[str, Any]) -> Column:
    path, date = column["jsonPath"], column["type"] == "date"
    definition = _definition(column["name"], column.get("description", ""), column.get("priority", 0),
                             column["type"], column.get("format", ""))
    return definition, (lambda o: _age(_at(o, path)) if date else _at(o, path))


def crd_columns() -> list[Column]:
    """Name, then the CRD's printer columns (``-o wide`` shows those of priority 1 too)."""
    name = _definition("Name", "Name must be unique within a namespace.", format_="name")
    return [(name, lambda o: o["metadata"]["name"]),
            *(_printer_column(c) for c in served().get("additionalPrinterColumns", []))]


def _object(event: Mapping[str, Any]) -> str:
    involved = event.get("involvedObject") or {}
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


#: Kubernetes' columns for Events (pkg/printers/internalversion), the wide ones left out.
EVENT_COLUMNS: list[Column] = [
    (_definition("Last Seen", "Time when last event occurred"),
     lambda e: _age(e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp"))),
    (_definition("Type", "Type of this event."), lambda e: e.get("type")),
    (_definition("Reason", "Reason why this event was generated."), lambda e: e.get("reason")),
    (_definition("Object", "The object this Event is about."), _object),
    (_definition("Message", "A human-readable description of the status of this operation."),
     lambda e: e.get("message")),
]


def table(items: Sequence[Mapping[str, Any]], columns: Sequence[Column], include: str = "Metadata",
          resource_version: str = "") -> dict[str, Any]:
    """The Table of ``items``; each row carries the object's metadata (``includeObject``)."""
    def row_object(obj: Mapping[str, Any]) -> dict[str, Any] | None:
        if include == "None":
            return None
        if include == "Object":
            return dict(obj)
        return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}

    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": [definition for definition, _ in columns],
            "rows": [{"cells": [cell(o) for _, cell in columns], "object": row_object(o)} for o in items]}


def human_duration(seconds: float) -> str:
    """An age as kubectl and the API server print it (apimachinery's ``HumanDuration``)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 120:
        return f"{max(s, 0)}s"
    m, h, d = s // 60, s // 3600, s // 86400
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 192:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 730:
        return f"{d}d"
    return f"{d // 365}y{d % 365}d" if d < 2920 and d % 365 else f"{d // 365}y"
