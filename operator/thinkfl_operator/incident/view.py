"""A FailureIncident as ``kubectl get fi`` and ``kubectl describe fi`` print it.

kubectl renders custom resources generically: the printer columns of the CRD for ``get``, and
for ``describe`` every field with its name split into capitalized words, nested maps indented,
list items one after another (a list of strings, such as ``status.path``, one line each), then
the object's Events. ``thinkfl demo --operator`` prints its incident with this module; the
README's example is what the real kubectl prints against ``thinkfl demo --operator --serve``
(``tests/integration/test_kubectl.py`` keeps it true).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

GET_COLUMNS = ("NAME", "PHASE", "TOP CAUSE", "ENGINE", "SERVICE", "AGE")


def get_table(objects: Sequence[Mapping[str, Any]], ages: Sequence[str]) -> str:
    """``kubectl get fi``: one row per incident (ages given, as they depend on the clock)."""
    rows = [list(GET_COLUMNS)]
    for obj, age in zip(objects, ages, strict=True):
        status, spec = obj.get("status") or {}, obj.get("spec") or {}
        rows.append([obj["metadata"]["name"], status.get("phase", ""), status.get("topCause", ""),
                     status.get("engine", ""), spec.get("service", ""), age])
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(GET_COLUMNS))]
    return "\n".join("   ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def describe(obj: Mapping[str, Any], events: Sequence[Mapping[str, Any]] = ()) -> str:
    """``kubectl describe fi NAME``."""
    meta = obj.get("metadata") or {}
    lines = _fields({"Name": meta.get("name", ""), "Namespace": meta.get("namespace", ""),
                     "API Version": obj.get("apiVersion", ""), "Kind": obj.get("kind", "")}, 0, raw=True)
    for section in ("spec", "status"):
        if obj.get(section):
            lines.append(f"{_title(section)}:")
            lines += _fields(obj[section], 2)
    lines.append("Events:")
    if not events:
        lines.append("  <none>")
    else:
        rows = [("Type", "Reason", "Message"), ("----", "------", "-------")]
        rows += [(str(e.get("type", "")), str(e.get("reason", "")), str(e.get("message", ""))) for e in events]
        widths = [max(len(r[i]) for r in rows) for i in range(2)]
        lines += [f"  {r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {r[2]}".rstrip() for r in rows]
    return "\n".join(lines)


def _title(key: str) -> str:
    """``rootCauses`` → ``Root Causes`` (as kubectl describe prints field names)."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key).split()
    return " ".join(w[:1].upper() + w[1:] for w in words)


def _fields(values: Mapping[str, Any], indent: int, raw: bool = False) -> list[str]:
    pad = " " * indent
    items = [(key if raw else _title(key), value) for key, value in sorted(values.items())] \
        if not raw else list(values.items())
    scalar = [len(k) for k, v in items if not isinstance(v, (Mapping, list))]
    width = max(scalar, default=0) + 2
    lines: list[str] = []
    for key, value in items:
        if isinstance(value, Mapping):
            lines.append(f"{pad}{key}:")
            lines += _fields(value, indent + 2)
        elif isinstance(value, list):
            lines.append(f"{pad}{key}:")
            for item in value:
                lines += _fields(item, indent + 2) if isinstance(item, Mapping) else [f"{pad}  {item}"]
        else:
            lines.append(f"{pad}{(key + ':').ljust(width)}{value}".rstrip())
    return lines
