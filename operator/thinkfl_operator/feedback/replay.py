"""A record replayed as an evaluation case: a model run over a past incident's evidence.

``thinkfl evaluate records.jsonl`` uses this to compare a model (a new checkpoint, new budgets)
with the causes SREs confirmed, before it is rolled out. Each recorded conversation's opening
(system prompt, root span) is shown to the model again and the model drives the production loop
(``engines.thinkfl.conversation``); its tool calls are answered from the record's tool turns
instead of live backends, so a replay needs no cluster, tracing backend or Prometheus. The
answers are merged and ranked as the ThinkFL engine does, but not padded with a deterministic
order: a replay's ranks measure the model alone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.models import (
    SEARCH_METRICS,
    SEARCH_TRACES,
    Diagnosis,
    Fluctuation,
    Span,
    Usage,
)
from thinkfl_operator.engines.ranking import rank
from thinkfl_operator.engines.thinkfl import prompt
from thinkfl_operator.engines.thinkfl.client import ChatClient
from thinkfl_operator.engines.thinkfl.conversation import Conversation, ConversationResult, stages
from thinkfl_operator.engines.thinkfl.engine import NoAnswer, account_usage, fuse
from thinkfl_operator.engines.thinkfl.parser import ToolCall, parse_reply
from thinkfl_operator.evidence.metrics import normalize_timestamp
from thinkfl_operator.evidence.toolbox import Toolbox
from thinkfl_operator.feedback.opening import root_of
from thinkfl_operator.feedback.record import OMITTED, InvalidRecord, topology_of
from thinkfl_operator.telemetry.memory import MemoryStore
from thinkfl_operator.telemetry.spans import SpanTable, empty_frame

#: A tool call as the record is searched for it: tool name and normalized arguments.
CallKey = tuple[str, ...]

NOT_RECORDED = "not recorded in this incident's evidence"
#: Tool answers are JSON (or the metrics tool's error line); the loop's refusals are prose.
_ANSWER_STARTS = ("[", "{", "Error: ")


class RecordedTools(Toolbox):
    """The tools answering from a record instead of backends.

    A search is looked up by tool name and normalized arguments (``call_key``); a call the
    record does not hold gets an honest answer in the tool's format: the empty JSON value, then
    a note line, as a capped answer carries one. It is a Toolbox over an empty store, so the loop
    and the steps it leaves are the production ones; the structured results (spans,
    fluctuations) are empty, as a record keeps only the text the model read.
    """

    def __init__(self, answers: Mapping[CallKey, str]) -> None:
        super().__init__(MemoryStore(), SpanTable(empty_frame()))
        self.answers = answers

    def search_traces(self, parent_span_id: str) -> tuple[list[Span], str]:
        args = {"parent_span_id": parent_span_id}
        missing = f"[]\n(the child spans of {parent_span_id} are {NOT_RECORDED})"
        return [], self._answer(SEARCH_TRACES, args, missing)

    def search_fluctuating_metrics(self, service_name: str,
                                   timestamp: object) -> tuple[list[Fluctuation], str]:
        args = {"service_name": service_name, "timestamp": str(timestamp)}
        missing = f"{{}}\n(the metrics of {service_name} at {timestamp} are {NOT_RECORDED})"
        return [], self._answer(SEARCH_METRICS, args, missing)

    def _answer(self, tool: str, args: dict[str, Any], missing: str) -> str:
        text = self.answers.get(call_key(tool, args))
        self._record(tool, args, "answered from the record" if text is not None else NOT_RECORDED,
                     missing if text is None else text)
        return missing if text is None else text


def call_key(tool: str, arguments: Mapping[str, Any]) -> CallKey:
    """The arguments the tool would act on, as the loop passes them (span IDs and services
    stripped, timestamps in epoch seconds whether given in s or ms)."""
    if tool == SEARCH_TRACES:
        return tool, str(arguments.get("parent_span_id", "")).strip()
    raw = arguments.get("timestamp", "")
    try:
        when = repr(normalize_timestamp(raw))
    except ValueError:
        when = str(raw)
    return tool, str(arguments.get("service_name", "")).strip(), when


def recorded_answers(record: Mapping[str, Any]) -> dict[CallKey, str]:
    """Every search answered in the record: each assistant turn's calls paired, in order, with
    the tool turns after it (the loop answers every call but the final one with one turn)."""
    answers: dict[CallKey, str] = {}
    for conversation in record["conversations"]:
        pending: list[ToolCall] = []
        for message in conversation:
            if message["role"] == "assistant":
                pending = list(parse_reply(message["content"]).calls)
            elif message["role"] == "tool" and pending:
                call, text = pending.pop(0), _payload(message["content"])
                if call.name in (SEARCH_TRACES, SEARCH_METRICS) and text is not None:
                    answers.setdefault(call_key(call.name, call.arguments), text)
    return answers


def replay(record: Mapping[str, Any], settings: Settings, client: ChatClient | None = None) -> Diagnosis:
    """The model at ``settings.llm`` (or ``client``) diagnosing the recorded incident again.

    Raises ``InvalidRecord`` when a conversation cannot be reopened, ``NoAnswer`` when the model
    gives no usable answer, ``LLMUnavailable`` when the endpoint fails."""
    started = time.monotonic()
    llm = settings.llm
    client = client or ChatClient(llm)
    topology = topology_of(record)
    roots = [root_of(_opening(conversation), topology.pods) for conversation in record["conversations"]]
    answers = recorded_answers(record)
    plan = stages((llm.think_steps, llm.rethink_steps, llm.final_steps))
    outcomes: list[tuple[ConversationResult, Toolbox]] = []
    for root in roots:
        tools = RecordedTools(answers)
        conversation = Conversation(client, tools, plan, started + llm.deadline_s)
        outcomes.append((conversation.out, tools))
        conversation.run(root)
    candidates = fuse([outcome.candidates for outcome, _ in outcomes])
    if not candidates:
        ended = ", ".join(o.ended for o, _ in outcomes) or "the record has no conversation"
        raise NoAnswer(f"the model gave no usable answer on the replayed record ({ended})")
    usage = Usage(seconds={"total": time.monotonic() - started})
    account_usage(usage, outcomes)
    return Diagnosis(
        root_causes=rank(candidates, topology, minimum=settings.heuristic.min_candidates),
        engine="thinkfl", model=llm.model,
        steps=[step for _, tools in outcomes for step in tools.steps],
        traces=[root.trace_id for root in roots], usage=usage,
        notes=[problem for outcome, _ in outcomes for problem in outcome.problems][:20],
        transcript=[message for outcome, _ in outcomes for message in outcome.messages],
        topology=topology, roots=roots,
    )


def _opening(conversation: list[dict[str, str]]) -> str:
    """The first user message of a recorded conversation (right after the system prompt)."""
    if [m["role"] for m in conversation[:2]] != ["system", "user"]:
        raise InvalidRecord("a recorded conversation cannot be replayed: it does not open with "
                            "a system prompt and a user message")
    return conversation[1]["content"]


def _payload(content: str) -> str | None:
    """The tool's answer in a tool turn (a repeated call's cached answer included); None for
    the loop's refusals and for answers truncation omitted."""
    if content.startswith(prompt.REPEATED_CALL + "\n"):
        content = content[len(prompt.REPEATED_CALL) + 1:]
    if content == OMITTED or not content.startswith(_ANSWER_STARTS):
        return None
    return content
