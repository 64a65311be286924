"""The deterministic engine: no GPU, the fallback of the LLM engine, and the baseline to beat.

1. Measure every span around the incident (own time, network gap to the callee, duration,
   calls made) and compare the incident window with the baseline before and after it.
2. Give each pod the strongest shift it owns (see ``signals``), corroborated by its fluctuating
   metrics (the same 3-sigma tool the model uses).
3. Rank services by their best pod; services with no shift follow, the entry service of the
   window's traces first (an entry service that fails fast leaves little trace downstream),
   then by metric fluctuation.
4. Walk the tools along the most anomalous traces so the path is readable, then print_results.
"""

from __future__ import annotations

import time

from thinkfl_operator.engines.heuristic import walk
from thinkfl_operator.engines.heuristic.scoring import PodEvidence, score_pods
from thinkfl_operator.engines.heuristic.signals import compute_shifts, span_measurements
from thinkfl_operator.engines.heuristic.window import Windows, split
from thinkfl_operator.evidence.toolbox import Toolbox
from thinkfl_operator.models import Candidate, Diagnosis, Fluctuation, Incident, Topology, Usage
from thinkfl_operator.ranking import rank
from thinkfl_operator.settings import Settings
from thinkfl_operator.telemetry.spans import SpanTable
from thinkfl_operator.telemetry.store import Store

#: How many of the leading services get their metrics checked for corroboration.
METRIC_CHECKS = 5
#: Most a metric corroboration adds to a pod's score (trace shifts score ~2 to ~12).
METRIC_BONUS = 0.5
#: Candidates kept in the ranked answer.
MAX_CANDIDATES = 10


class HeuristicEngine:
    name = "heuristic"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def diagnose(self, store: Store, incident: Incident) -> Diagnosis:
        clock = _Clock()
        win = split(store, incident, self.settings.heuristic, span_measurements)
        clock.lap("load")
        pods = score_pods(compute_shifts(win.baseline, win.window))
        clock.lap("score")
        tools = self._toolbox(store, win)
        topology = _topology(store, win)
        self._corroborate(tools, pods, win.anchor_s)
        ordered = _order(pods, topology, win, tools)
        clock.lap("rank")
        traces = self._walk(tools, win, ordered, pods)
        result = rank(ordered, topology, minimum=self.settings.heuristic.min_candidates)[:MAX_CANDIDATES]
        tools.print_results([Candidate(r.node, r.service, r.pod) for r in result])
        clock.lap("walk")
        usage = Usage(tool_calls=len(tools.steps), seconds=clock.laps)
        return Diagnosis(root_causes=result, engine=self.name, steps=tools.steps, traces=traces,
                         usage=usage, notes=store.quality.notes())

    def _toolbox(self, store: Store, win: Windows) -> Toolbox:
        ev = self.settings.evidence
        window_table = SpanTable(win.window)
        return Toolbox(store, window_table, ev.max_tool_chars, ev.baseline_minutes * 60,
                       ev.current_minutes * 60, ev.sigma)

    def _corroborate(self, tools: Toolbox, pods: dict[str, PodEvidence], t_s: float) -> None:
        leaders = sorted(pods.values(), key=lambda e: e.score, reverse=True)[:METRIC_CHECKS]
        for ev in leaders:
            found = tools.fluctuations(ev.pod, t_s)
            if found:
                ev.metric_bonus = METRIC_BONUS * min(found[0].deviation, 3.0) / 3.0
                ev.metric_reason = _metric_reason(found)

    def _walk(self, tools: Toolbox, win: Windows, ordered: list[Candidate],
              pods: dict[str, PodEvidence]) -> list[str]:
        suspect = pods.get(ordered[0].pod) if ordered else None
        traces = walk.pick_traces(win.window, suspect, self.settings.heuristic.max_traces)
        for trace_id in traces:
            trace = win.window[win.window["trace_id"] == trace_id]
            target = walk.culprit_span(trace, suspect) if suspect else ""
            if target:
                walk.walk_trace(tools, trace, target)
        ts_ms = str(int(win.anchor_s * 1000))
        for cand in ordered[:3]:
            tools.search_fluctuating_metrics(cand.service, ts_ms)
        return traces


def _order(pods: dict[str, PodEvidence], topology: Topology, win: Windows, tools: Toolbox) -> list[Candidate]:
    """Services with shifts by score; then entry services; then the rest by metric fluctuation."""
    ranked = sorted(pods.values(), key=lambda e: e.score + e.metric_bonus, reverse=True)
    out = [Candidate(topology.nodes.get(e.pod, ""), e.service, e.pod, e.reason(), e.score + e.metric_bonus)
           for e in ranked]
    seen = {e.service for e in ranked}
    roots = win.window[win.window["parent_id"] == ""]
    for service in roots["service"].value_counts().index:
        if service not in seen:
            seen.add(service)
            out.append(Candidate(service=str(service), reason="entry service of the incident's traces"))
    rest = [s for s in sorted(topology.services) if s not in seen]
    strength = {s: _fluctuation_strength(tools.fluctuations(s, win.anchor_s)) for s in rest}
    for service in sorted(rest, key=lambda s: strength[s], reverse=True):
        out.append(Candidate(service=service, reason="metrics fluctuate" if strength[service] else ""))
    return out


def _fluctuation_strength(found: list[Fluctuation]) -> float:
    return min(found[0].deviation, 10.0) if found else 0.0


def _metric_reason(found: list[Fluctuation]) -> str:
    f = found[0]
    return f"{f.kpi} {f.regular_mean:.2f} → {f.current_mean:.2f}"


def _topology(store: Store, win: Windows) -> Topology:
    pods = win.spans.pods()
    for pod in store.metric_pods():
        pods.setdefault(pod, store.service_of(pod))
    nodes = {p: n for p in pods if (n := store.node_of(p))}
    nodes.update(win.spans.nodes())
    return Topology(pods=pods, nodes=nodes)


class _Clock:
    def __init__(self) -> None:
        self._last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._last
        self._last = now
