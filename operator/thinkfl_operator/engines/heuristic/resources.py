"""CPU shifts per pod: how far a pod's CPU in the incident window left its own history.

The metrics tool (``search_fluctuating_metrics``) keeps the reference semantics the model was
trained on (±10 min against ±20 min), which blur a fault of a few minutes. The engine's own
resource signal is sharper: the pod's mean CPU in the window against the median and MAD of the
20 minutes before it, a robust z. CPU contention and runaway loops show here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from thinkfl_operator.evidence.metrics import stack_rows
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
    series: list[tuple[str, str, str, np.ndarray, np.ndarray]] = []
    cpu_columns: dict[tuple[str, ...], list[int]] = {}  # per KPI list (pods share one)
    for pod, block in frames.items():
        service = store.service_of(pod)
        if block.kpis not in cpu_columns:
            cpu_columns[block.kpis] = [i for i, kpi in enumerate(block.kpis)
                                       if "cpu" in kpi.lower() and "node" not in kpi.lower()]
        for i in cpu_columns[block.kpis]:
            series.append((pod, service, block.kpis[i], block.ts, block.values[:, i]))
    best: dict[str, CpuShift] = {}
    for shift in _shifts(series, start_s, end_s):
        if shift is not None and (shift.service not in best or shift.z > best[shift.service].z):
            best[shift.service] = shift
    return best


def _shifts(series: list[tuple[str, str, str, np.ndarray, np.ndarray]], start_s: float,
            end_s: float) -> list[CpuShift | None]:
    """``_shift`` of each (pod, service, kpi, times, values), computed for all at once: the
    series side by side, padded with NaN (sorted last, out of the counts); the medians then
    pick the same values, and each window mean is a row sum of its own length, which numpy
    adds as it adds the series alone (rows of equal length stacked)."""
    if not series:
        return []
    ts = np.concatenate([s[3] for s in series])
    values = np.concatenate([s[4] for s in series])
    owner = np.repeat(np.arange(len(series)), [len(s[3]) for s in series])
    ok = ~np.isnan(values)
    history, n_history = stack_rows(values, owner, len(series), ok & (ts < start_s - GUARD_S))
    window, n_window = stack_rows(values, owner, len(series), ok & (ts >= start_s) & (ts < end_s))
    usable = (n_history >= MIN_HISTORY) & (n_window > 0)
    out: list[CpuShift | None] = [None] * len(series)
    if not usable.any():
        return out
    history.sort(axis=1)
    median = _medians(history, n_history)
    spread = np.abs(history - median[:, None])
    spread.sort(axis=1)
    mad = _medians(spread, n_history)
    during = np.full(len(series), np.nan)
    for length in np.unique(n_window[usable]):
        rows = np.flatnonzero(usable & (n_window == length))
        during[rows] = np.mean(window[rows, :length], axis=1)
    rows = np.flatnonzero(usable)
    spread_part, level_part = 1.4826 * mad[rows], REL_FLOOR * np.abs(median[rows])
    # the scale as Python's max takes it: the same number when no part is NaN (a positive
    # one: the absolute floor); a row with a NaN part is scaled on its own
    scale = np.maximum(np.maximum(spread_part, level_part), ABS_FLOOR)
    plain = ~(np.isnan(spread_part) | np.isnan(level_part))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        z = (during[rows] - median[rows]) / scale
    for row, med, mean, zz, ok in zip(rows.tolist(), median[rows].tolist(), during[rows].tolist(),
                                      z.tolist(), plain.tolist(), strict=True):
        if not ok:
            zz = (mean - med) / max(1.4826 * float(mad[row]), REL_FLOOR * abs(med), ABS_FLOOR)
        out[row] = CpuShift(*series[row][:3], med, mean, zz)
    return out


def _medians(ordered: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The median of each row's first ``counts`` values (rows sorted; NaN for an empty row),
    as ``np.median`` computes it: the mean of the middle one or two, a sum that starts from
    +0.0 (so -0.0 → 0.0)."""
    out = np.full(len(counts), np.nan)
    rows = np.flatnonzero(counts > 0)
    middle = counts[rows] // 2
    upper = ordered[rows, middle]
    lower = ordered[rows, np.maximum(middle - 1, 0)]
    with np.errstate(invalid="ignore", over="ignore"):
        out[rows] = np.where(counts[rows] % 2 == 1, 0.0 + upper, (0.0 + lower + upper) / 2.0)
    return out
