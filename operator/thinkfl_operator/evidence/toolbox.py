"""The three ThinkFL tools bound to one incident's evidence; every call becomes a Step.

Both engines call tools only through a Toolbox, so the diagnostic path they leave is the same
kind of record whether a model or the deterministic engine chose the calls.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import numpy as np

from thinkfl_operator.core.models import Candidate, Fluctuation, Span, Step
from thinkfl_operator.evidence import metrics as metric_tool
from thinkfl_operator.evidence import traces as trace_tool
from thinkfl_operator.observability import tracing
from thinkfl_operator.telemetry.spans import SpanTable
from thinkfl_operator.telemetry.store import Store

TOOL_NAMES = ("search_traces", "search_fluctuating_metrics", "print_results")

P = ParamSpec("P")
R = TypeVar("R")


def _traced(tool: Callable[Concatenate[Toolbox, P], R]) -> Callable[Concatenate[Toolbox, P], R]:
    """Each call of a tool in a ``thinkfl.tool`` span, described by the Step the call records."""

    @functools.wraps(tool)
    def call(self: Toolbox, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with tracing.span(tracing.TOOL, name=tool.__name__) as current:
            result = tool(self, *args, **kwargs)
            current.set(**tracing.step_attributes(self.steps[-1]))
        return result

    return call


class Toolbox:
    """search_traces, search_fluctuating_metrics and print_results over one store."""

    def __init__(
        self,
        store: Store,
        spans: SpanTable,
        max_chars: int = 6000,
        baseline_s: float = 1200.0,
        current_s: float = 600.0,
        sigma: float = 3.0,
    ) -> None:
        self.store = store
        self.spans = spans
        self.max_chars = max_chars
        self.baseline_s, self.current_s, self.sigma = baseline_s, current_s, sigma
        self.steps: list[Step] = []
        self._memo: dict[tuple[str, float], list[Fluctuation]] = {}
        self._by_pod: dict[tuple[str, float], list[Fluctuation]] = {}
        self._by_service: dict[float, dict[str, list[Fluctuation]]] = {}
        self._traces: dict[str, SpanTable] = {}
        self._trace_ids: np.ndarray | None = None
        self._pods_by_service: tuple[tuple[str, ...], dict[str, list[str]]] | None = None

    # the tools ---------------------------------------------------------------------------
    @_traced
    def search_traces(self, parent_span_id: str) -> tuple[list[Span], str]:
        children = trace_tool.search_traces(self.spans, parent_span_id)
        text = trace_tool.render(children, self.max_chars)
        self._record("search_traces", {"parent_span_id": parent_span_id},
                     trace_tool.summarize(parent_span_id, children), text)
        return children, text

    @_traced
    def search_fluctuating_metrics(self, service_name: str, timestamp: object) -> tuple[list[Fluctuation], str]:
        args = {"service_name": service_name, "timestamp": str(timestamp)}
        try:
            t_s = metric_tool.normalize_timestamp(timestamp)
        except ValueError as exc:
            text = f"Error: {exc}"
            self._record("search_fluctuating_metrics", args, text, text)
            return [], text
        found = self.fluctuations(service_name, t_s)
        text = metric_tool.render(found, self.max_chars)
        self._record("search_fluctuating_metrics", args, metric_tool.summarize(service_name, found), text)
        return found, text

    @_traced
    def print_results(self, root_causes: list[Candidate]) -> str:
        text = "Results printed."
        summary = "final answer: " + ", ".join(
            c.pod or c.service or c.node for c in root_causes[:5] if c.pod or c.service or c.node
        )
        self._record("print_results",
                     {"root_causes": [{k: v for k, v in (("node", c.node), ("service", c.service),
                                                         ("pod", c.pod)) if v} for c in root_causes]},
                     summary, text)
        return text

    # helpers -----------------------------------------------------------------------------
    def trace(self, trace_id: str) -> SpanTable:
        """The spans of one trace (the rows ``spans.trace`` keeps, by position from the trace
        IDs read once), made once: an engine walks it and then reads its root. Its columns
        are cut from the walked table's (``SpanTable.take``)."""
        if trace_id not in self._traces:
            if self._trace_ids is None:
                self._trace_ids = self.spans.columns()["trace_id"]
            rows = np.flatnonzero(self._trace_ids == trace_id)
            self._traces[trace_id] = self.spans.take(rows)
        return self._traces[trace_id]

    def pods_of(self, service_or_pod: str) -> list[str]:
        pods = self.store.metric_pods()
        if service_or_pod in pods:
            return [service_or_pod]
        listed = tuple(pods)
        if self._pods_by_service is None or self._pods_by_service[0] != listed:
            by_service: dict[str, list[str]] = {}  # each pod's service asked once per pod list
            for pod in pods:
                by_service.setdefault(self.store.service_of(pod), []).append(pod)
            self._pods_by_service = (listed, by_service)
        return list(self._pods_by_service[1].get(service_or_pod, []))

    def fluctuations(self, service_or_pod: str, t_s: float) -> list[Fluctuation]:
        """The metric tool's answer without recording a step (engines use it to score)."""
        key = (service_or_pod, t_s)
        if key not in self._memo:
            self._memo[key] = self._compute(self.pods_of(service_or_pod), t_s)
        return self._memo[key]

    def fluctuations_by_service(self, t_s: float) -> dict[str, list[Fluctuation]]:
        """Every pod's fluctuations at once, grouped by service (most deviant first); made
        once per time (then each pod's is known: ``fluctuations`` of any of them is a lookup)."""
        if t_s in self._by_service:
            return self._by_service[t_s]
        grouped = self._by_service[t_s] = {}
        services: dict[str, str] = {}  # each pod's service, asked once
        for found in self._compute(self.store.metric_pods(), t_s):
            if found.pod not in services:
                services[found.pod] = self.store.service_of(found.pod)
            grouped.setdefault(services[found.pod], []).append(found)
        return grouped

    def _compute(self, pods: list[str], t_s: float) -> list[Fluctuation]:
        """The pods' fluctuations, most deviant first: each pod's computed once per time (an
        engine asks for every pod, then again for its leaders and candidates), joined in the
        order ``metric_tool.fluctuations`` reads them, so ties sort alike."""
        pods = list(dict.fromkeys(pods))
        missing = [p for p in pods if (p, t_s) not in self._by_pod]
        if missing:
            frames = self.store.metrics(missing, t_s - self.baseline_s, t_s + self.baseline_s)
            found_by_pod = metric_tool.fluctuations_by_pod(
                {pod: frames[pod] for pod in missing if pod in frames}, t_s,
                {pod: self.store.node_of(pod) for pod in missing},
                self.baseline_s, self.current_s, self.sigma)
            for pod in missing:
                self._by_pod[(pod, t_s)] = found_by_pod.get(pod, [])
        found = [f for pod in pods for f in self._by_pod[(pod, t_s)]]
        found.sort(key=lambda f: f.deviation, reverse=True)
        return found

    @_traced
    def add_step(self, step: Step) -> None:
        """A step of the diagnostic path that is none of the model's tools (the log evidence):
        shown and traced like the tools, left out of training records."""
        self.steps.append(step)

    def _record(self, tool: str, arguments: dict[str, Any], summary: str, output: str) -> None:
        self.steps.append(Step(tool=tool, arguments=arguments, summary=summary, output=output))


def tool_call_text(name: str, arguments: dict[str, Any]) -> str:
    """A call in the training reply format (used to replay deterministic steps as turns)."""
    return "<tool_call>" + json.dumps({"name": name, "arguments": json.dumps(arguments)}) + "</tool_call>"
