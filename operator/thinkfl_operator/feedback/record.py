"""One diagnosis as a self-contained record, kept on the resource as ``status.record``.

The record holds what is needed to learn from the incident later, with no other storage: the
incident, the engine and model, the exact conversations (see ``conversations``), the ranked
answer and the observed topology. Schema, version 1::

    {"version": 1,
     "incident": {"time": RFC 3339 str or null, "traceID": str, "service": str,
                  "description": str},
     "engine": str, "model": str,
     "conversations": [[{"role": "system" | "user" | "assistant" | "tool",
                         "content": str}, ...], ...],
     "answer": [{"rank": int, "service": str, "pod": str, "node": str, "score": int}, ...],
     "topology": {"pods": {pod: service}, "nodes": {pod: node}},
     "truncated": true}     # present only when encode_record had to shrink the record

On the resource it is one ASCII string: compact JSON, gzip with a zero mtime (one record always
encodes to the same text, so an unchanged status is not rewritten), base64. It is kept under
``MAX_RECORD_CHARS`` (etcd stores objects up to 1.5 MiB): a bigger record loses the tool answers
of its longest conversations first (each becomes "[omitted]"), then whole conversations.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from thinkfl_operator.errors import UserInputError
from thinkfl_operator.feedback.conversations import Message, conversations_of
from thinkfl_operator.models import Diagnosis, Incident, Topology

VERSION = 1
MAX_RECORD_CHARS = 1_048_576
OMITTED = "[omitted]"
#: Most bytes a record may unpack to (a guard against gzip bombs in imported files).
MAX_UNPACKED_BYTES = 64 * 1024 * 1024
ROLES = ("system", "user", "assistant", "tool")
_SHAPE: dict[str, tuple[type, str]] = {
    "incident": (dict, "an object"), "engine": (str, "a string"), "model": (str, "a string"),
    "conversations": (list, "a list"), "answer": (list, "a list"), "topology": (dict, "an object"),
}


class InvalidRecord(UserInputError):
    """A record that cannot be read: not base64, not gzip, not JSON, or not the version-1
    schema. Not retryable: the text itself is wrong."""


def build_record(diagnosis: Diagnosis, incident: Incident) -> dict[str, Any]:
    """The version-1 record of ``diagnosis`` (see the module docstring)."""
    return {
        "version": VERSION,
        "incident": {"time": _rfc3339(incident.time_s), "traceID": incident.trace_id,
                     "service": incident.service, "description": incident.description},
        "engine": diagnosis.engine,
        "model": diagnosis.model,
        "conversations": conversations_of(diagnosis),
        "answer": [{"rank": c.rank, "service": c.service, "pod": c.pod, "node": c.node,
                    "score": c.score} for c in diagnosis.root_causes],
        "topology": {"pods": dict(diagnosis.topology.pods), "nodes": dict(diagnosis.topology.nodes)},
    }


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
    """The record in ``status.record`` text; ``InvalidRecord`` saying what is wrong with it."""
    try:
        packed = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise InvalidRecord("a record is base64 text (gzip-compressed JSON); this text is not "
                            "base64") from None
    try:
        value = json.loads(_unpack(packed))
    except ValueError:  # also a UnicodeDecodeError
        raise InvalidRecord("the record unpacks to text that is not JSON") from None
    return _checked(value)


def topology_of(record: Mapping[str, Any]) -> Topology:
    """The observed topology a record keeps (what an answer could name)."""
    topology = record["topology"]
    return Topology(pods={str(k): str(v) for k, v in topology["pods"].items()},
                    nodes={str(k): str(v) for k, v in topology["nodes"].items()})


def _rfc3339(time_s: float | None) -> str | None:
    if time_s is None:
        return None
    return datetime.fromtimestamp(time_s, UTC).isoformat().replace("+00:00", "Z")


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


def _checked(value: object) -> dict[str, Any]:
    """``value`` if it has the version-1 shape; else the first problem as an InvalidRecord."""
    if not isinstance(value, dict):
        raise InvalidRecord(f"a record is a JSON object, not {type(value).__name__}")
    if value.get("version") != VERSION:
        raise InvalidRecord(f"record version {value.get('version')!r} is not supported "
                            f"(this operator reads version {VERSION})")
    for key, (kind, noun) in _SHAPE.items():
        if not isinstance(value.get(key), kind):
            raise InvalidRecord(f"the record's {key!r} is missing or not {noun}")
    if not all(isinstance(value["topology"].get(k), dict) for k in ("pods", "nodes")):
        raise InvalidRecord("the record's topology needs 'pods' and 'nodes' objects")
    for number, conversation in enumerate(value["conversations"], 1):
        if not isinstance(conversation, list) or not all(_is_message(m) for m in conversation):
            raise InvalidRecord(f"the record's conversation {number} is not a list of "
                                f"{{role: {'|'.join(ROLES)}, content: text}} messages")
    if not all(isinstance(a, dict) for a in value["answer"]):
        raise InvalidRecord("the record's answer is not a list of objects")
    return value


def _is_message(value: object) -> bool:
    return isinstance(value, dict) and value.get("role") in ROLES \
        and isinstance(value.get("content"), str)
