"""Accuracy over confirmed incidents: live (as graded) and replayed (a model run again).

The rank of the true cause is the one the grader wrote when the incident was confirmed
(``status.grade.rank``, absent when the answer missed it), read from the objects or from exported
rows. These ranks go to ``evaluation.scores.accuracy_table``, the arithmetic behind the
operator's ``thinkfl_accuracy_*`` series too, so the command and the dashboard never disagree.

``replayed_ranks`` runs exported rows through another model (``feedback.replay``) and grades
both the recorded and the replayed answer the way a confirmation is graded, so a model can be
compared with what production answered, incident by incident, before it is rolled out. A
replay's answer is the model's alone, so the recorded answer it is compared with is the
engine's alone too: the deterministic padding production added is left out (``Replayed``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.models import RootCause
from thinkfl_operator.engines.thinkfl.client import ChatClient
from thinkfl_operator.engines.thinkfl.engine import NoAnswer
from thinkfl_operator.feedback.export import is_confirmed
from thinkfl_operator.feedback.grading import causes_of, grade_answer, own_part
from thinkfl_operator.feedback.label import Feedback
from thinkfl_operator.feedback.replay import replay
from thinkfl_operator.feedback.rows import LABEL_KEYS, Checked

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
    """Graded rank of every exported row, by its engine (rows are confirmed by construction;
    ``grade.rank`` 0 or absent: the answer missed)."""
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
    replayed one (None: missed; a model that gave no usable answer missed). Like is graded
    against like: ``recorded`` is the rank in the entries the engine named itself, without the
    deterministic padding production adds after a model's shorter answer (a replay adds none);
    ``served`` is the rank in the answer as production served it."""

    id: str
    label: Feedback
    engine: str
    recorded: int | None
    served: int | None
    padding: int  # padding entries left out of the recorded answer
    replayed: int | None
    answer: list[RootCause]

    @property
    def truth(self) -> str:
        """The true cause as ranked: ``service/NAME``, else the pod or node the label names."""
        return next((f"{k}/{v}" for k in LABEL_KEYS if (v := getattr(self.label, k))), "-")

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "truth": self.truth, "engine": self.engine,
                "recordedRank": self.recorded, "servedRank": self.served,
                "paddingLeftOut": self.padding, "replayedRank": self.replayed,
                "ranked": [c.as_dict() for c in self.answer]}


def replayed_ranks(rows: Iterable[Checked], settings: Settings,
                   client: ChatClient | None = None) -> list[Replayed]:
    """Every checked row (``rows.check_row``) replayed through the model at ``settings.llm``
    (``feedback.replay``) and graded as a confirmation is (``grading.grade_answer``).
    ``LLMUnavailable`` (the endpoint is down) stops the run."""
    return [_replayed(row, settings, client) for row in rows]


def _replayed(checked: Checked, settings: Settings, client: ChatClient | None) -> Replayed:
    try:
        answer = replay(checked.record, settings, client).root_causes
    except NoAnswer:
        answer = []
    served = causes_of(checked.record["answer"])
    own = own_part(served)
    return Replayed(id=str(checked.row["id"]), label=checked.label, engine=checked.record["engine"],
                    recorded=grade_answer(own, checked.label).rank,
                    served=grade_answer(served, checked.label).rank,
                    padding=len(served) - len(own),
                    replayed=grade_answer(answer, checked.label).rank, answer=answer)
