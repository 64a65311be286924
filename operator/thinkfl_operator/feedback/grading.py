"""A diagnosis graded against the SRE's label, and the grade as the status writes it.

The score is the paper's multi-factor grader (``evaluation.grader``). The rank reported is the
rank of the true *service* whenever the label knows it (a validated pod label always does), and
the rank of the true node only for a node-only label. Service level, not the most specific level
the label knows, because R@k and MRR in ``evaluation.scores`` are service-level (RCLAgent's
protocol): ranks of confirmed incidents then add up to the same metric as the dataset
evaluations. How well the pod and node were named is in the factors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from thinkfl_operator.core.models import RootCause
from thinkfl_operator.evaluation.grader import Grade, grade
from thinkfl_operator.evaluation.scores import service_rank
from thinkfl_operator.feedback.label import Feedback


def grade_answer(root_causes: Sequence[RootCause], label: Feedback) -> Grade:
    """The ranked answer graded against a validated label (see ``label.validate``)."""
    graded = grade(root_causes, service=label.service, pod=label.pod, node=label.node)
    if label.service:
        return replace(graded, rank=service_rank(root_causes, label.service))
    return graded


def grade_status(graded: Grade) -> dict[str, Any]:
    """``status.grade``: integer percentages (Kubernetes has no floats), the factors that got
    credit, and the rank when the true cause was named at all."""
    factors = {name: round(100 * credit) for name, credit in graded.factors.items()}
    status: dict[str, Any] = {
        "score": round(100 * graded.score),
        "matched": [name for name, credit in graded.factors.items() if credit > 0],
        "factors": factors,
    }
    if graded.rank is not None:
        status["rank"] = graded.rank
    return status


def causes_of(answer: Iterable[Mapping[str, Any]]) -> list[RootCause]:
    """A recorded answer (``record["answer"]``) as ranked causes, padding flags kept."""
    return [RootCause(rank=a["rank"], node=a.get("node") or "", service=a.get("service") or "",
                      pod=a.get("pod") or "", reason="", score=a.get("score") or 0,
                      padded=a.get("padded") is True)
            for a in answer]


def own_part(causes: Sequence[RootCause]) -> list[RootCause]:
    """The entries the engine named itself, without the padding ranking added after them."""
    return [cause for cause in causes if not cause.padded]
