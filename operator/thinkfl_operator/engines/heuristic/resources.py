"""CPU shifts per pod: how far a pod's CPU in the incident window left its own history.

The metrics tool (``search_fluctuating_metrics``) keeps the reference semantics the model was
trained on (±10 min against ±20 min), which blur a fault of a few minutes. The engine's own
resource signal is sharper: the pod's mean CPU in the window against the median and MAD of the
20 minutes before it, a robust z. CPU contention and runaway loops show here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from thinkfl_operator.telemetry.store import Store

#: History before the window (seconds) and the guard between them. 20 minutes: inside what a
#: live store reads for the metrics tool anyway (``live.METRIC_HORIZON_S``), so the CPU shift
#: costs no second round of Prometheus queries.
HISTORY_S = 1200.0
GUARD_S = 60.0
#: Fewest history samples for a z.
MIN_HISTORY = 5
#: Scale floors: 5 % of the usual value, and an absolute minimum.
REL_FLOOR = 0.05
ABS_FLOOR = 1e-3


@dataclass(frozen=True, slots=True)
class CpuShift:
    pod: str
    service: str
    kpi: str
    before: float
    during: float
    z: float

    def describe(self) -> str:
        return f"{self.kpi} {self.before:.2f} → {self.during:.2f} (robust z {self.z:.0f})"


def cpu_shifts(store: Store, start_s: float, end_s: float) -> dict[str, CpuShift]:
    """Service → its pod with the strongest CPU rise in [start_s, end_s) against its history."""
    pods = store.metric_pods()
    if not pods:
        return {}
    frames = store.metrics(pods, start_s - HISTORY_S, end_s)
    best: dict[str, CpuShift] = {}
    for pod, block in frames.items():
        service = store.service_of(pod)
        for i, kpi in enumerate(block.kpis):
            if "cpu" not in kpi.lower() or "node" in kpi.lower():
                continue
            shift = _shift(pod, service, kpi, block.ts, block.values[:, i], start_s, end_s)
            if shift is not None and (service not in best or shift.z > best[service].z):
                best[service] = shift
    return best


def _shift(pod: str, service: str, kpi: str, ts: np.ndarray, values: np.ndarray, start_s: float,
           end_s: float) -> CpuShift | None:
    ok = ~np.isnan(values)
    history = values[ok & (ts < start_s - GUARD_S)]
    window = values[ok & (ts >= start_s) & (ts < end_s)]
    if len(history) < MIN_HISTORY or len(window) == 0:
        return None
    median = _median(history)
    scale = max(1.4826 * _median(np.abs(history - median)), REL_FLOOR * abs(median), ABS_FLOOR)
    during = float(np.mean(window))
    return CpuShift(pod, service, kpi, median, during, (during - median) / scale)


def _median(values: np.ndarray) -> float:
    """``np.median`` of values without NaN (the middle one, or the mean of the middle two, as
    numpy computes it), without its per-call overhead: a day's evaluation asks ~1,300 times."""
    ordered = np.sort(values)
    middle = len(ordered) // 2
    # numpy takes the mean of the middle one or two, a sum that starts from +0.0 (so -0.0 → 0.0)
    if len(ordered) % 2:
        return float(0.0 + ordered[middle])
    return float((0.0 + ordered[middle - 1] + ordered[middle]) / 2.0)
