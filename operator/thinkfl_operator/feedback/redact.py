"""Exported rows without the cluster's names: pods, services and nodes become salted tokens.

``redact(row, salt)`` replaces every pod, service and node name the row knows with a token that
depends only on the name and the salt (HMAC-SHA256), so the same name gives the same token in
every row redacted with the same salt, and rows from several exports still line up:

* service ``cartservice`` → ``svc-1a2b3c4d``; node ``node-6`` → ``node-5e6f7a8b``;
* pod ``cartservice-2`` → ``svc-1a2b3c4d-0c1d2e3f-4a5b6``: its service's token, then a
  Deployment-like suffix, so the topology stays readable in the pod names themselves, as the
  model reads them (``telemetry.naming.service_of_pod`` gives back the service's token).

Names come from the topology, the answer, the label and feedback, the incident's service, the
spans shown to the model (``cmdb_id`` of the root span and of the tools' answers) and the calls
the model wrote (which may name what was never observed). They are replaced as whole names wherever they occur: inside tool outputs,
metric keys (``node.pod.kpi``), calls, free text. Longest first and in one pass, and only where
the text around is not a name character (letter, digit, ``_`` or ``-``), so ``cart`` inside
``redis-cart`` or ``cartservice`` is left alone; ``.`` separates. A name the row does not know
as one (a pod only a free-text note mentions) is not found.

Kept as they are: the system prompt (fixed public text; its examples ``node-1`` and
``recommendationservice`` are from the paper, not from the cluster) and the first user message's
two trained sentences; its root-span table is printed again with the tokens, so the pandas
layout the model was trained on stays aligned. Also kept: version, engine, model, grade, trace
and span IDs, times. ``feedback.by`` (a person) is dropped, and the row's ``id``
(namespace/name) becomes ``fi-`` and a hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from thinkfl_operator.engines.thinkfl.parser import parse_reply
from thinkfl_operator.engines.thinkfl.prompt import USER_PREFIX, first_user_message
from thinkfl_operator.feedback.opening import root_of
from thinkfl_operator.feedback.record import InvalidRecord
from thinkfl_operator.telemetry.naming import service_of_pod

#: Row keys that hold no names (``grade`` holds factor names, which must stay as they are).
_KEPT = frozenset({"version", "engine", "model", "grade", "truncated"})

Substitute = Callable[[str], str]


def redact(row: Mapping[str, Any], salt: str) -> dict[str, Any]:
    """``row`` (an exported row or a diagnosis record) with every known name replaced."""
    tokens = _tokens(_Names.of(row), salt)
    substitute = _substitution(tokens)
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in _KEPT:
            out[key] = value
        elif key == "id":
            out[key] = "fi-" + _digest(salt, "incident", str(value), 12)
        elif key == "topology" and isinstance(value, Mapping):
            out[key] = {part: _keys_too(names, substitute) for part, names in value.items()}
        elif key == "feedback" and isinstance(value, Mapping):
            out[key] = {k: _redacted(v, substitute) for k, v in value.items() if k != "by"}
        else:
            out[key] = _redacted(value, substitute)
    return out


class _Names:
    """Every name a row knows: pods (with their service when known), services and nodes."""

    def __init__(self) -> None:
        self.pods: dict[str, str] = {}
        self.services: set[str] = set()
        self.nodes: set[str] = set()

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> _Names:
        names = cls()
        topology = row.get("topology") or {}
        names.pods.update(topology.get("pods") or {})
        names.nodes.update((topology.get("nodes") or {}).values())
        names.services.update(names.pods.values())
        names.services.add((row.get("incident") or {}).get("service") or "")
        names.add_causes(row.get("answer") or [])
        names.add_causes([row.get("feedback") or {}, _json(row.get("label"))])
        for conversation in row.get("conversations") or []:
            names.add_messages(conversation)
        names.add_messages(row.get("input") or [])
        names.services.discard("")
        names.nodes.discard("")
        return names

    def add_causes(self, causes: Iterable[Any]) -> None:
        for cause in causes:
            if isinstance(cause, Mapping):
                self.services.add(str(cause.get("service") or ""))
                self.nodes.add(str(cause.get("node") or ""))
                self.add_pod(str(cause.get("pod") or ""))

    def add_pod(self, pod: str) -> None:
        if pod:
            self.pods.setdefault(pod, "")

    def add_messages(self, messages: Iterable[Mapping[str, str]]) -> None:
        for message in messages:
            if message.get("role") == "assistant":
                for call in parse_reply(message.get("content")).calls:
                    self.add_causes(call.arguments.get("root_causes") or [])
                    self.services.add(str(call.arguments.get("service_name") or ""))
            elif message.get("role") == "user":
                self.add_pod(_root_pod(message.get("content") or ""))
            elif message.get("role") == "tool":
                spans = _json(message.get("content"))
                for span in spans if isinstance(spans, list) else []:
                    self.add_pod(str(span.get("cmdb_id") or "") if isinstance(span, Mapping) else "")


def _tokens(names: _Names, salt: str) -> dict[str, str]:
    """Name → token; a name that is several kinds at once takes one token (pod over node over
    service), so text and structure agree."""

    def service(name: str) -> str:
        return "svc-" + _digest(salt, "service", name, 8)

    tokens = {name: service(name) for name in names.services}
    tokens.update({name: "node-" + _digest(salt, "node", name, 8) for name in names.nodes})
    for pod, owner in names.pods.items():
        suffix = _digest(salt, "pod", pod, 13)
        tokens[pod] = f"{service(owner or service_of_pod(pod))}-{suffix[:8]}-{suffix[8:]}"
    return tokens


def _digest(salt: str, kind: str, name: str, length: int) -> str:
    return hmac.new(salt.encode(), f"{kind}\0{name}".encode(), hashlib.sha256).hexdigest()[:length]


def _substitution(tokens: Mapping[str, str]) -> Substitute:
    """Whole names replaced by their tokens, longest first, in one pass (no token is rescanned)."""
    if not tokens:
        return lambda text: text
    alternatives = "|".join(re.escape(n) for n in sorted(tokens, key=lambda n: (-len(n), n)))
    pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")
    return lambda text: pattern.sub(lambda m: tokens[m.group()], text)


def _keys_too(names: Any, substitute: Substitute) -> Any:
    """A topology map (pod → service or node) with its keys redacted as well."""
    if not isinstance(names, Mapping):
        return _redacted(names, substitute)
    return {substitute(str(k)): _redacted(v, substitute) for k, v in names.items()}


def _redacted(value: Any, substitute: Substitute) -> Any:
    if isinstance(value, str):
        return substitute(value)
    if isinstance(value, list):
        return [_redacted(v, substitute) for v in value]
    if isinstance(value, Mapping):
        if isinstance(value.get("role"), str) and isinstance(value.get("content"), str):
            return {**value, "content": _content(value["role"], value["content"], substitute)}
        return {k: _redacted(v, substitute) for k, v in value.items()}
    return value


def _content(role: str, text: str, substitute: Substitute) -> str:
    if role == "system":
        return text
    if role == "user" and text.startswith(USER_PREFIX):
        return _opening(text, substitute)
    return substitute(text)


def _opening(text: str, substitute: Substitute) -> str:
    """The first user message with its root span printed again, redacted, so the pandas columns
    stay aligned; when the table does not read back (``opening.root_of``), names replaced in
    place."""
    try:
        span = root_of(text, {})
    except InvalidRecord:
        return substitute(text)
    return first_user_message(replace(span, cmdb_id=substitute(span.cmdb_id),
                                      operation_name=substitute(span.operation_name)))


def _root_pod(text: str) -> str:
    """The pod of the root span an opening user message shows; "" for other messages."""
    try:
        return root_of(text, {}).cmdb_id
    except InvalidRecord:
        return ""


def _json(text: Any) -> Any:
    """The JSON value at the start of ``text`` (tool answers may have a note after it)."""
    if not isinstance(text, str):
        return None
    try:
        return json.JSONDecoder().raw_decode(text.lstrip())[0]
    except ValueError:
        return None
