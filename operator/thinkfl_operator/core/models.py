"""Data models shared by every layer: spans, root causes, steps and the diagnosis result.

Spans use the field names ThinkFL was trained on (``cmdb_id`` is the pod, ``timestamp`` in
epoch milliseconds, ``duration`` in microseconds). Bulk span data lives in columnar stores
(see ``telemetry.store``); these small objects are what tools and engines hand around.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

#: The engines, as spec.engine, the settings, the alerts and the command line name them.
EngineName = Literal["auto", "thinkfl", "heuristic"]
ENGINES: tuple[str, ...] = get_args(EngineName)

#: The three tools ThinkFL was trained with, in the order its system prompt lists them.
SEARCH_TRACES = "search_traces"
SEARCH_METRICS = "search_fluctuating_metrics"
PRINT_RESULTS = "print_results"
TOOL_NAMES = (SEARCH_TRACES, SEARCH_METRICS, PRINT_RESULTS)

#: The nine span fields of the training format, in the (sorted) order the model saw them.
SPAN_FIELDS = (
    "cmdb_id",
    "duration",
    "operation_name",
    "parent_span",
    "span_id",
    "status_code",
    "timestamp",
    "trace_id",
    "type",
)


@dataclass(frozen=True, slots=True)
class Span:
    """One span in the training vocabulary."""

    trace_id: str
    span_id: str
    parent_span: str  # "" for a root span
    cmdb_id: str  # pod
    service: str
    operation_name: str
    timestamp: int  # epoch ms
    duration: int  # µs
    status_code: str = "0"
    type: str = ""

    def training_dict(self) -> dict[str, Any]:
        """The span as the model saw it: exactly the nine training keys."""
        return {
            "cmdb_id": self.cmdb_id,
            "duration": self.duration,
            "operation_name": self.operation_name,
            "parent_span": self.parent_span,
            "span_id": self.span_id,
            "status_code": self.status_code,
            "timestamp": self.timestamp,
            "trace_id": self.trace_id,
            "type": self.type,
        }


@dataclass(frozen=True, slots=True)
class Incident:
    """What to diagnose: a trace, or a service and a time (epoch seconds, UTC)."""

    time_s: float | None = None
    trace_id: str = ""
    root_span_id: str = ""
    service: str = ""
    window_s: float | None = None  # seconds after time_s searched for anomalous traces
    max_traces: int | None = None
    description: str = ""
    namespace: str = ""  # where the incident's pods run ("" = unknown)


@dataclass(frozen=True, slots=True)
class Fluctuation:
    """A KPI series that left mean ± 3·std of its baseline around the queried time."""

    key: str  # "<node>.<pod>.<kpi>", unknown parts omitted
    pod: str
    kpi: str
    regular_mean: float
    regular_std_dev: float
    current_mean: float
    current_std_dev: float

    @property
    def deviation(self) -> float:
        """How many baseline standard deviations the window mean moved."""
        return abs(self.current_mean - self.regular_mean) / self.regular_std_dev


@dataclass(frozen=True, slots=True)
class Candidate:
    """One root-cause hypothesis before ranking (node, service and pod all optional)."""

    node: str = ""
    service: str = ""
    pod: str = ""
    reason: str = ""
    score: float = 0.0


@dataclass(slots=True)
class Topology:
    """What was observed: pod → service and pod → node. Names outside it are never reported."""

    pods: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, str] = field(default_factory=dict)

    @property
    def services(self) -> set[str]:
        return set(self.pods.values())

    def pods_of(self, service: str) -> list[str]:
        return sorted(p for p, s in self.pods.items() if s == service)


@dataclass(frozen=True, slots=True)
class RootCause:
    """One ranked root cause as written to the status (integer score 0..100)."""

    rank: int
    node: str
    service: str
    pod: str
    reason: str
    score: int
    # Added by ranking to reach the minimum count (the deterministic order padding a model's
    # shorter answer), not named by the engine itself. Not in ``as_dict`` (not in the status).
    padded: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "service": self.service,
            "pod": self.pod,
            "node": self.node,
            "score": self.score,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Step:
    """One tool call on the diagnostic path, with a one-line summary of its answer."""

    tool: str
    arguments: dict[str, Any]
    summary: str
    output: str = ""  # what the model saw (capped); empty when not kept

    def as_dict(self, with_output: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"tool": self.tool, "arguments": self.arguments, "summary": self.summary}
        if with_output:
            out["output"] = self.output
        return out


@dataclass(slots=True)
class Usage:
    """What a diagnosis cost."""

    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "llmCalls": self.llm_calls,
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "toolCalls": self.tool_calls,
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
        }


#: A note that starts so says the deterministic engine answered in place of the model.
FALLBACK_PREFIX = "LLMFallback:"
#: A note that starts so says what log evidence was read (lines, source, window, history).
LOGS_PREFIX = "logs:"


@dataclass(slots=True)
class Diagnosis:
    """What an engine returns: ranked causes, the path that led there, and its cost."""

    root_causes: list[RootCause]
    engine: str
    steps: list[Step] = field(default_factory=list)
    traces: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    notes: list[str] = field(default_factory=list)  # fallbacks, skipped data, partial traces
    transcript: list[dict[str, str]] = field(default_factory=list)  # the model's conversation(s)
    topology: Topology = field(default_factory=Topology)  # what the answer could name
    # The root span each walked trace opened with: the deterministic engine's path is rebuilt
    # from these and ``steps`` as conversations (the model's own are kept in ``transcript``).
    roots: list[Span] = field(default_factory=list)
    # What the logs showed, one line a person reads per service ("ts-route-service: vanished
    # template `RouteController#53 …` 27 → 0 per minute"); empty when no log evidence was read.
    log_evidence: list[str] = field(default_factory=list)
    # The service the logs alone put first with a strong shift ("" when none): ``auto`` puts it
    # ahead of a model answer that names another (the model cannot see logs).
    log_lead: str = ""
    # Whether log evidence was used: None = no log source, True = read and compared with its
    # history, False = the source failed or had too little (the notes say why).
    logs_read: bool | None = None
    # ``auto`` answered for the model because its endpoint was unreachable: asking again later
    # may give the model's answer (the operator does, within its tries).
    llm_unreachable: bool = False

    @property
    def top(self) -> RootCause | None:
        return self.root_causes[0] if self.root_causes else None

    @property
    def fallback_reason(self) -> str | None:
        """Why the deterministic engine answered for the model (None when it did not)."""
        note = next((n for n in self.notes if n.startswith(FALLBACK_PREFIX)), None)
        return None if note is None else note[len(FALLBACK_PREFIX):].strip() or note

    def as_dict(self) -> dict[str, Any]:
        return {
            "root_causes": [rc.as_dict() for rc in self.root_causes],
            "engine": self.engine,
            "model": self.model,
            "steps": [s.as_dict() for s in self.steps],
            "traces": list(self.traces),
            "usage": self.usage.as_dict(),
            "notes": list(self.notes),
            "log_evidence": list(self.log_evidence),
            "transcript": list(self.transcript),
        }
