"""The diagnosis record's schema checked (see ``record`` for the schema itself).

A record comes from a status or from a file anyone may edit, so it is checked before use, and a
record of version 1 is upgraded to version 2 (``legacy``): the rest of the code reads version 2
only. The schema is the pydantic models below (``RecordV1``, ``RecordV2``: what they share is
``_Common``); the first problem is raised as an ``InvalidRecord`` saying which part of the record
is wrong. Messages keep exactly ``role`` and ``content``.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from thinkfl_operator.core.errors import UserInputError
from thinkfl_operator.feedback import legacy

VERSIONS = (1, 2)
ROLES = ("system", "user", "assistant", "tool")
_INCIDENT_KEYS = ("time", "traceID", "service", "description")
_READ = ConfigDict(strict=True, extra="ignore")
_Model = TypeVar("_Model", bound=BaseModel)


class InvalidRecord(UserInputError):
    """A record that cannot be read: not base64, not gzip, not JSON, or not a known schema
    version. Not retryable: the text itself is wrong."""


class RecordMessage(BaseModel):
    model_config = _READ

    role: Literal["system", "user", "assistant", "tool"]
    content: str


class AnswerEntry(BaseModel):
    model_config = _READ

    rank: int
    service: str = ""
    pod: str = ""
    node: str = ""
    score: Any = None  # an integer; anything else reads as 0
    padded: Any = None  # true, or not padded


class TopologyEntry(BaseModel):
    model_config = _READ

    pod: str = Field(min_length=1)
    service: str
    node: str


class TopologyV1(BaseModel):
    model_config = _READ

    pods: dict[str, Any]
    nodes: dict[str, Any]


class _Common(BaseModel):
    model_config = _READ

    incident: dict[str, Any]
    engine: str
    model: str
    conversations: list[list[RecordMessage]]
    answer: list[AnswerEntry]


class RecordV1(_Common):
    topology: TopologyV1


class RecordV2(_Common):
    topology: list[TopologyEntry]
    truncated: bool
    # Optional (records before log evidence have neither): what the logs showed.
    log_evidence: Any = Field(None, alias="logEvidence")
    log_lead: Any = Field(None, alias="logLead")
    usage: Any = None  # optional too (records before it have none)


#: What each part of a record must be, as a message says it.
_NOUNS = {"incident": "an object", "engine": "a string", "model": "a string",
          "conversations": "a list", "answer": "a list"}


def checked_record(value: object) -> dict[str, Any]:
    """``value`` as a version-2 record; else the first problem as an ``InvalidRecord``."""
    if not isinstance(value, dict):
        raise InvalidRecord(f"a record is a JSON object, not {type(value).__name__}")
    version = value.get("version")
    if version not in VERSIONS or isinstance(version, bool):
        raise InvalidRecord(f"record version {version!r} is not supported (this operator reads "
                            f"versions {', '.join(map(str, VERSIONS))})")
    if version == 1:
        _validated(RecordV1, value)
        value = legacy.upgrade(value)
    record = _validated(RecordV2, value)
    return {"version": 2, "incident": {k: str(record.incident.get(k) or "") for k in _INCIDENT_KEYS},
            "engine": record.engine, "model": record.model,
            "conversations": [[m.model_dump() for m in c] for c in record.conversations],
            "answer": [_cause(a) for a in record.answer],
            "topology": [e.model_dump() for e in record.topology],
            "logEvidence": [x for x in record.log_evidence or [] if isinstance(x, str)],
            "logLead": str(record.log_lead or ""),
            "usage": _usage(record.usage),
            "truncated": record.truncated}


def _usage(value: Any) -> dict[str, Any]:
    """The record's ``usage`` in its fixed shape (zeros and no stages when absent or malformed)."""
    given = value if isinstance(value, dict) else {}
    counts = {k: _count(given.get(k)) for k in ("llmCalls", "promptTokens", "completionTokens", "toolCalls")}
    stages = [{"stage": str(s.get("stage", "")), "seconds": float(s["seconds"])}
              for s in given.get("stages") or [] if isinstance(s, dict)
              and isinstance(s.get("seconds"), int | float) and not isinstance(s.get("seconds"), bool)]
    return {**counts, "stages": stages}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _validated(model: type[_Model], value: dict[str, Any]) -> _Model:
    try:
        return model.model_validate(value)
    except ValidationError as err:
        raise InvalidRecord(_problem(err.errors()[0], model)) from None


def _problem(error: ErrorDetails, model: type[BaseModel]) -> str:
    """The first problem of a record as a sentence naming the part that is wrong."""
    key, deep = str(error["loc"][0]), len(error["loc"]) > 1
    if key == "conversations" and deep:
        return (f"the record's conversation {int(error['loc'][1]) + 1} is not a list of "
                f"{{role: {'|'.join(ROLES)}, content: text}} messages")
    if key == "answer" and deep:
        return "the record's answer is not a list of {rank: integer, service, pod, node} objects"
    if key == "topology":
        return ("the record's topology needs 'pods' and 'nodes' objects" if model is RecordV1
                else "the record's 'topology' is not a list of {pod, service, node} objects of "
                     "strings")
    if key == "truncated":
        return "the record's 'truncated' is missing or not true/false"
    return f"the record's {key!r} is missing or not {_NOUNS.get(key, 'readable')}"


def _cause(cause: AnswerEntry) -> dict[str, Any]:
    score = cause.score if isinstance(cause.score, int) and not isinstance(cause.score, bool) else 0
    return {"rank": cause.rank, "service": cause.service, "pod": cause.pod, "node": cause.node,
            "score": score, "padded": cause.padded is True}
