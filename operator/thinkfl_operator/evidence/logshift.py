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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from thinkfl_operator.core.models import LOGS_PREFIX, Step
from thinkfl_operator.evidence.templates import LEVELS, is_problem, levels, templates
from thinkfl_operator.telemetry.loglines import LogBatch, covered_seconds
from thinkfl_operator.telemetry.spans import codes_of

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
               source: str = "", traffic: Mapping[tuple[str, str], float] | None = None,
               keys: LineKeys | None = None) -> LogEvidence:
    """Shifts of the template mix in ``window`` against ``history`` (epoch-second intervals).
    ``traffic`` weighs a (service, template)'s expected share by how the calls of its
    operation changed (``engines.heuristic.traffic``); absent pairs weigh 1. ``keys``, when
    given, are the batch's lines keyed once for many incidents (``line_keys``)."""
    counts = _count_columns(batch, window, history, keys)
    w_min = _covered(batch, *window) / 60.0
    h_min = _covered(batch, *history) / 60.0
    evidence = LogEvidence({}, w_min, h_min, len(batch.lines), source, list(batch.notes))
    if not batch.lines.empty:
        evidence.pods = _pods(batch.lines)
    if not counts or len(counts["service"]) == 0 or w_min <= 0 or h_min <= 0:
        return evidence
    # counts is sorted by (service, template, level, pod): one service is one run of rows, and
    # one (service, template, level) too, summed over its pods
    row_services, row_templates, row_levels = (counts[c] for c in ("service", "template", "level"))
    starts = np.flatnonzero(np.r_[True, (row_services[1:] != row_services[:-1])
                                  | (row_templates[1:] != row_templates[:-1]) | (row_levels[1:] != row_levels[:-1])])
    services, templates_, levels_ = row_services[starts], row_templates[starts], row_levels[starts]
    h_all = np.add.reduceat(counts["history"], starts).astype("float64")
    w_all = np.add.reduceat(counts["window"], starts).astype("float64")
    row_bounds = dict(_runs(row_services))
    row_window, row_history, row_pods = (counts[c] for c in ("window", "history", "pod"))
    runs = _runs(services)
    weights = None
    if traffic:
        weights = np.array([traffic.get((service, str(t)), 1.0) for service, (lo, hi) in runs
                            for t in templates_[lo:hi]])
    for found in _service_shifts(runs, templates_, levels_, w_all, h_all, w_min, h_min, weights):
        service = found.service
        if found.shifts:
            rows = slice(*row_bounds[service])
            found.pod = _moved_pod(row_templates[rows], row_window[rows], row_history[rows], row_pods[rows],
                                   found, w_min, h_min)
        evidence.services[service] = found
    return evidence


def _runs(values: np.ndarray) -> list[tuple[str, tuple[int, int]]]:
    """Each run of equal values of a sorted array: (value, (first row, row past the last))."""
    bounds = np.flatnonzero(np.r_[True, values[1:] != values[:-1], True]) if len(values) else np.array([0])
    return [(str(values[lo]), (int(lo), int(hi))) for lo, hi in itertools.pairwise(bounds)]


def _pods(lines: pd.DataFrame) -> dict[str, str]:
    """pod → service of the lines read (the service of each pod's first line, pods in code
    order)."""
    codes, uniques = codes_of(lines["pod"])
    present, first = _first_rows(codes, len(uniques))
    return {str(uniques[c]): str(s) for c, s in zip(present, _values_at(lines["service"], first), strict=True)
            if uniques[c]}


def _values_at(column: pd.Series, rows: np.ndarray) -> np.ndarray:
    """``column.iloc[rows].to_numpy()``; a categorical without a missing value there read from
    its categories by its codes (the same objects, without pandas' take)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        array = column.array
        codes = np.asarray(array.codes)[rows]
        if not (codes < 0).any():
            values: np.ndarray = np.asarray(array.categories, dtype=object)[codes]
            return values
    taken: np.ndarray = column.iloc[rows].to_numpy()
    return taken


def _first_rows(codes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The codes present (ascending) and the row of each one's first occurrence: what
    ``np.unique(codes, return_index=True)`` gives for codes in [0, ``size``), by the least row
    of each code (``np.minimum.at``) instead of a sort of every row."""
    first = np.full(size, len(codes), dtype="int64")
    np.minimum.at(first, codes, np.arange(len(codes), dtype="int64"))
    present = np.flatnonzero(first < len(codes))
    return present, first[present]


def _moved_pod(templates_: np.ndarray, window: np.ndarray, history: np.ndarray, pods: np.ndarray,
               found: ServiceLogs, w_min: float, h_min: float) -> str:
    """The pod whose rate of the service's strongest template changed most (the service's
    rows of the counts, by column)."""
    rows = np.flatnonzero(templates_ == found.shifts[0].template)
    change = np.abs(window[rows] / w_min - history[rows] / h_min)
    return str(pods[rows[int(np.argmax(change))]]) if len(rows) else ""


