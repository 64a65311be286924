"""How far each service's mix of log templates in the incident window departs from its history.

Code-level faults barely move traces and metrics, and show plainly in logs: a thrown exception
makes a line that normally follows another one vanish, a wrong return value makes a new ERROR
line appear or a usual one stop. Per service, each template's share of the service's lines in
the window is compared with its share in the service's pooled history (minutes before the
window, a guard left out): ``z = (n_w − N_w·p) / sqrt(N_w·p·(1−p) + 1)`` with ``p`` the
history share (smoothed). Shares, not raw rates, so a change of load that moves every line of a
service alike is no anomaly. A service that logged steadily and fell silent is one too.

Rates shown to a person are per minute of *covered* time (``LogBatch.coverage``), so a source
that could not read everything (a budget, an entry limit, missing files) never fakes a drop.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from thinkfl_operator.evidence.templates import LEVELS, is_problem, levels, templates
from thinkfl_operator.models import LOGS_PREFIX, Step
from thinkfl_operator.telemetry.loglines import LogBatch, covered_seconds

#: Templates of one service kept as evidence (strongest first).
KEPT_TEMPLATES = 3
#: A service that logged at least this many lines per window-length of history and none in
#: the window fell silent.
SILENT_MIN_EXPECTED = 10.0
#: A template shift weaker than this is not shown as evidence.
MIN_SHOWN_Z = 3.0


@dataclass(frozen=True, slots=True)
class TemplateShift:
    """One template's change in one service."""

    service: str
    template: str
    level: str
    before_per_min: float
    during_per_min: float
    z: float

    def describe(self) -> str:
        """``new ERROR `…` 0 → 19 per minute``, ``template `…` 27 → 0 per minute``."""
        label = "template"
        if self.before_per_min == 0 and self.during_per_min > 0:
            label = f"new {self.level}" if self.level else "new template"
        elif self.during_per_min == 0:
            label = "vanished template"
        elif is_problem(self.level):
            label = f"{self.level} template"
        return (f"{label} `{_shown(self.template)}` {_rate(self.before_per_min)} → "
                f"{_rate(self.during_per_min)} per minute")


@dataclass(slots=True)
class ServiceLogs:
    """A service's log shift: its score (strongest |z|) and the templates behind it."""

    service: str
    score: float
    lines_window: int
    lines_history: int
    shifts: list[TemplateShift] = field(default_factory=list)
    silent: bool = False
    pod: str = ""  # the pod whose lines moved most in the strongest template ("" if unknown)

    def reason(self) -> str:
        if self.silent:
            return f"stopped logging: {self.lines_history} lines before, none in the window"
        return "; ".join(s.describe() for s in self.shifts[:2])


@dataclass(slots=True)
class LogEvidence:
    """Per-service log shifts of one incident and what they were computed from."""

    services: dict[str, ServiceLogs]
    window_minutes: float
    history_minutes: float
    lines: int
    source: str = ""
    notes: list[str] = field(default_factory=list)
    pods: dict[str, str] = field(default_factory=dict)  # pod → service of the lines read

    @property
    def usable(self) -> bool:
        return self.window_minutes > 0 and self.history_minutes > 0 and bool(self.services)

    def ranked(self) -> list[ServiceLogs]:
        return sorted(self.services.values(), key=lambda s: s.score, reverse=True)

    def robust_z(self) -> dict[str, float]:
        """Each service's score as a robust z against the other services (median, MAD)."""
        if not self.services:
            return {}
        scores = np.array([s.score for s in self.services.values()])
        median = float(np.median(scores))
        scale = max(1.4826 * float(np.median(np.abs(scores - median))), 0.5)
        return {name: (s.score - median) / scale for name, s in self.services.items()}


