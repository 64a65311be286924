"""The multi-factor failure-localization grader of the ThinkFL paper, as a pure function.

Factors (each in [0, 1]) and their weights:

* ``format``  (0.1): the answer is a list of at least three candidates, each naming a node,
  service or pod.
* ``service`` (0.4): the true service appears; credit 1/rank of its first appearance.
* ``pod``     (0.3): the true pod appears (when the label names one); credit 1/rank.
* ``node``    (0.2): the true node appears (when the label names one); credit 1/rank.

Factors the label cannot check are left out and the weights of the rest renormalized, so a
perfect answer always scores 1.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from thinkfl_operator.core.models import RootCause

WEIGHTS = {"format": 0.1, "service": 0.4, "pod": 0.3, "node": 0.2}


@dataclass(frozen=True)
class Grade:
    score: float  # 0..1
    rank: int | None  # rank of the true service (or pod, or node)
    factors: dict[str, float] = field(default_factory=dict)


def _reciprocal(ranked: Sequence[RootCause], attr: str, value: str) -> tuple[float, int | None]:
    for cause in ranked:
        if getattr(cause, attr) == value:
            return 1.0 / cause.rank, cause.rank
    return 0.0, None


def grade(ranked: Sequence[RootCause], service: str = "", pod: str = "", node: str = "") -> Grade:
    """Score a ranked answer against the true service / pod / node (any may be empty)."""
    well_formed = len(ranked) >= 3 and all(c.node or c.service or c.pod for c in ranked)
    factors = {"format": 1.0 if well_formed else 0.0}
    rank = None
    for attr, value in (("service", service), ("pod", pod), ("node", node)):
        if value:
            factors[attr], r = _reciprocal(ranked, attr, value)
            rank = rank if rank is not None else r
    total_weight = sum(WEIGHTS[k] for k in factors)
    score = sum(WEIGHTS[k] * v for k, v in factors.items()) / total_weight
    return Grade(score=round(score, 4), rank=rank, factors=factors)
