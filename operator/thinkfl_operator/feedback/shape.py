"""The diagnosis record's schema checked (see ``record`` for the schema itself).

A record comes from a status or from a file anyone may edit, so it is checked before use, and a
record of version 1 is upgraded to version 2 (``legacy``): the rest of the code reads version 2
only. Messages keep exactly ``role`` and ``content``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from thinkfl_operator.errors import UserInputError
from thinkfl_operator.feedback import legacy

VERSIONS = (1, 2)
ROLES = ("system", "user", "assistant", "tool")
_KINDS: dict[str, tuple[type, str]] = {
    "incident": (dict, "an object"), "engine": (str, "a string"), "model": (str, "a string"),
    "conversations": (list, "a list"), "answer": (list, "a list"),
}
_TOPOLOGY_KEYS = ("pod", "service", "node")
_INCIDENT_KEYS = ("time", "traceID", "service", "description")


class InvalidRecord(UserInputError):
    """A record that cannot be read: not base64, not gzip, not JSON, or not a known schema
    version. Not retryable: the text itself is wrong."""


def checked_record(value: object) -> dict[str, Any]:
    """``value`` as a version-2 record; else the first problem as an ``InvalidRecord``."""
    if not isinstance(value, dict):
        raise InvalidRecord(f"a record is a JSON object, not {type(value).__name__}")
    version = value.get("version")
    if version not in VERSIONS:
        raise InvalidRecord(f"record version {version!r} is not supported (this operator reads "
                            f"versions {', '.join(map(str, VERSIONS))})")
    _check_common(value)
    if version == 1:
        _check_v1_topology(value)
        value = legacy.upgrade(value)
    _check_v2(value)
    return {"version": 2, "incident": _incident(value["incident"]),
            "engine": value["engine"], "model": value["model"],
            "conversations": [[{"role": m["role"], "content": m["content"]} for m in c]
                              for c in value["conversations"]],
            "answer": [_cause(a) for a in value["answer"]],
            "topology": [{k: e[k] for k in _TOPOLOGY_KEYS} for e in value["topology"]],
            # Optional (records before log evidence have neither): what the logs showed.
            "logEvidence": [str(x) for x in value.get("logEvidence") or [] if isinstance(x, str)],
            "logLead": str(value.get("logLead") or ""),
            "truncated": value["truncated"]}


def _check_common(value: Mapping[str, Any]) -> None:
    for key, (kind, noun) in _KINDS.items():
        if not isinstance(value.get(key), kind):
            raise InvalidRecord(f"the record's {key!r} is missing or not {noun}")
    for number, conversation in enumerate(value["conversations"], 1):
        if not isinstance(conversation, list) or not all(_is_message(m) for m in conversation):
            raise InvalidRecord(f"the record's conversation {number} is not a list of "
                                f"{{role: {'|'.join(ROLES)}, content: text}} messages")
    if not all(_is_cause(a) for a in value["answer"]):
        raise InvalidRecord("the record's answer is not a list of {rank: integer, service, pod, "
                            "node} objects")


def _check_v1_topology(value: Mapping[str, Any]) -> None:
    topology = value.get("topology")
    if not isinstance(topology, dict) or \
            not all(isinstance(topology.get(k), dict) for k in ("pods", "nodes")):
        raise InvalidRecord("the record's topology needs 'pods' and 'nodes' objects")


def _check_v2(value: Mapping[str, Any]) -> None:
    topology = value.get("topology")
    if not isinstance(topology, list) or not all(_is_entry(e) for e in topology):
        raise InvalidRecord("the record's 'topology' is not a list of {pod, service, node} "
                            "objects of strings")
    if not isinstance(value.get("truncated"), bool):
        raise InvalidRecord("the record's 'truncated' is missing or not true/false")


def _cause(cause: Mapping[str, Any]) -> dict[str, Any]:
    score = cause.get("score")
    return {"rank": cause["rank"], **{k: cause.get(k) or "" for k in ("service", "pod", "node")},
            "score": score if isinstance(score, int) and not isinstance(score, bool) else 0,
            "padded": cause.get("padded") is True}


def _incident(incident: Mapping[str, Any]) -> dict[str, str]:
    return {key: str(incident.get(key) or "") for key in _INCIDENT_KEYS}


def _is_entry(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(value.get(k), str) for k in _TOPOLOGY_KEYS) \
        and bool(value["pod"])


def _is_message(value: object) -> bool:
    return isinstance(value, dict) and value.get("role") in ROLES \
        and isinstance(value.get("content"), str)


def _is_cause(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("rank"), int) \
        and not isinstance(value.get("rank"), bool) \
        and all(isinstance(value.get(k, ""), str) for k in _TOPOLOGY_KEYS)
