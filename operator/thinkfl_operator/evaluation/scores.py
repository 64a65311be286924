"""R@k and MRR over faults (service-level match, best rank), as in RCLAgent's protocol."""

from __future__ import annotations

from collections.abc import Sequence

from thinkfl_operator.models import RootCause


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
