"""Training and evaluation records: one JSONL row (``rows``) per confirmed FailureIncident.

What the GRPO training reads (researched November 2026). The ThinkFL training code,
``LLM4AIOps/OpenRLHF-ThinkFL`` (linked from ``LLM4AIOps/ThinkFL`` README.md), could not be read
here: no snapshot of it, nor of a fork under ``Zhang-Lingzhe``, is stored. ThinkFL was trained in
early 2025, so this format follows upstream ``OpenRLHF/OpenRLHF`` as of April 2025 (commit
cf14881, v0.6/0.7) and as of today (commit 3c3be62), whose prompt-dataset convention is the same:

* ``openrlhf/utils/utils.py`` (now ``openrlhf/datasets/utils.py``) ``blending_datasets``: a
  ``.jsonl`` file is read with ``datasets.load_dataset("json", data_files=...)``, one JSON object
  per line. Arrow infers one schema per chunk and casts the others to it, so every row must have
  the same shape (``rows``): a key named after a pod in one row and another pod in the next fails
  ("Couldn't cast array of type struct<...>").
* ``openrlhf/cli/train_ppo_ray.py``: ``--input_key`` (default ``"input"``), ``--label_key``
  (default none), ``--apply_chat_template``, ``--remote_rm_url`` (now ``--data.input_key``,
  ``--data.label_key``, ``--data.apply_chat_template``, ``--reward.remote_url``); GRPO is
  ``--advantage_estimator group_norm`` (now ``--algo.advantage.estimator group_norm``).
* ``openrlhf/datasets/prompts_dataset.py`` ``preprocess_data``: with ``--apply_chat_template``,
  ``data[input_key]`` is a chat, a list of ``{"role", "content"}`` messages (a bare string is
  wrapped as one user message), rendered with the tokenizer's template and
  ``add_generation_prompt=True``; ``data[label_key]`` is passed through untouched.
* ``examples/scripts/reward_func.py`` (now ``examples/python/reward_func.py``): the reward is
  ``reward_func(queries, prompts, labels)``, ``labels`` being those values, one per prompt; it
  returned a tensor, and since May 2025 returns ``{"rewards", "scores", "extra_logs"}``. The
  remote HTTP reward gets ``{"query", "prompts", "labels"}``. ``examples/openrlhf/`` in this
  repository has a reward function built on our parser and grader.

So each row carries ``input``: the chat the rollout starts from (the system prompt and the first
user message, the root span, of the incident's first conversation); and ``label``: a JSON string
with the confirmed ``service``/``pod``/``node`` (only those known), the keys a ``print_results``
root cause uses. A string keeps the Arrow column one type whatever each label names; the reward
``json.loads`` it and compares candidates key by key, as RCLAgent's ``evaluate.py`` compares
``cmdb_id`` at the label's level (``LLM4AIOps/RCLAgent-V2``). The multi-factor reward itself
(``evaluation.grader``) is ours; the fork's was not available to compare with.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from thinkfl_operator.core.errors import UserInputError
from thinkfl_operator.feedback.grading import causes_of, grade_answer
from thinkfl_operator.feedback.label import InvalidFeedback, feedback_of, validate
from thinkfl_operator.feedback.record import InvalidRecord, decode_record, topology_of
from thinkfl_operator.feedback.rows import make_row


def is_confirmed(obj: Mapping[str, Any]) -> bool:
    """An SRE confirmed the true cause: a ``Confirmed`` condition with status "True"."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Confirmed" and c.get("status") == "True" for c in conditions)


def object_id(obj: Mapping[str, Any]) -> str:
    """``namespace/name`` of an object: a row's ``id``."""
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


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
    label = validate(given, topology_of(record))  # a pod label brings its service and node
    return make_row(object_id(obj), record, label, grade_answer(causes_of(record["answer"]), label))


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """One compact JSON object per line, UTF-8."""
    try:
        with Path(path).open("w", encoding="utf-8") as out:
            out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    except OSError as exc:
        raise UserInputError(f"{path}: cannot write: {exc.strerror or exc}") from None


def read_numbered(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Every row of a JSONL file with its line number (blank lines skipped); a bad line names
    the file and line."""
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
        rows.append((number, row))
    return rows


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every row of a JSONL file (see ``read_numbered``)."""
    return [row for _, row in read_numbered(path)]