def _count_columns(batch: LogBatch, window: tuple[float, float], history: tuple[float, float],
                   keys: LineKeys | None = None) -> dict[str, np.ndarray]:
    """``_counts``' columns as arrays (what ``log_shifts`` reads); from ``keys``, without
    making the frame."""
    if batch.patterns.empty and not batch.lines.empty and keys is not None:
        where = _period(batch.lines["time_ns"].to_numpy() / 1e9, window, history)
        return keys.tally_columns(where >= 0, where == 1)
    counts = _counts(batch, window, history)
    return {} if counts.empty else {c: counts[c].to_numpy() for c in counts.columns}


def _counts(batch: LogBatch, window: tuple[float, float], history: tuple[float, float]) -> pd.DataFrame:
    """service, template, level, pod, history count, window count, sorted in that order. Loki's
    pattern counts, when the batch has them, are the whole evidence (its templates are not
    ours: mixing the two vocabularies would make every template look new or vanished); lines
    are then only shown."""
    if not batch.patterns.empty:
        p = batch.patterns
        where = _period(p["time_s"].to_numpy(dtype="float64"), window, history)
        p = p[where >= 0]
        return _tally({"service": p["service"], "template": p["pattern"], "level": levels(p["pattern"]),
                       "pod": pd.Series("", index=p.index)}, where[where >= 0] == 1, p["count"].to_numpy())
    if batch.lines.empty:
        return pd.DataFrame()
    lines = batch.lines
    where = _period(lines["time_ns"].to_numpy() / 1e9, window, history)
    keep = where >= 0
    lines = lines[keep]
    if lines.empty:
        return pd.DataFrame()
    template = lines["template"] if "template" in lines else templates(lines["line"])
    level = lines["level"] if "level" in lines else levels(lines["line"])
    return _tally({"service": lines["service"], "template": template, "level": level, "pod": lines["pod"]},
                  where[keep] == 1, np.ones(len(lines), dtype="int64"))


def _tally(columns: dict[str, pd.Series], in_window: np.ndarray, n: np.ndarray) -> pd.DataFrame:
    """Counts per distinct row of ``columns`` in the history and in the window: integer codes
    combined into one key and counted with ``bincount`` (no grouping of strings per incident;
    the cached lines carry categorical columns, whose codes are free)."""
    if len(n) == 0:
        return pd.DataFrame()
    inverse, frame = _distinct_rows(columns)
    window = np.bincount(inverse, weights=n * in_window, minlength=len(frame))
    history = np.bincount(inverse, weights=n * ~in_window, minlength=len(frame))
    frame["history"], frame["window"] = history.astype("int64"), window.astype("int64")
    return frame.sort_values(list(columns), kind="stable", ignore_index=True)


def _distinct_rows(columns: Mapping[str, pd.Series]) -> tuple[np.ndarray, pd.DataFrame]:
    """Each row's number among the distinct rows of ``columns`` (their integer codes combined
    into one key), and those distinct rows in key order."""
    key = np.zeros(len(next(iter(columns.values()))), dtype="int64")
    uniques = []
    for series in columns.values():
        codes, values = codes_of(series)
        key = key * max(len(values), 1) + codes
        uniques.append(values)
    distinct, inverse = _unique(key)
    out: dict[str, np.ndarray] = {}
    rest = distinct
    for name, values in reversed(list(zip(columns, uniques, strict=True))):
        rest, code = np.divmod(rest, max(len(values), 1))
        out[name] = values[code]
    return inverse.reshape(-1), pd.DataFrame({name: out[name] for name in columns})


def _unique(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(key, return_inverse=True)`` (integers) by hashing, then sorting only the
    distinct values: the keys of a day's lines are a few thousand."""
    codes, values = pd.factorize(key)
    order = np.argsort(values)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return values[order], rank[codes]


#: The columns a line is counted by, in the order ``_tally`` sorts them.
KEY_COLUMNS = ("service", "template", "level", "pod")


@dataclass(frozen=True)
class LineKeys:
    """Lines' (service, template, level, pod) as one integer each, numbering the distinct
    tuples in the order ``_tally`` sorts its rows: an incident's counts are then two
    ``bincount`` of a slice (the tuples are sorted once per cached day, not per incident)."""

    key: np.ndarray  # per line
    table: pd.DataFrame  # KEY_COLUMNS of each key, sorted
    #: The table's columns as arrays (made once, shared by the slices).
    _arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def __getitem__(self, rows: slice) -> LineKeys:
        return LineKeys(self.key[rows], self.table, self._arrays)

    def tally_columns(self, keep: np.ndarray, in_window: np.ndarray) -> dict[str, np.ndarray]:
        """The columns of what ``_tally`` gives for the kept lines (``in_window``: per line,
        not only kept), as arrays; ``{}`` when no line is kept."""
        if not keep.any():
            return {}
        if not self._arrays:
            self._arrays.update({c: self.table[c].to_numpy() for c in self.table.columns})
        size = len(self.table)
        window = np.bincount(self.key[keep & in_window], minlength=size)
        history = np.bincount(self.key[keep & ~in_window], minlength=size)
        present = np.flatnonzero(window + history)
        out = {c: values[present] for c, values in self._arrays.items()}
        out["history"], out["window"] = history[present].astype("int64"), window[present].astype("int64")
        return out


def line_keys(lines: pd.DataFrame) -> LineKeys:
    """``LineKeys`` of lines with ``KEY_COLUMNS`` (templated and levelled)."""
    if lines.empty:
        return LineKeys(np.zeros(0, dtype="int64"), pd.DataFrame({c: [] for c in KEY_COLUMNS}))
    columns = {name: lines[name] for name in KEY_COLUMNS}
    inverse, table = _distinct_rows(columns)
    if _in_value_order(columns.values()):  # the distinct rows, in key order, are sorted already
        return LineKeys(inverse, table)
    order = table.sort_values(list(KEY_COLUMNS), kind="stable").index.to_numpy()
    rank = np.empty(len(order), dtype="int64")
    rank[order] = np.arange(len(order))
    return LineKeys(rank[inverse], table.iloc[order].reset_index(drop=True))


def _in_value_order(columns: Iterable[pd.Series]) -> bool:
    """Whether ``_distinct_rows`` of ``columns`` come sorted by value: each column a
    categorical with no missing value and strictly increasing categories, so its codes
    (``codes_of``) rank its values, and the key order (by codes, column after column) is the
    order of the value rows (all distinct)."""
    return all(isinstance(c.dtype, pd.CategoricalDtype) and c.cat.categories.is_monotonic_increasing
               and c.cat.categories.is_unique and not (c.cat.codes.to_numpy() < 0).any() for c in columns)


def _period(t: np.ndarray, window: tuple[float, float], history: tuple[float, float]) -> np.ndarray:
    """1 for times in the window, 0 in the history, −1 in neither (epoch seconds)."""
    in_window = (t >= window[0]) & (t < window[1])
    return np.where(in_window, 1, np.where((t >= history[0]) & (t < history[1]), 0, -1))


def _service_shifts(runs: list[tuple[str, tuple[int, int]]], templates_: np.ndarray, levels_: np.ndarray,
                    w: np.ndarray, h: np.ndarray, w_min: float, h_min: float,
                    weights: np.ndarray | None = None) -> list[ServiceLogs]:
    """Each service's shift (``runs``: its rows of the per-template columns): every number is
    made as the service alone would make it, for all the rows at once.

    The counts are whole numbers in float64, so a service's sums (``np.add.reduceat``) are
    exact in any order. Each row's share, expected count and ``z`` are elementwise operations
    on the same operands (the service's sums repeated per row). The weighted shares' sum is
    ``np.sum``'s per service (numpy sums pairwise, ``reduceat`` in order: they may differ in
    the last bit). The score is the largest ``|z|`` (``np.maximum.reduceat``, exact); only a
    service whose score reaches ``MIN_SHOWN_Z`` (or holds a NaN) sorts its rows, by the same
    ``np.argsort(-|z|)``, so ties keep the same order."""
    starts = np.array([lo for _, (lo, _) in runs], dtype="int64")
    sizes = np.array([hi - lo for _, (lo, hi) in runs], dtype="int64")
    n_w, n_h = np.add.reduceat(w, starts), np.add.reduceat(h, starts)
    share = (h + 0.5) / np.repeat(n_h + 0.5 * sizes, sizes)
    active = (n_w > 0) & (n_h > 0)
    if weights is not None:  # only for the services it is read for (the others' shares stay <= 1)
        share = share * np.where(np.repeat(active, sizes), weights, 1.0)
        total = np.ones(len(runs))
        for k in np.flatnonzero(active).tolist():
            lo, hi = runs[k][1]
            total[k] = share[lo:hi].sum()  # np.sum's reduction (np.add.reduce), without its wrapper
        share = share / np.repeat(total, sizes)
    expected = np.repeat(n_w, sizes) * share
    z = (w - expected) / np.sqrt(expected * (1.0 - share) + 1.0)
    top = np.maximum.reduceat(np.abs(z), starts)
    out = []
    for k, (service, (lo, hi)) in enumerate(runs):
        found_w, found_h = float(n_w[k]), float(n_h[k])
        result = ServiceLogs(service, 0.0, int(found_w), int(found_h))
        out.append(result)
        if found_h == 0:
            continue  # nothing to compare with: a service new to the window is no evidence alone
        if found_w == 0:
            silent_expected = found_h / h_min * w_min
            if silent_expected >= SILENT_MIN_EXPECTED:
                result.score, result.silent = silent_expected / math.sqrt(silent_expected + 1.0), True
            continue
        if top[k] < MIN_SHOWN_Z:  # no template shown: the score alone
            result.score = float(top[k])
            continue
        mine = z[lo:hi]
        order = np.argsort(-np.abs(mine))
        result.score = float(abs(mine[order[0]]))
        for i in order[:KEPT_TEMPLATES]:
            if abs(mine[i]) < MIN_SHOWN_Z:
                break
            result.shifts.append(TemplateShift(service, str(templates_[lo + i]), str(levels_[lo + i]),
                                               h[lo + i] / h_min, w[lo + i] / w_min, float(mine[i])))
    return out


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

