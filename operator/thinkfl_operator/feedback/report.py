"""Accuracy over confirmed incidents: live (as graded) and replayed (a model run again).

The rank of the true cause is the one the grader wrote when the incident was confirmed
(``status.grade.rank``, absent when the answer missed it), read from the objects or from exported
rows. These ranks go to ``evaluation.scores.accuracy_table``, the arithmetic behind the
operator's ``thinkfl_accuracy_*`` series too, so the command and the dashboard never disagree.

``replayed_ranks`` runs exported rows through another model (``feedback.replay``) and grades
both the recorded and the replayed answer the way a confirmation is graded, so a model can be
compared with what production answered, incident by incident, before it is rolled out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from thinkfl_operator.engines.thinkfl.client import ChatClient
from thinkfl_operator.engines.thinkfl.engine import NoAnswer
from thinkfl_operator.feedback.export import LABEL_KEYS, diagnosis_record, is_confirmed, label_of
from thinkfl_operator.feedback.grading import grade_answer
from thinkfl_operator.feedback.label import Feedback
from thinkfl_operator.feedback.record import InvalidRecord
from thinkfl_operator.feedback.replay import replay
from thinkfl_operator.models import RootCause
from thinkfl_operator.settings import Settings

Ranks = dict[str, list[int | None]]


def ranks_from_objects(objects: Iterable[Mapping[str, Any]]) -> Ranks:
    """Graded rank of every confirmed FailureIncident, by ``status.engine``."""
    ranks: Ranks = {}
    for obj in objects:
        status = obj.get("status") or {}
        if is_confirmed(obj) and isinstance(status.get("grade"), Mapping):
            ranks.setdefault(status.get("engine") or "unknown", []).append(_rank(status["grade"]))
    return ranks


def ranks_from_records(rows: Iterable[Mapping[str, Any]]) -> Ranks:
    """Graded rank of every exported row, by its engine (rows are confirmed by construction)."""
    ranks: Ranks = {}
    for row in rows:
        if isinstance(row.get("grade"), Mapping):
            ranks.setdefault(row.get("engine") or "unknown", []).append(_rank(row["grade"]))
    return ranks


def merge(*parts: Ranks) -> Ranks:
    """Ranks from several sources, engine by engine."""
    merged: Ranks = {}
    for part in parts:
        for engine, ranks in part.items():
            merged.setdefault(engine, []).extend(ranks)
    return merged


def _rank(grade: Mapping[str, Any]) -> int | None:
    rank = grade.get("rank")
    return rank if isinstance(rank, int) and not isinstance(rank, bool) and rank >= 1 else None


@dataclass(frozen=True)
class Replayed:
    """One exported row replayed: the rank of its true cause in the recorded answer and in the
    replayed one (None: missed; a model that gave no usable answer missed)."""

    id: str
    label: Feedback
    recorded: int | None
    replayed: int | None
    answer: list[RootCause]

    @property
    def truth(self) -> str:
        """The true cause as ranked: ``service/NAME``, else the pod or node the label names."""
        return next((f"{k}/{v}" for k in LABEL_KEYS if (v := getattr(self.label, k))), "-")

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "truth": self.truth, "recordedRank": self.recorded,
                "replayedRank": self.replayed, "ranked": [c.as_dict() for c in self.answer]}


def replayed_ranks(rows: Iterable[Mapping[str, Any]], settings: Settings,
                   client: ChatClient | None = None) -> tuple[list[Replayed], Counter[str]]:
    """Every row replayed through the model at ``settings.llm`` (``feedback.replay``) and graded
    as a confirmation is (``grading.grade_answer``), and the rows that could not be replayed.
    ``LLMUnavailable`` (the endpoint is down) stops the run."""
    results: list[Replayed] = []
    skipped: Counter[str] = Counter()
    for row in rows:
        label = label_of(row)
        try:
            record = diagnosis_record(row)
            answer = replay(record, settings, client).root_causes
        except InvalidRecord:
            skipped["invalid record"] += 1
            continue
        except NoAnswer:
            answer = []
        results.append(Replayed(id=str(row.get("id", "")), label=label,
                                recorded=grade_answer(_causes(record["answer"]), label).rank,
                                replayed=grade_answer(answer, label).rank, answer=answer))
    return results, skipped


def _causes(answer: Iterable[Mapping[str, Any]]) -> list[RootCause]:
    """A recorded answer as ranked causes."""
    return [RootCause(rank=a["rank"], node=a.get("node") or "", service=a.get("service") or "",
                      pod=a.get("pod") or "", reason="", score=a.get("score") or 0)
            for a in answer if isinstance(a.get("rank"), int)]
