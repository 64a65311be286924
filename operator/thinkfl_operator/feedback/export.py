"""Training and evaluation records: one JSONL row per confirmed FailureIncident.

What the GRPO training reads (researched November 2026). The ThinkFL training code,
``LLM4AIOps/OpenRLHF-ThinkFL`` (linked from ``LLM4AIOps/ThinkFL`` README.md), could not be read
here: no snapshot of it, nor of a fork under ``Zhang-Lingzhe``, is stored. ThinkFL was trained in
early 2025, so this format follows upstream ``OpenRLHF/OpenRLHF`` as of April 2025 (commit
cf14881, v0.6/0.7) and as of today (commit 3c3be62), whose prompt-dataset convention is the same:

* ``openrlhf/utils/utils.py`` ``blending_datasets``: a ``.jsonl`` file is read with
  ``datasets.load_dataset("json", data_files=...)``, one JSON object per line.
* ``openrlhf/cli/train_ppo_ray.py``: ``--input_key`` (default ``"input"``), ``--label_key``
  (default none), ``--apply_chat_template``, ``--remote_rm_url`` (now ``--data.input_key``,
  ``--data.label_key``, ``--data.apply_chat_template``, ``--reward.remote_url``); GRPO is
  ``--advantage_estimator group_norm`` (``examples/scripts/train_grpo_llama_ray.sh``).
* ``openrlhf/datasets/prompts_dataset.py`` ``preprocess_data``: with ``--apply_chat_template``,
  ``data[input_key]`` is a chat, a list of ``{"role", "content"}`` messages (a bare string is
  wrapped as one user message), rendered with the tokenizer's template and
  ``add_generation_prompt=True``; ``data[label_key]`` is passed through untouched.
* ``examples/scripts/reward_func.py`` (now ``examples/python/reward_func.py``): the reward is
  ``reward_func(queries, prompts, labels)``, ``labels`` being those values, one per prompt;
  the remote HTTP reward gets ``{"query", "prompts", "labels"}``
  (``openrlhf/utils/remote_rm_utils.py``). Multi-turn rollouts with tool answers, added since,
  use ``--train.agent_func_path`` (``examples/python/agent_func.py``: the environment's
  ``step`` gets ``states["label"]``).

So each row carries ``input``: the chat the rollout starts from (the system prompt and the first
user message, the root span, of the incident's first conversation), for ``--input_key input
--apply_chat_template``; and ``label``: a JSON string with the confirmed ``service``/``pod``/
``node`` (only those known), the keys a ``print_results`` root cause uses, for ``--label_key
label``. A string keeps the Arrow column one type whatever each label names; the reward function
``json.loads`` it and compares candidates key by key, as RCLAgent's ``evaluate.py`` compares
``cmdb_id`` at the label's level (``LLM4AIOps/RCLAgent-V2``). The multi-factor reward itself
(``evaluation.grader``) is ours; the fork's was not available to compare with.

The rest of the row is ours: the diagnosis record (schema version 1: ``incident``, ``engine``,
``model``, ``conversations`` exactly as the model saw them, ``answer``, ``topology``), ``grade``,
``feedback`` and ``id`` (namespace/name), so the same file replays as an evaluation set.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from thinkfl_operator.errors import UserInputError
from thinkfl_operator.feedback.label import (
    SPEC_KEYS,
    Feedback,
    InvalidFeedback,
    feedback_of,
    validate,
)
from thinkfl_operator.feedback.record import (
    InvalidRecord,
    decode_record,
    encode_record,
    topology_of,
)

#: The keys of the diagnosis record (schema version 1) a row carries unchanged.
RECORD_KEYS = ("version", "incident", "engine", "model", "conversations", "answer", "topology",
               "truncated")
LABEL_KEYS = ("service", "pod", "node")


def is_confirmed(obj: Mapping[str, Any]) -> bool:
    """An SRE confirmed the true cause: a ``Confirmed`` condition with status "True"."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Confirmed" and c.get("status") == "True" for c in conditions)


def records_from_objects(objects: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], Counter[str]]:
    """A row per confirmed incident, and how many were skipped for which reason:
    ``unconfirmed``, ``no record``, ``no label`` (confirmed without one), ``invalid record``,
    ``invalid label`` (its names are not in the record's topology)."""
    rows: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    for obj in objects:
        row = _row_or_reason(obj)
        if isinstance(row, str):
            skipped[row] += 1
        else:
            rows.append(row)
    return rows, skipped


def _row_or_reason(obj: Mapping[str, Any]) -> dict[str, Any] | str:
    if not is_confirmed(obj):
        return "unconfirmed"
    if not (obj.get("status") or {}).get("record"):
        return "no record"
    try:
        row = _training_row(obj)
    except InvalidRecord:
        return "invalid record"
    except InvalidFeedback:
        return "invalid label"
    return "no label" if row is None else row


def _training_row(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The row of one confirmed incident; None when it has no label. ``InvalidRecord`` or
    ``InvalidFeedback`` when its record or label cannot be used."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    record = decode_record(status["record"])
    given = feedback_of(obj.get("spec") or {}, meta.get("annotations") or {})
    if given is None:
        return None
    feedback = validate(given, topology_of(record))  # a pod label brings its service and node
    conversations = record["conversations"]
    if not conversations:
        raise InvalidRecord("the record holds no conversation")
    row: dict[str, Any] = {"id": f"{meta.get('namespace', '')}/{meta.get('name', '')}",
                           "input": _opening(conversations[0]),
                           "label": json.dumps({k: getattr(feedback, k) for k in LABEL_KEYS
                                                if getattr(feedback, k)}, sort_keys=True)}
    row.update({k: record[k] for k in RECORD_KEYS if k in record})
    row["grade"] = status.get("grade")
    row["feedback"] = {key: value for key, attr in SPEC_KEYS.items() if (value := getattr(feedback, attr))}
    return row


def _opening(conversation: list[dict[str, str]]) -> list[dict[str, str]]:
    """The messages up to and including the first user message: where a rollout starts."""
    for i, message in enumerate(conversation):
        if message.get("role") == "user":
            return [dict(m) for m in conversation[: i + 1]]
    raise InvalidRecord("a conversation has no user message")


def diagnosis_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """The diagnosis record (schema version 1) inside a row, e.g. for a replay, checked as
    ``status.record`` text is (``InvalidRecord``): rows come from files anyone may edit."""
    return decode_record(encode_record({k: row[k] for k in RECORD_KEYS if k in row}))


def label_of(row: Mapping[str, Any]) -> Feedback:
    """A row's label (``UserInputError`` naming the row when it is not a JSON object string)."""
    try:
        label = json.loads(row["label"])
    except (KeyError, TypeError, json.JSONDecodeError):
        label = None
    if not isinstance(label, dict):
        raise UserInputError(f"record {row.get('id', '?')}: 'label' is not a JSON object string")
    return Feedback(**{k: str(label.get(k) or "") for k in LABEL_KEYS})


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """One compact JSON object per line, UTF-8."""
    try:
        with Path(path).open("w", encoding="utf-8") as out:
            out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    except OSError as exc:
        raise UserInputError(f"{path}: cannot write: {exc.strerror or exc}") from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every row of a JSONL file (blank lines skipped); a bad line names the file and line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserInputError(f"{path}:{number}: not JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(row, dict):
            raise UserInputError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows
