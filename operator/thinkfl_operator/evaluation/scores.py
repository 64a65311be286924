"""R@k and MRR over faults (service-level match, best rank), as in RCLAgent's protocol."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypedDict

from thinkfl_operator.core.models import RootCause


def service_rank(ranked: Sequence[RootCause], service: str) -> int | None:
    """1-based rank of the first cause naming ``service``; None when absent."""
    for cause in ranked:
        if cause.service == service:
            return cause.rank
    return None


def pod_rank(ranked: Sequence[RootCause], pod: str) -> int | None:
    for cause in ranked:
        if cause.pod == pod:
            return cause.rank
    return None


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    """Share of faults whose true cause is within the first k (absent counts as a miss)."""
    if not ranks:
        return 0.0
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def mrr(ranks: Sequence[int | None]) -> float:
    if not ranks:
        return 0.0
    return sum(1.0 / r for r in ranks if r) / len(ranks)


#: The k of the recall columns in accuracy tables (CLI report, operator metrics).
RECALL_KS = (1, 3, 5)


class AccuracyRow(TypedDict):
    """One engine's accuracy over its confirmed incidents."""

    engine: str
    count: int
    r1: float
    r3: float
    r5: float
    mrr: float


def accuracy_table(ranks_by_engine: Mapping[str, Sequence[int | None]]) -> list[AccuracyRow]:
    """R@1/3/5 and MRR per engine (sorted by name); a rank is 1-based, None when absent."""
    return [
        AccuracyRow(engine=engine, count=len(ranks), r1=recall_at(ranks, 1),
                    r3=recall_at(ranks, 3), r5=recall_at(ranks, 5), mrr=mrr(ranks))
        for engine, ranks in sorted(ranks_by_engine.items())
    ]
