"""The ThinkFL engine: the fine-tuned model drives the three tools; ``auto`` falls back.

The deterministic engine runs first (tens of milliseconds): it picks the anomalous traces the
model is shown when the incident names none, and its answer is the fallback. Each picked trace
gets one bounded conversation (``conversation``); the answers are merged by reciprocal rank and
go through the same ranking as every engine (known names only, pod → service → node, ≥ 3,
padded with the deterministic order when the model names fewer).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core import deadline
from thinkfl_operator.core.errors import BackendError, DeadlineExceeded
from thinkfl_operator.core.models import (
    FALLBACK_PREFIX,
    Candidate,
    Diagnosis,
    Incident,
    Topology,
    Usage,
)
from thinkfl_operator.engines.heuristic.engine import HeuristicEngine
from thinkfl_operator.engines.ranking import rank
from thinkfl_operator.engines.thinkfl.client import ChatClient
from thinkfl_operator.engines.thinkfl.conversation import Conversation, ConversationResult, stages
from thinkfl_operator.evidence.toolbox import Toolbox
from thinkfl_operator.evidence.topology import observed
from thinkfl_operator.telemetry.spans import SpanTable
from thinkfl_operator.telemetry.store import Store

#: Reciprocal-rank fusion constant for merging several traces' answers.
RRF_K = 10.0


class NoAnswer(BackendError):
    """The model gave no usable answer: its turns or its time ran out (the message says which)."""

    retryable = False
    backend = "llm"
    reason = "NoAnswer"


def open_chat(settings: Settings) -> ChatClient:
    """The client of the settings' LLM endpoint: one per process in the operator (every
    diagnosis shares it), one per engine otherwise."""
    return ChatClient(settings.llm)


class ThinkFLEngine:
    """``thinkfl`` (model only, errors surface) or ``auto`` (model, deterministic fallback).

    ``client`` is shared and its owner closes it; without one the engine opens its own, which
    ``close`` closes."""

    def __init__(self, settings: Settings, auto: bool = False, client: ChatClient | None = None) -> None:
        self.settings = settings
        self.auto = auto
        self.name = "auto" if auto else "thinkfl"
        self.heuristic = HeuristicEngine(settings)
        self._own_client = client is None
        self.client = client or open_chat(settings)

    def close(self) -> None:
        """Close the client this engine opened (not a shared one)."""
        if self._own_client:
            self.client.close()

    def preload(self, store: Store, start_s: float, end_s: float) -> None:
        self.heuristic.preload(store, start_s, end_s)

    def diagnose(self, store: Store, incident: Incident) -> Diagnosis:
        started = time.monotonic()
        baseline = self.heuristic.diagnose(store, incident)
        count = incident.max_traces or self.settings.llm.max_traces
        traces = [incident.trace_id] if incident.trace_id else baseline.traces[:count]
        outcomes: list[tuple[ConversationResult, Toolbox]] = []
        problem, unreachable = "", False
        # The model's budget, and never past the whole diagnosis's (the operator's deadline).
        ends = min(started + self.settings.llm.deadline_s, deadline.ends() or math.inf)
        try:
            self._converse_all(store, incident, traces, ends, outcomes)
        except (BackendError, DeadlineExceeded) as exc:  # the deterministic answer is ready
            if not self.auto:
                raise
            problem, unreachable = str(exc), exc.retryable
        candidates = fuse([o.candidates for o, _ in outcomes])
        if not candidates:
            ended = "; ".join(o.why_unanswered() for o, _ in outcomes) or "no trace to show it"
            reason = problem or f"the model gave no usable answer: {ended}"
            if not self.auto:
                raise NoAnswer(reason)
            answer = self._fallback(baseline, reason, outcomes)
            answer.llm_unreachable = unreachable
            return answer
        result = self._result(store, baseline, outcomes, candidates, time.monotonic() - started)
        if problem:
            result.notes.insert(0, f"LLM failed after some traces were answered: {problem}")
        return result

    def _converse_all(self, store: Store, incident: Incident, traces: list[str], deadline: float,
                      results: list[tuple[ConversationResult, Toolbox]]) -> None:
        """One conversation per trace, appended to ``results`` as it starts (so a failure
        mid-way leaves the replies received so far accounted for)."""
        llm = self.settings.llm
        plan = stages((llm.think_steps, llm.rethink_steps, llm.final_steps))
        for trace_id in traces:
            spans = store.find_trace(trace_id)
            root = spans.span(incident.root_span_id) if incident.root_span_id else spans.root()
            if root is None:
                continue
            tools = self._toolbox(store, spans)
            conversation = Conversation(self.client, tools, plan, deadline)
            results.append((conversation.out, tools))
            conversation.run(root)

    def _toolbox(self, store: Store, spans: SpanTable) -> Toolbox:
        ev = self.settings.evidence
        return Toolbox(store, spans, ev.max_tool_chars, ev.baseline_minutes * 60,
                       ev.current_minutes * 60, ev.sigma)

    def _fallback(self, baseline: Diagnosis, reason: str,
                  outcomes: list[tuple[ConversationResult, Toolbox]] | None = None) -> Diagnosis:
        """``auto``: the deterministic answer, saying why the model's was not used."""
        baseline.notes.insert(0, f"{FALLBACK_PREFIX} {reason}; the deterministic engine answered")
        baseline.engine = "heuristic"
        baseline.model = ""
        if outcomes:
            account_usage(baseline.usage, outcomes)
            baseline.transcript = [m for o, _ in outcomes for m in o.messages]
        return baseline

    def _result(self, store: Store, baseline: Diagnosis, outcomes: list[tuple[ConversationResult, Toolbox]],
                candidates: list[Candidate], seconds: float) -> Diagnosis:
        topology = _topology(store, [tools for _, tools in outcomes])
        padding = [Candidate(c.node, c.service, c.pod, f"deterministic engine: {c.reason}" if c.reason
                             else "deterministic engine: ranked next") for c in baseline.root_causes]
        candidates, lead_note = self._with_log_lead(baseline, candidates)
        ranked = rank(candidates, topology, fallback=padding, minimum=self.settings.heuristic.min_candidates)
        usage = Usage(seconds={"heuristic": sum(baseline.usage.seconds.values()), "total": seconds})
        account_usage(usage, outcomes)
        notes = [*lead_note, *[p for o, _ in outcomes for p in o.problems][:20]]
        return Diagnosis(
            root_causes=ranked,
            engine="thinkfl",
            model=self.settings.llm.model,
            steps=[s for _, tools in outcomes for s in tools.steps],
            traces=[tools.spans.trace_ids()[0] for _, tools in outcomes if len(tools.spans)],
            usage=usage,
            notes=notes + baseline.notes,
            transcript=[m for o, _ in outcomes for m in o.messages],
            topology=topology,
            log_evidence=list(baseline.log_evidence),
            log_lead=baseline.log_lead,
            logs_read=baseline.logs_read,
        )

    def _with_log_lead(self, baseline: Diagnosis, candidates: list[Candidate]) -> tuple[list[Candidate], list[str]]:
        """``auto``: a service the logs alone put first with a strong shift goes ahead of a model
        answer naming another (the model's tools show no logs); the model's order follows."""
        lead = baseline.log_lead
        if not self.auto or not lead or (candidates and candidates[0].service == lead):
            return candidates, []
        first = next((c for c in baseline.root_causes if c.service == lead), None)
        if first is None:
            return candidates, []
        put = Candidate(first.node, lead, first.pod, f"logs: {first.reason}")
        model_top = candidates[0].service if candidates else "nothing"
        note = f"logs put {lead} first (strong log shift the model cannot see); the model's top was {model_top}"
        return [put, *[c for c in candidates if c.service != lead]], [note]


