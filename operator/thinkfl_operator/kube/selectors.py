"""Kubernetes' field and label selectors, matched against an object as the API server does.

Field selectors compare dotted paths (``involvedObject.name=x``, ``metadata.name!=y``); label
selectors take equality, inequality, existence and the set forms (``k in (a,b)``). Used by
``sandbox_api`` for lists and watches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


def selected(obj: Mapping[str, Any], params: Mapping[str, str]) -> bool:
    """The request's ``fieldSelector`` and ``labelSelector`` against the object."""
    return _fields_match(obj, params.get("fieldSelector", "")) and _labels_match(
        (obj.get("metadata") or {}).get("labels") or {}, params.get("labelSelector", ""))


def _fields_match(obj: Mapping[str, Any], selector: str) -> bool:
    """A field selector (``a.b=x,c!=y``; ``==`` as ``=``) against the object's fields."""
    for term in filter(None, selector.split(",")):
        negated = "!=" in term
        field, _, wanted = term.replace("!=", "=").replace("==", "=").partition("=")
        value: Any = obj
        for key in field.strip().split("."):
            value = value.get(key) if isinstance(value, Mapping) else None
        if (("" if value is None else str(value)) == wanted.strip()) == negated:
            return False
    return True


def _labels_match(labels: Mapping[str, str], selector: str) -> bool:
    """A label selector: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``, ``k notin (a,b)``."""
    for term in (t.strip() for t in re.findall(r"[^,(]+(?:\([^)]*\))?", selector)):
        if match := re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", term):
            key, how, values = match[1], match[2], {v.strip() for v in match[3].split(",")}
            if (key in labels and labels[key] in values) != (how == "in"):
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif "!=" in term:
            key, _, value = term.partition("!=")
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, _, value = term.replace("==", "=").partition("=")
            if labels.get(key.strip()) != value.strip():
                return False
        elif term and term not in labels:
            return False
    return True
