"""Incidents gathered from several sources, each counted once.

``thinkfl export`` and ``report`` read FailureIncident objects (from the cluster, or files of
``kubectl get`` output) and exported rows (``.jsonl``). The same incident can come more than
once: an export read back beside the objects it came from, the same file given twice, or the
``--out`` file of an earlier run in the folder read. Each incident (``namespace/name``) is kept
once: an object wins over a row (it is the live state: its feedback may have changed since the
row was written), and among objects or among rows the first one read wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from thinkfl_operator.feedback.export import object_id
from thinkfl_operator.feedback.rows import Checked, namespace_of


@dataclass
class Selected:
    """The objects and checked rows to use, and how many duplicates were left out."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    rows: list[Checked] = field(default_factory=list)
    duplicates: int = 0


def select(objects: Iterable[dict[str, Any]], rows: Iterable[Checked],
           namespace: str | None = None) -> Selected:
    """Objects and rows of ``namespace`` (all when None), each incident once (see above). A
    redacted row's id names no namespace: it is left out when a namespace is asked for."""
    out = Selected()
    seen: set[str] = set()
    for obj in objects:
        if _in(namespace, (obj.get("metadata") or {}).get("namespace") or ""):
            out.duplicates += _keep(object_id(obj), seen, out.objects, obj)
    for checked in rows:
        if _in(namespace, namespace_of(checked.row)):
            out.duplicates += _keep(str(checked.row["id"]), seen, out.rows, checked)
    return out


def _in(namespace: str | None, value: str) -> bool:
    return namespace is None or value == namespace


def _keep(key: str, seen: set[str], kept: list[Any], item: Mapping[str, Any] | Checked) -> int:
    """Append ``item`` unless ``key`` was seen; 1 when it was (a duplicate), else 0."""
    if key in seen:
        return 1
    seen.add(key)
    kept.append(item)
    return 0
