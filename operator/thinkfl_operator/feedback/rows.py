"""One exported row (schema version 2): a confirmed incident as training and evaluation data.

Every row has the same shape whatever the incident, so a file of rows loads as one Arrow table
(HuggingFace ``datasets.load_dataset("json")``, as OpenRLHF reads it): no key is a name from the
cluster, no value is null, every key is always there, and the parts whose shape varies (the
diagnosis record and the label) are JSON strings::

    {"version": 2,
     "id": "namespace/name" (redacted: "fi-" and a hash),
     "redacted": bool,
     "input": [{"role": "system", "content": str}, {"role": "user", "content": str}],
     "label": JSON string {"service"?, "pod"?, "node"?},
     "engine": str, "model": str,
     "grade": {"score": int, "rank": int (0: not in the answer),
               "factors": {"format" | "service" | "pod" | "node":
                           {"checked": bool, "credit": int}}},
     "feedback": {"service", "pod", "node", "faultType", "note", "by": str ("" when not given)},
     "record": JSON string, the diagnosis record (``record``, version 2)}

``input`` and ``label`` are what OpenRLHF reads (``--input_key input --label_key label
--apply_chat_template``, see ``export``). The grade is of the answer production served, scored
as the confirmation scored it (percentages; a factor the label cannot check is not ``checked``).
Rows of version 1 (the record's keys at the top of the row) are still read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from thinkfl_operator.core.errors import UserInputError
from thinkfl_operator.evaluation.grader import WEIGHTS, Grade
from thinkfl_operator.feedback.grading import causes_of, grade_answer
from thinkfl_operator.feedback.label import SPEC_KEYS, Feedback, validate
from thinkfl_operator.feedback.opening import root_of
from thinkfl_operator.feedback.record import topology_of
from thinkfl_operator.feedback.shape import InvalidRecord, checked_record

ROW_VERSION = 2
LABEL_KEYS = ("service", "pod", "node")
#: Where a row's label is named in messages (``label pod "x" is not in …``).
LABEL_ORIGIN = "label"
#: The diagnosis record's keys at the top of a version-1 row.
_V1_KEYS = ("version", "incident", "engine", "model", "conversations", "answer", "topology",
            "truncated")


@dataclass(frozen=True)
class Checked:
    """A row that passed ``check_row``: its record (version 2) and its validated label."""

    row: Mapping[str, Any]
    record: dict[str, Any]
    label: Feedback


def make_row(row_id: str, record: Mapping[str, Any], label: Feedback, graded: Grade) -> dict[str, Any]:
    """The row of a confirmed incident: ``label`` validated against the record's topology."""
    if not record["conversations"]:
        raise InvalidRecord("the record holds no conversation")
    return {"version": ROW_VERSION, "id": row_id, "redacted": False,
            "input": opening(record["conversations"][0]),
            "label": label_json(label),
            "engine": record["engine"], "model": record["model"],
            "grade": row_grade(graded),
            "feedback": {key: getattr(label, attr) for key, attr in SPEC_KEYS.items()},
            "record": json.dumps(record, ensure_ascii=False, separators=(",", ":"))}


def label_json(label: Feedback) -> str:
    """The label as OpenRLHF passes it to the reward: the names it knows, as a JSON string."""
    return json.dumps({k: getattr(label, k) for k in LABEL_KEYS if getattr(label, k)}, sort_keys=True)


def row_grade(graded: Grade) -> dict[str, Any]:
    """The grade with the same keys whatever the label names (see the module docstring)."""
    return {"score": round(100 * graded.score), "rank": graded.rank or 0,
            "factors": {name: {"checked": name in graded.factors,
                               "credit": round(100 * graded.factors.get(name, 0.0))}
                        for name in WEIGHTS}}


def opening(conversation: list[dict[str, str]]) -> list[dict[str, str]]:
    """The messages up to and including the first user message: where a rollout starts."""
    for i, message in enumerate(conversation):
        if message.get("role") == "user":
            return [{"role": m["role"], "content": m["content"]} for m in conversation[: i + 1]]
    raise InvalidRecord("a conversation has no user message")


def record_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The diagnosis record (version 2) a row carries; ``InvalidRecord`` when unreadable."""
    if "record" not in row and row.get("version") == 1:
        return checked_record({k: row[k] for k in _V1_KEYS if k in row})
    text = row.get("record")
    if not isinstance(text, str):
        raise InvalidRecord("'record' is missing or not a JSON string")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRecord(f"'record' is not JSON: {exc.msg} (column {exc.colno})") from None
    return checked_record(value)


def label_of(row: Mapping[str, Any]) -> Feedback:
    """A row's label, as written (``UserInputError`` naming the field when it is malformed)."""
    try:
        label = json.loads(row["label"])
    except (KeyError, TypeError, json.JSONDecodeError):
        label = None
    if not isinstance(label, dict):
        raise UserInputError("'label' is missing or not a JSON object string")
    unknown = sorted(set(label) - set(LABEL_KEYS))
    wrong = [k for k in LABEL_KEYS if not isinstance(label.get(k, ""), str)]
    if unknown or wrong:
        raise UserInputError(f"'label' key {(unknown + wrong)[0]!r} is not one of "
                             f"{', '.join(LABEL_KEYS)} with a string value")
    return Feedback(origin=LABEL_ORIGIN, **{k: label.get(k, "").strip() for k in LABEL_KEYS})


def check_row(row: Mapping[str, Any]) -> Checked:
    """Everything a row is used for, checked: its record reads, it has conversations that open
    as the model was shown them, its label names a cause of the record's topology."""
    if not isinstance(row.get("id"), str) or not row["id"]:
        raise UserInputError("'id' is missing or not a string")
    record = record_of(row)
    if not record["conversations"]:
        raise InvalidRecord("the record holds no conversation: there is nothing to replay")
    for number, conversation in enumerate(record["conversations"], 1):
        if [m["role"] for m in conversation[:2]] != ["system", "user"]:
            raise InvalidRecord(f"the record's conversation {number} does not open with a "
                                "system prompt and a user message")
        root_of(conversation[1]["content"], {})  # the replay reopens it from its root span
    label = validate(label_of(row), topology_of(record))
    return Checked(row=row, record=record, label=label)


def rebuilt(checked: Checked) -> dict[str, Any]:
    """A checked row in the shape of this version, whatever version or extra keys it had: the
    grade scored again from its record (the same answer and label give the same grade)."""
    given = checked.row.get("feedback")
    given = given if isinstance(given, Mapping) else {}
    notes = {attr: str(given.get(key) or "") for key, attr in SPEC_KEYS.items()
             if attr in ("fault_type", "note", "by")}
    label = replace(checked.label, **notes)
    row = make_row(str(checked.row["id"]), checked.record, label,
                   grade_answer(causes_of(checked.record["answer"]), label))
    row["redacted"] = checked.row.get("redacted") is True
    return row


def namespace_of(row: Mapping[str, Any]) -> str:
    """The namespace in a row's ``id`` (``namespace/name``); "" for a redacted row."""
    row_id = str(row.get("id") or "")
    return row_id.split("/", 1)[0] if "/" in row_id else ""
