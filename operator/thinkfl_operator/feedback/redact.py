"""Exported rows without the cluster's names: pods, services, nodes and operation names become
salted tokens (``tokens``), wherever they occur (``names`` says where they are found).

Replaced: the topology, the answer, the label and feedback, the incident's service and
description, and every message: tool answers (span ``cmdb_id`` and ``operation_name``, metric
keys ``node.pod.kpi``), the model's calls and reasons, the loop's notes. Kept as they are: the
system prompt (fixed public text; its examples ``node-1`` and ``recommendationservice`` are from
the paper, not from the cluster) and the first user message's two trained sentences; its
root-span table is printed again with the tokens, so the pandas layout the model was trained on
stays aligned. Also kept: versions, engine, model, grade, trace and span IDs, times, scores.
``feedback.by`` (a person) is emptied, and the row's ``id`` (namespace/name) becomes ``fi-`` and
a hash. The row says ``"redacted": true`` and is never redacted again (its tokens would be
hashed a second time, and no longer match rows redacted once).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from thinkfl_operator.engines.thinkfl.prompt import USER_PREFIX, first_user_message
from thinkfl_operator.feedback.names import names_of
from thinkfl_operator.feedback.opening import root_of
from thinkfl_operator.feedback.rows import record_of
from thinkfl_operator.feedback.shape import InvalidRecord
from thinkfl_operator.feedback.tokens import Substitute, digest, tokens_for

_NAMED = ("service", "pod", "node")
#: Free-text fields of the record's incident (``time`` and ``traceID`` hold no names).
_TEXT = ("service", "description")


def redact(row: Mapping[str, Any], salt: str) -> dict[str, Any]:
    """``row`` (schema version 2) with every known name replaced; a redacted row as it is."""
    if row.get("redacted") is True:
        return dict(row)
    record = record_of(row)
    label = json.loads(row["label"])
    feedback = dict(row.get("feedback") or {})
    names = names_of(record, [label, feedback], row.get("input") or [])
    substitute = tokens_for(names, salt).substitution()
    return {**row, "id": "fi-" + digest(salt, "incident", str(row.get("id")), 12),
            "redacted": True,
            "input": _messages(row.get("input") or [], substitute),
            "label": json.dumps({k: substitute(v) for k, v in label.items()}, sort_keys=True),
            "feedback": {k: "" if k == "by" else substitute(str(v)) for k, v in feedback.items()},
            "record": json.dumps(redact_record(record, substitute), ensure_ascii=False,
                                 separators=(",", ":"))}


def redact_record(record: Mapping[str, Any], substitute: Substitute) -> dict[str, Any]:
    """A (version-2) diagnosis record with ``substitute`` applied wherever a name can be."""
    incident = record["incident"]
    return {**record,
            "incident": {k: substitute(v) if k in _TEXT else v for k, v in incident.items()},
            "conversations": [_messages(c, substitute) for c in record["conversations"]],
            "answer": [{k: substitute(v) if k in _NAMED else v for k, v in a.items()}
                       for a in record["answer"]],
            "topology": [{k: substitute(v) for k, v in e.items()} for e in record["topology"]]}


def _messages(messages: list[dict[str, str]], substitute: Substitute) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": _content(m["role"], m["content"], substitute)}
            for m in messages]


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