def log_shifts(batch: LogBatch, window: tuple[float, float], history: tuple[float, float],
               source: str = "", traffic: Mapping[tuple[str, str], float] | None = None) -> LogEvidence:
    """Shifts of the template mix in ``window`` against ``history`` (epoch-second intervals).
    ``traffic`` weighs a (service, template)'s expected share by how the calls of its
    operation changed (``engines.heuristic.traffic``); absent pairs weigh 1."""
    counts = _counts(batch, window, history)
    w_min = _covered(batch, *window) / 60.0
    h_min = _covered(batch, *history) / 60.0
    evidence = LogEvidence({}, w_min, h_min, len(batch.lines), source, list(batch.notes))
    if not batch.lines.empty:
        pairs = batch.lines[["pod", "service"]].drop_duplicates("pod")
        evidence.pods = {str(p): str(s) for p, s in zip(pairs["pod"], pairs["service"], strict=True) if p}
    if counts.empty or w_min <= 0 or h_min <= 0:
        return evidence
    per_service = (counts.groupby(["service", "template", "level"], sort=True, observed=True)
                   [["history", "window"]].sum().reset_index())
    services = per_service["service"].astype(str).to_numpy()
    bounds = np.flatnonzero(np.r_[True, services[1:] != services[:-1], True])
    for lo, hi in itertools.pairwise(bounds):
        service, group = services[lo], per_service.iloc[lo:hi]
        weights = None
        if traffic:
            weights = np.array([traffic.get((service, str(t)), 1.0) for t in group["template"]])
        found = _service_shift(service, group, w_min, h_min, weights)
        if found.shifts:
            found.pod = _moved_pod(counts[counts["service"] == service], found, w_min, h_min)
        evidence.services[service] = found
    return evidence


def _moved_pod(by_pod: pd.DataFrame, found: ServiceLogs, w_min: float, h_min: float) -> str:
    """The pod whose rate of the service's strongest template changed most."""
    rows = by_pod[by_pod["template"] == found.shifts[0].template]
    change = (rows["window"] / w_min - rows["history"] / h_min).abs()
    pods = rows["pod"].astype(str).to_numpy()
    return str(pods[int(np.argmax(change.to_numpy()))]) if len(rows) else ""


def _counts(batch: LogBatch, window: tuple[float, float], history: tuple[float, float]) -> pd.DataFrame:
    """service, pod, template, level, window count, history count. Loki's pattern counts, when
    the batch has them, are the whole evidence (its templates are not ours: mixing the two
    vocabularies would make every template look new or vanished); lines are then only shown."""
    parts = []
    if not batch.lines.empty and batch.patterns.empty:
        where = _period(batch.lines["time_ns"].to_numpy() / 1e9, window, history)
        keep = where >= 0
        lines = batch.lines[keep]
        if len(lines):
            template = lines["template"] if "template" in lines else templates(lines["line"])
            level = lines["level"] if "level" in lines else levels(lines["line"])
            frame = pd.DataFrame({"service": lines["service"].to_numpy(), "pod": lines["pod"].to_numpy(),
                                  "template": template.to_numpy(),
                                  "level": level.to_numpy(), "in_window": where[keep] == 1})
            parts.append(frame.assign(n=1))
    if not batch.patterns.empty:
        p = batch.patterns
        where = _period(p["time_s"].to_numpy(dtype="float64"), window, history)
        p = p[where >= 0]
        parts.append(pd.DataFrame({"service": p["service"].to_numpy(), "pod": "", "template": p["pattern"].to_numpy(),
                                   "level": levels(p["pattern"]).to_numpy(), "in_window": where[where >= 0] == 1,
                                   "n": p["count"].to_numpy()}))
    if not parts:
        return pd.DataFrame()
    frame = pd.concat(parts, ignore_index=True)
    grouped = frame.groupby(["service", "pod", "template", "level", "in_window"], sort=False)["n"].sum()
    grouped = grouped.unstack(fill_value=0)
    grouped = grouped.reindex(columns=[False, True], fill_value=0)
    grouped.columns = ["history", "window"]
    return grouped.reset_index()


def _period(t: np.ndarray, window: tuple[float, float], history: tuple[float, float]) -> np.ndarray:
    """1 for times in the window, 0 in the history, −1 in neither (epoch seconds)."""
    in_window = (t >= window[0]) & (t < window[1])
    return np.where(in_window, 1, np.where((t >= history[0]) & (t < history[1]), 0, -1))


def _service_shift(service: str, group: pd.DataFrame, w_min: float, h_min: float,
                   weights: np.ndarray | None = None) -> ServiceLogs:
    w = group["window"].to_numpy(dtype="float64")
    h = group["history"].to_numpy(dtype="float64")
    n_w, n_h = float(w.sum()), float(h.sum())
    result = ServiceLogs(service, 0.0, int(n_w), int(n_h))
    if n_h == 0:
        return result  # nothing to compare with: a service new to the window is no evidence alone
    if n_w == 0:
        expected = n_h / h_min * w_min
        if expected >= SILENT_MIN_EXPECTED:
            result.score, result.silent = expected / math.sqrt(expected + 1.0), True
        return result
    share = (h + 0.5) / (n_h + 0.5 * len(h))
    if weights is not None:  # the share each template would have if only traffic moved it
        share = share * weights / float(np.sum(share * weights))
    expected = n_w * share
    z = (w - expected) / np.sqrt(expected * (1.0 - share) + 1.0)
    order = np.argsort(-np.abs(z))
    result.score = float(abs(z[order[0]]))
    templates_, levels_ = group["template"].to_numpy(), group["level"].to_numpy()
    for i in order[:KEPT_TEMPLATES]:
        if abs(z[i]) < MIN_SHOWN_Z:
            break
        result.shifts.append(TemplateShift(service, str(templates_[i]), str(levels_[i]),
                                           h[i] / h_min, w[i] / w_min, float(z[i])))
    return result


def _covered(batch: LogBatch, start_s: float, end_s: float) -> float:
    if not batch.patterns.empty:  # pattern samples count every line of the range
        return max(0.0, end_s - start_s)
    if batch.coverage:
        return covered_seconds(batch.coverage, start_s, end_s)
    return max(0.0, end_s - start_s) if not batch.empty else 0.0


def _rate(per_min: float) -> str:
    return f"{per_min:.0f}" if per_min >= 1 or per_min == 0 else f"{per_min:.1f}"


def _shown(template: str, limit: int = 80) -> str:
    text = template
    for level in LEVELS:
        if text.startswith(level + " "):
            text = text[len(level) + 1:]
            break
    return text if len(text) <= limit else text[: limit - 1] + "…"


def log_lines(evidence: LogEvidence | None, limit: int = 5) -> list[str]:
    """The strongest services' log shifts, one line each, for the status and the CLI."""
    if evidence is None or not evidence.usable:
        return []
    return [f"{s.service}: {s.reason()}" for s in evidence.ranked()[:limit] if s.shifts or s.silent]


#: The step of the diagnostic path that shows what the logs said (not one of the model's tools:
#: training records leave it out).
LOG_STEP = "read_logs"


def log_step(evidence: LogEvidence) -> Step:
    """The log evidence as a step of the diagnostic path: what was read, and the strongest shift."""
    arguments = {"source": evidence.source, "window_minutes": round(evidence.window_minutes, 1),
                 "history_minutes": round(evidence.history_minutes, 1)}
    lines = log_lines(evidence, limit=1)
    if not evidence.usable:
        summary = "; ".join(evidence.notes[-1:]) or "too little log data to compare"
    else:
        summary = f"{evidence.lines} lines; " + (lines[0] if lines else "no service's log templates moved")
    return Step(tool=LOG_STEP, arguments=arguments, summary=summary)


def log_notes(evidence: LogEvidence | None) -> list[str]:
    """What the log evidence was made of, and anything a person should know about it."""
    if evidence is None:
        return []
    read = (f"{LOGS_PREFIX} {evidence.lines} lines from {evidence.source or 'the log source'}, "
            f"{evidence.window_minutes:.1f} min of window against {evidence.history_minutes:.0f} min of history")
    return [read, *evidence.notes]

