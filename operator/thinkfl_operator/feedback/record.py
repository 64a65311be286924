"""One diagnosis as a self-contained record, kept in a ConfigMap the incident owns (``home``;
versions before kept it in ``status.record``).

The record holds what is needed to learn from the incident later, with no other storage: the
incident, the engine and model, the exact conversations (see ``conversations``), the ranked
answer and the observed topology. Schema, version 2::

    {"version": 2,
     "incident": {"time": RFC 3339 str or "", "traceID": str, "service": str,
                  "description": str},
     "engine": str, "model": str,
     "conversations": [[{"role": "system" | "user" | "assistant" | "tool",
                         "content": str}, ...], ...],
     "answer": [{"rank": int, "service": str, "pod": str, "node": str, "score": int,
                 "padded": bool}, ...],
     "topology": [{"pod": str, "service": str, "node": str}, ...],
     "logEvidence": [str, ...], "logLead": str,   # what the logs showed (the model cannot)
     "usage": {"llmCalls": int, "promptTokens": int, "completionTokens": int,
               "toolCalls": int, "stages": [{"stage": str, "seconds": float}, ...]},
     "truncated": bool}     # true when encode_record had to shrink the record

Every key is always there, no value is null and no key is a name from the cluster, so every
record has the same shape whatever the incident (Arrow, and so HuggingFace ``datasets``, infer one
schema for all). ``padded``: the entry was added by ranking to reach the minimum count (the
deterministic order after a model's shorter answer); the engine did not name it. Version 1 (the
topology as ``{"pods": {pod: service}, "nodes": {pod: node}}``, no ``padded``) is still read, and
upgraded (``legacy``).

Stored, it is one ASCII string: compact JSON, gzip with a zero mtime (one record always
encodes to the same text, so an unchanged record is not rewritten), base64. It is kept under
``MAX_RECORD_CHARS`` (a ConfigMap holds up to 1 MiB, which the base64 text unpacks within): a bigger record loses the tool answers
of its longest conversations first (each becomes "[omitted]"), then whole conversations.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import zlib
from collections.abc import Mapping
from typing import Any

from thinkfl_operator.core.models import Diagnosis, Incident, Topology, Usage
from thinkfl_operator.core.rfc3339 import format_utc
from thinkfl_operator.feedback.conversations import Message, conversations_of
from thinkfl_operator.feedback.shape import InvalidRecord, checked_record

__all__ = ["MAX_RECORD_CHARS", "OMITTED", "VERSION", "InvalidRecord", "build_record",
           "decode_record", "encode_record", "topology_of"]

VERSION = 2
MAX_RECORD_CHARS = 1_048_576
OMITTED = "[omitted]"
#: Most bytes a record may unpack to (a guard against gzip bombs in imported files).
MAX_UNPACKED_BYTES = 64 * 1024 * 1024


def build_record(diagnosis: Diagnosis, incident: Incident) -> dict[str, Any]:
    """The version-2 record of ``diagnosis`` (see the module docstring)."""
    return {
        "version": VERSION,
        "incident": {"time": "" if incident.time_s is None else format_utc(incident.time_s, fraction=True),
                     "traceID": incident.trace_id or "", "service": incident.service or "",
                     "description": incident.description or ""},
        "engine": diagnosis.engine,
        "model": diagnosis.model,
        "conversations": conversations_of(diagnosis),
        "answer": [{"rank": c.rank, "service": c.service, "pod": c.pod, "node": c.node,
                    "score": c.score, "padded": c.padded} for c in diagnosis.root_causes],
        "topology": topology_entries(diagnosis.topology),
        # What the logs showed (the model's tools do not show logs): kept beside its answer.
        "logEvidence": list(diagnosis.log_evidence),
        "logLead": diagnosis.log_lead,
        # What status.usage leaves out: the token counts and the seconds of each stage.
        "usage": usage_entry(diagnosis.usage),
        "truncated": False,
    }


def usage_entry(usage: Usage) -> dict[str, Any]:
    """A diagnosis's cost in the record's fixed shape (stages as a list, not keyed by name)."""
    return {"llmCalls": usage.llm_calls, "promptTokens": usage.prompt_tokens,
            "completionTokens": usage.completion_tokens, "toolCalls": usage.tool_calls,
            "stages": [{"stage": k, "seconds": round(v, 4)} for k, v in usage.seconds.items()]}


def topology_entries(topology: Topology) -> list[dict[str, str]]:
    """The topology as a list of ``{pod, service, node}``, sorted by pod."""
    pods = sorted(set(topology.pods) | set(topology.nodes))
    return [{"pod": pod, "service": topology.pods.get(pod, ""), "node": topology.nodes.get(pod, "")}
            for pod in pods]


def topology_of(record: Mapping[str, Any]) -> Topology:
    """The observed topology a (version-2) record keeps: what an answer could name."""
    entries = record["topology"]
    return Topology(pods={e["pod"]: e["service"] for e in entries},
                    nodes={e["pod"]: e["node"] for e in entries if e["node"]})


def encode_record(record: Mapping[str, Any], max_chars: int = MAX_RECORD_CHARS) -> str:
    """The record as status text (JSON → gzip → base64), shrunk to ``max_chars`` if needed.

    Shrinking stops when no conversation is left: the answer and topology alone always fit
    in practice (a thousand pods take a few tens of kB)."""
    text = _pack(record)
    if len(text) <= max_chars:
        return text
    smaller = copy.deepcopy(dict(record))
    smaller["truncated"] = True
    conversations: list[list[Message]] = smaller["conversations"]
    while len(text) > max_chars and conversations:
        answered = [c for c in conversations if any(_answer(m) for m in c)]
        if answered:
            for message in max(answered, key=_chars):
                if _answer(message):
                    message["content"] = OMITTED
        else:
            conversations.remove(max(conversations, key=_chars))
        text = _pack(smaller)
    return text


def decode_record(text: str) -> dict[str, Any]:
    """The record in ``status.record`` text, as version 2 whatever version it was written in;
    ``InvalidRecord`` saying what is wrong with it."""
    try:
        packed = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise InvalidRecord("a record is base64 text (gzip-compressed JSON); this text is not "
                            "base64") from None
    try:
        value = json.loads(_unpack(packed))
    except ValueError:  # also a UnicodeDecodeError
        raise InvalidRecord("the record unpacks to text that is not JSON") from None
    return checked_record(value)


def _pack(record: Mapping[str, Any]) -> str:
    data = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.b64encode(gzip.compress(data, mtime=0)).decode("ascii")


def _unpack(packed: bytes) -> bytes:
    unzip = zlib.decompressobj(wbits=31)  # gzip framing only
    try:
        data = unzip.decompress(packed, MAX_UNPACKED_BYTES)
    except zlib.error as exc:
        raise InvalidRecord(f"the record is not gzip data ({exc})") from None
    if unzip.unconsumed_tail:
        raise InvalidRecord(f"the record unpacks to more than {MAX_UNPACKED_BYTES} bytes")
    if not unzip.eof:
        raise InvalidRecord("the record's gzip data is cut short")
    return data


def _answer(message: Message) -> bool:
    """A tool turn whose answer is still there."""
    return message["role"] == "tool" and message["content"] != OMITTED


def _chars(conversation: list[Message]) -> int:
    return sum(len(m["content"]) for m in conversation)
