"""The deterministic engine: no GPU, the fallback of the LLM engine, and the baseline to beat.

1. Measure every span around the incident (own time, network gap to the callee, duration,
   calls made) and compare the incident window with the baseline before and after it.
2. Give each pod the strongest shift it owns (see ``signals``), corroborated by its fluctuating
   metrics (the same 3-sigma tool the model uses).
3. Rank services by their best pod; services with no shift follow, the entry service of the
   window's traces first (an entry service that fails fast leaves little trace downstream),
   then by metric fluctuation.
4. Fuse with the incident's log shifts (each service's template mix against its history) and
   CPU shifts (``fusion``): a service's suspicion is its strongest evidence of any kind, so a
   code fault that only logs show still comes first. A window without spans is diagnosed from
   logs and metrics alone.
5. Walk the tools along the most anomalous traces so the path is readable, then print_results.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.internals import create_dataframe_from_blocks

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.errors import NoEvidence
from thinkfl_operator.core.models import (
    Candidate,
    Diagnosis,
    Fluctuation,
    Incident,
    Topology,
    Usage,
)
from thinkfl_operator.engines.heuristic import walk
from thinkfl_operator.engines.heuristic.cache import MeasuredCache
from thinkfl_operator.engines.heuristic.critical import trace_evidence
from thinkfl_operator.engines.heuristic.fusion import CPU_OFFSET, fuse, log_lead
from thinkfl_operator.engines.heuristic.groupstats import value_counts
from thinkfl_operator.engines.heuristic.logevidence import (
    LogCache,
    log_period,
    logs_on,
    read_log_evidence,
)
from thinkfl_operator.engines.heuristic.resources import cpu_shifts
from thinkfl_operator.engines.heuristic.scoring import MIN_Z, PodEvidence, score_pods
from thinkfl_operator.engines.heuristic.signals import compute_shifts, span_measurements
from thinkfl_operator.engines.heuristic.walk import PlainColumns, numeric, plain_text, start_in
from thinkfl_operator.engines.heuristic.window import Windows, split, time_window
from thinkfl_operator.engines.ranking import rank
from thinkfl_operator.evidence.logshift import LogEvidence, log_lines, log_notes, log_step
from thinkfl_operator.evidence.toolbox import Toolbox
from thinkfl_operator.evidence.topology import observed
from thinkfl_operator.telemetry.spans import COLUMNS, SpanTable, codes_of, empty_frame
from thinkfl_operator.telemetry.store import Store

#: How many of the leading services get their metrics checked for corroboration.
METRIC_CHECKS = 5
#: Most a metric corroboration adds to a pod's score (trace shifts score ~2 to ~12).
METRIC_BONUS = 0.5
#: Candidates kept in the ranked answer.
MAX_CANDIDATES = 10


class HeuristicEngine:
    name = "heuristic"
    #: Computes alone (no sockets; preload's threads end before it returns): an evaluation may fork it.
    forkable = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cache = MeasuredCache(span_measurements)
        self._logs = LogCache()

    def preload(self, store: Store, start_s: float, end_s: float) -> None:
        """Load and measure the spans (and template the log lines) of a whole period at once
        (evaluation of many incidents): the span baselines, the log histories and the windows.

        The three kinds are read side by side: the log lines and the KPI files in threads
        while this one measures the spans (each reader keeps its own cache; their tallies
        share the store's ``DataQuality``, which locks). Their errors come in the order the
        reads had one after the other: spans, logs, KPIs. The threads end here, before an
        evaluation forks."""
        horizon = self.settings.heuristic.baseline_minutes * 60
        last = end_s + self.settings.heuristic.window_seconds + horizon
        _, (first_log, _) = log_period(start_s, start_s, self.settings.logs)
        source = store.logs if logs_on(store, self.settings.logs) else None
        with ThreadPoolExecutor(max_workers=2) as pool:
            kpis = pool.submit(store.metrics, store.metric_pods(), start_s, start_s)
            logs = None if source is None else pool.submit(
                self._logs.load, source, first_log, end_s + self.settings.heuristic.window_seconds)
            first = start_s - horizon if source is None else min(start_s - horizon, first_log)
            measured = self._cache.measured(store, first, last)
            if logs is not None:
                logs.result()
                self._logs.warm(measured.frame)
            # what each incident would compute on first use, once here (before an evaluation forks)
            measured.sort_medians()
            kpis.result()

    def diagnose(self, store: Store, incident: Incident) -> Diagnosis:
        clock = _Clock()
        self._load_once(store, incident)
        try:
            win = split(store, incident, self.settings.heuristic, self._cache)
        except NoEvidence as exc:
            return self._without_spans(store, incident, clock, exc)
        clock.lap("load")
        pods = score_pods(compute_shifts(None, win.window, win.measured, win.baseline_rows, MIN_Z))
        if not pods and incident.trace_id:
            pods = trace_evidence(win.window[win.window["trace_id"] == incident.trace_id])
        clock.lap("score")
        leader = max(pods.values(), key=lambda e: e.score, default=None)
        traces = ([incident.trace_id] if incident.trace_id else
                  walk.pick_traces(win.window, leader,
                                  incident.max_traces or self.settings.heuristic.max_traces,
                                  win.measured.memo("plain columns", PlainColumns)))
        spans = self._traffic_spans(store, win) if logs_on(store, self.settings.logs) else None
        logs = read_log_evidence(store, win.start_s, win.end_s, self.settings.logs, self._logs, spans)
        clock.lap("logs")
        tools = self._toolbox(store, win, traces)
        topology = _topology(store, win, logs)
        self._corroborate(tools, pods, win.anchor_s)
        ordered = _order(pods, topology, win, tools)
        start = win.start_s - self.settings.logs.lead_seconds
        ordered = fuse(ordered, logs, cpu_shifts(store, start, win.end_s))
        clock.lap("rank")
        self._walk(tools, win, ordered, pods, traces)
        return self._finish(store, tools, ordered, topology, traces, logs, clock)

    def _without_spans(self, store: Store, incident: Incident, clock: _Clock, exc: NoEvidence) -> Diagnosis:
        """No spans in the window (tracing off or sampled away): logs and metrics alone, when
        the incident has a time and the store has either; else the NoEvidence stands."""
        if incident.time_s is None:
            raise exc
        start, end = time_window(incident.time_s, incident, self.settings.heuristic)
        logs = read_log_evidence(store, start, end, self.settings.logs, self._logs)
        cpu = cpu_shifts(store, start - self.settings.logs.lead_seconds, end)
        if (logs is None or not logs.usable) and not any(c.z > CPU_OFFSET for c in cpu.values()):
            raise exc  # nothing moved that could name a cause
        clock.lap("logs")
        ev = self.settings.evidence
        tools = Toolbox(store, SpanTable(empty_frame()), ev.max_tool_chars, ev.baseline_minutes * 60,
                        ev.current_minutes * 60, ev.sigma)
        ordered = fuse([], logs, cpu)
        topology = observed(store, logs.pods if logs is not None else {}, {})
        for cand in ordered[:3]:
            tools.search_fluctuating_metrics(cand.service, str(int(incident.time_s * 1000)))
        note = "no spans in the incident window: diagnosed from " + \
            " and ".join(k for k, v in (("logs", logs is not None and logs.usable), ("metrics", bool(cpu))) if v)
        return self._finish(store, tools, ordered, topology, [], logs, clock, [note])

    def _finish(self, store: Store, tools: Toolbox, ordered: list[Candidate], topology: Topology,
                traces: list[str], logs: LogEvidence | None, clock: _Clock,
                notes: list[str] | None = None) -> Diagnosis:
        result = rank(ordered, topology, minimum=self.settings.heuristic.min_candidates)[:MAX_CANDIDATES]
        if logs is not None:
            tools.add_step(log_step(logs))
        tools.print_results([Candidate(r.node, r.service, r.pod) for r in result])
        clock.lap("walk")
        usage = Usage(tool_calls=len(tools.steps), seconds=clock.laps)
        roots = [r for t in traces if (r := tools.trace(t).root()) is not None]
        return Diagnosis(root_causes=result, engine=self.name, steps=tools.steps, traces=traces,
                         usage=usage, notes=[*(notes or []), *log_notes(logs), *store.quality.notes()],
                         topology=topology, roots=roots, log_evidence=log_lines(logs),
                         log_lead=log_lead(ordered, logs),
                         logs_read=None if logs is None else logs.usable)

    def _load_once(self, store: Store, incident: Incident) -> None:
        """Spans of the span baseline and of the log history in one read (else the traffic
        weights would read the store a second time): only for a file or memory store, an
        incident given by its time, and logs to weigh."""
        cfg = self.settings.heuristic
        if store.remote or not logs_on(store, self.settings.logs) or incident.time_s is None \
                or incident.trace_id:
            return
        start, end = time_window(incident.time_s, incident, cfg)
        _, (first, _) = log_period(start, end, self.settings.logs)
        self._cache.measured(store, min(first, start - cfg.baseline_minutes * 60),
                             end + cfg.baseline_minutes * 60)

    def _traffic_spans(self, store: Store, win: Windows) -> pd.DataFrame:
        """The spans the log shifts weigh traffic with: every span measured around the log
        history and window (the same frame whether the day was preloaded or this incident is
        diagnosed alone); from live backends only those already read (no extra searches)."""
        if store.remote:
            return win.measured.frame
        (_, end), (first, _) = log_period(win.start_s, win.end_s, self.settings.logs)
        return self._cache.measured(store, first, end).frame

    def _toolbox(self, store: Store, win: Windows, traces: list[str]) -> Toolbox:
        """Tools over the traces to walk (the index is built for those spans only)."""
        ev = self.settings.evidence
        walked = SpanTable(_walked(win.window, traces, win.measured.memo("plain columns", PlainColumns)))
        return Toolbox(store, walked, ev.max_tool_chars, ev.baseline_minutes * 60,
                       ev.current_minutes * 60, ev.sigma)

    def _corroborate(self, tools: Toolbox, pods: dict[str, PodEvidence], t_s: float) -> None:
        leaders = sorted(pods.values(), key=lambda e: e.score, reverse=True)[:METRIC_CHECKS]
        if leaders:  # every pod's at once (``_order`` reads them all): the leaders' are then known
            tools.fluctuations_by_service(t_s)
        for ev in leaders:
            found = tools.fluctuations(ev.pod, t_s)
            if found:
                ev.metric_bonus = METRIC_BONUS * min(found[0].deviation, 3.0) / 3.0
                ev.metric_reason = _metric_reason(found)

    def _walk(self, tools: Toolbox, win: Windows, ordered: list[Candidate],
              pods: dict[str, PodEvidence], traces: list[str]) -> None:
        suspect = pods.get(ordered[0].pod) if ordered else None
        for trace_id in traces:  # the window's spans of the trace (``_toolbox``), as columns
            trace = tools.trace(trace_id).columns()
            target = walk.culprit_span(trace, suspect) if suspect else walk.critical_leaf(trace)
            if target:
                walk.walk_trace(tools, trace, target)
        ts_ms = str(int(win.anchor_s * 1000))
        for cand in ordered[:3]:
            tools.search_fluctuating_metrics(cand.service, ts_ms)


def _order(pods: dict[str, PodEvidence], topology: Topology, win: Windows, tools: Toolbox) -> list[Candidate]:
    """Services with shifts by score; then entry services; then the rest by metric fluctuation."""
    ranked = sorted(pods.values(), key=lambda e: e.score + e.metric_bonus, reverse=True)
    out = [Candidate(topology.nodes.get(e.pod, ""), e.service, e.pod, e.reason(), e.score + e.metric_bonus)
           for e in ranked]
    seen = {e.service for e in ranked}
    for service in _entry_services(win.window, win.measured.memo("plain columns", PlainColumns)):
        if service not in seen:
            seen.add(service)
            out.append(Candidate(service=str(service), reason="entry service of the incident's traces"))
    rest = [s for s in sorted(topology.services) if s not in seen]
    by_service = tools.fluctuations_by_service(win.anchor_s)
    strength = {s: _fluctuation_strength(by_service.get(s, [])) for s in rest}
    for service in sorted(rest, key=lambda s: strength[s], reverse=True):
        out.append(Candidate(service=service, reason="metrics fluctuate" if strength[service] else ""))
    return out


def _entry_services(window: pd.DataFrame, plain: PlainColumns | None = None) -> list[str]:
    """The services of the spans without a parent ID, most spans first, ties in order of
    appearance (``value_counts`` of their names; a missing one left out): by the categorical's
    codes, without making the names. ``plain``: the columns of the frame the window is a
    slice of, read from there."""
    start = start_in(window, plain)
    if plain is not None and start is not None:
        empty, service = plain.empty("parent_id"), plain.categorical("service")
        if empty is not None and service is not None:
            stop = start + len(window)
            codes = service[0][start:stop][empty[start:stop]]
            distinct, _ = value_counts(codes[codes >= 0])
            return [str(s) for s in service[1][distinct]]
    roots = _is_empty(window["parent_id"])
    service = window["service"]
    if not isinstance(service.dtype, pd.CategoricalDtype):
        return [str(s) for s in service[roots].astype(str).value_counts().index]
    codes = np.asarray(service.array.codes)[roots]
    distinct, _ = value_counts(codes[codes >= 0])
    return [str(s) for s in service.array.categories.to_numpy(dtype=object)[distinct]]


def _is_empty(column: pd.Series) -> np.ndarray:
    """``(column == "").to_numpy()``: for Arrow text without a missing value, Arrow's own
    comparison (pandas' costs several times more on a window)."""
    if isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow":
        text = pa.array(column.array)
        if not text.null_count:
            return np.asarray(pc.equal(text, "").to_numpy(zero_copy_only=False))
    return np.asarray((column == "").to_numpy())


def _walked(window: pd.DataFrame, traces: list[str], plain: PlainColumns | None = None) -> pd.DataFrame:
    """The window's span columns (``COLUMNS``) of the traces to walk, their text as plain
    Python strings (object columns), numbers untouched: the walk, the tools and the roots
    read only these span columns, and cut the few walked spans several times (per trace, per
    root), which costs per call and per column far more for categorical and Arrow columns.
    Each column is cut alone (a categorical by its codes, Arrow text by an Arrow take), and
    the frame is made from its blocks as they are (one of text, one per number column; the
    constructor would infer the text's dtype again). The same strings, so the
    same steps; when a text value is missing, the cut as it is (NaN matches differ between
    the dtypes). ``plain``: the columns of the frame the window is a slice of (positions
    as its index), read from there."""
    start = start_in(window, plain)
    if plain is not None and start is not None:
        found = plain.trace_rows(start, len(window), traces)
        if found is not None:
            cut = plain.blocks(found + start)
            if cut is not None:
                return create_dataframe_from_blocks(cut, index=window.index[found], columns=_COLUMN_INDEX)
            return window.loc[_isin(window["trace_id"], traces), list(COLUMNS)]
    mask = _isin(window["trace_id"], traces)
    rows = np.flatnonzero(mask)
    text: list[np.ndarray] = []
    text_places: list[int] = []
    blocks: list[tuple[np.ndarray, np.ndarray]] = []  # (columns × rows, their places)
    for place, name in enumerate(COLUMNS):
        column = window[name]
        if numeric(column.dtype):
            blocks.append((column.to_numpy()[rows][None, :], np.array([place])))
            continue
        values = plain_text(column, rows)
        if values is None:
            return window.loc[mask, list(COLUMNS)]
        text.append(values)
        text_places.append(place)
    text_block = np.empty((len(text), len(rows)), dtype=object)
    for i, values in enumerate(text):
        text_block[i] = values
    blocks.append((text_block, np.array(text_places)))
    return create_dataframe_from_blocks(blocks, index=window.index[rows], columns=_COLUMN_INDEX)


def _isin(column: pd.Series, values: list[str]) -> np.ndarray:
    """``column.isin(values).to_numpy()``: for Arrow text and text values, Arrow's is_in as
    pandas runs it, without the Series and the per-value scalar conversions around it."""
    if isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow" \
            and values and all(type(v) is str for v in values):
        text = pa.array(column.array)
        return np.array(pc.is_in(text, value_set=pa.array(values, type=text.type)), dtype=np.bool_)
    return np.asarray(column.isin(values).to_numpy())


#: The walked table's column labels (made once).
_COLUMN_INDEX = pd.Index(list(COLUMNS))


def _fluctuation_strength(found: list[Fluctuation]) -> float:
    return min(found[0].deviation, 10.0) if found else 0.0


def _metric_reason(found: list[Fluctuation]) -> str:
    f = found[0]
    return f"{f.kpi} {f.regular_mean:.2f} → {f.current_mean:.2f}"


def _topology(store: Store, win: Windows, logs: LogEvidence | None = None) -> Topology:
    plain = win.measured.memo("plain columns", PlainColumns)
    start = start_in(win.window, plain)
    pod = plain.categorical("pod") if start is not None else None
    if start is not None and pod is not None:  # read from the measured frame's columns
        rows = np.sort(np.unique(pod[0][start:start + len(win.window)], return_index=True)[1])
        first_pod, first_service, first_node = (
            found if (found := plain.text(c, rows + start)) is not None
            else win.window[c].iloc[rows].to_numpy(dtype=object) for c in ("pod", "service", "node"))
    else:
        rows = _first_rows(win.window["pod"])
        first_pod, first_service, first_node = (_text_at(win.window[c], rows) for c in ("pod", "service", "node"))
    pods = {str(p): str(s) for p, s in zip(first_pod, first_service, strict=True)}
    nodes = {str(p): str(n) for p, n in zip(first_pod, first_node, strict=True)}
    for pod, service in (logs.pods.items() if logs is not None else ()):
        pods.setdefault(pod, service)
    return observed(store, pods, nodes)


def _first_rows(column: pd.Series) -> np.ndarray:
    """Each value's first row, in row order (``drop_duplicates`` by the column's codes; a
    categorical's own small codes, which sort by radix)."""
    codes = (np.asarray(column.array.codes) if isinstance(column.dtype, pd.CategoricalDtype)
             else codes_of(column)[0])
    return np.sort(np.unique(codes, return_index=True)[1])


def _text_at(column: pd.Series, rows: np.ndarray) -> np.ndarray:
    """``column.iloc[rows].to_numpy(dtype=object)``, cut alone when no value is missing."""
    values = plain_text(column, rows)
    return column.iloc[rows].to_numpy(dtype=object) if values is None else values


class _Clock:
    def __init__(self) -> None:
        self._last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._last
        self._last = now
