"""From key shifts to pod suspicion: the strongest shift a pod owns, plus its corroboration."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from thinkfl_operator.engines.heuristic.signals import Shift
from thinkfl_operator.evidence.formatting import ms

#: How much each kind of shift counts. Latency kinds are measured in robust z units already.
KIND_WEIGHT = {"self": 1.0, "net": 1.0, "short": 0.6, "error": 1.0, "fanout": 0.6, "truncated": 1.0, "share": 1.0}
#: Shifts below this z are noise and ignored.
MIN_Z = 3.0


@dataclass
class PodEvidence:
    pod: str
    service: str
    score: float = 0.0
    shifts: list[Shift] = field(default_factory=list)
    metric_bonus: float = 0.0
    metric_reason: str = ""

    @property
    def best(self) -> Shift | None:
        return max(self.shifts, key=_strength) if self.shifts else None

    def reason(self) -> str:
        best = self.best
        parts = [_describe(best)] if best else []
        if self.metric_reason:
            parts.append(self.metric_reason)
        return "; ".join(parts) or "no anomaly found (padding candidate)"


def _strength(shift: Shift) -> float:
    return KIND_WEIGHT.get(shift.kind, 1.0) * math.log1p(max(shift.z, 0.0))


def _describe(s: Shift) -> str:
    if s.kind == "self":
        return f"own time of {s.operation} {ms(int(s.baseline))} → {ms(int(s.window))}"
    if s.kind == "net":
        return f"calls from {s.caller} into {s.operation} wait {ms(int(s.baseline))} → {ms(int(s.window))} outside the callee"
    if s.kind == "short":
        return f"{s.operation} ends early: {ms(int(s.baseline))} → {ms(int(s.window))}"
    if s.kind == "error":
        return f"{s.operation} error share {s.baseline:.0%} → {s.window:.0%}"
    if s.kind == "share":
        return f"{s.operation}: {ms(int(s.window))} ({s.z:.0f}% of the trace)"
    if s.kind == "truncated":
        return f"{s.window:.0%} of the calls that ended early stopped right after calling it"
    return f"{s.operation} makes fewer calls: {s.baseline:.1f} → {s.window:.1f} per span"


def score_pods(shifts: list[Shift]) -> dict[str, PodEvidence]:
    """Pod → evidence; score = strongest shift plus a little for each other strong one."""
    by_pod: dict[str, PodEvidence] = {}
    for shift in shifts:
        if shift.z < MIN_Z:
            continue
        ev = by_pod.setdefault(shift.pod, PodEvidence(shift.pod, shift.service))
        ev.shifts.append(shift)
    for ev in by_pod.values():
        strengths = sorted((_strength(s) for s in ev.shifts), reverse=True)
        ev.score = strengths[0] + 0.25 * sum(strengths[1:3])
    return by_pod