def account_usage(usage: Usage, outcomes: list[tuple[ConversationResult, Toolbox]]) -> None:
    """Add the conversations' LLM calls, tokens, tool calls and stage times to ``usage``."""
    for outcome, tools in outcomes:
        usage.llm_calls += outcome.llm_calls
        usage.prompt_tokens += outcome.prompt_tokens
        usage.completion_tokens += outcome.completion_tokens
        usage.tool_calls += len(tools.steps)
        usage.seconds["llm"] = usage.seconds.get("llm", 0.0) + outcome.llm_seconds
        for stage, seconds in outcome.seconds.items():
            usage.seconds[stage] = usage.seconds.get(stage, 0.0) + seconds


def fuse(answers: list[list[Candidate]]) -> list[Candidate]:
    """Reciprocal-rank fusion of several ranked answers (one answer is returned as it is)."""
    answers = [a for a in answers if a]
    if len(answers) <= 1:
        return answers[0] if answers else []
    score: dict[tuple[str, str, str], float] = defaultdict(float)
    first: dict[tuple[str, str, str], Candidate] = {}
    for answer in answers:
        for position, cand in enumerate(answer):
            key = (cand.node, cand.service, cand.pod)
            score[key] += 1.0 / (RRF_K + position + 1)
            first.setdefault(key, cand)
    return [first[k] for k in sorted(score, key=lambda k: -score[k])]


def _topology(store: Store, toolboxes: list[Toolbox]) -> Topology:
    pods: dict[str, str] = {}
    nodes: dict[str, str] = {}
    for tools in toolboxes:
        pods.update(tools.spans.pods())
        nodes.update(tools.spans.nodes())
    return observed(store, pods, nodes)
