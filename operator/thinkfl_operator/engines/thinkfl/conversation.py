"""One bounded recursion-of-thought conversation about one root span.

The stages follow the authors' coordinator: **think** (search_traces only) → **rethink** ("inspect
deeper into the trace tree": search_traces and search_fluctuating_metrics) → **final**
(print_results only). Unlike the reference loop it is bounded: a reply budget per stage, a
deadline, capped tool answers (the Toolbox caps them), identical calls answered from a cache
with a nudge, and a final stage that accepts nothing but the answer. It never raises on what
the model writes: an unusable reply gets a short corrective message and costs a step. A tool
answer is followed by the model's next reply, with no "please continue" turn between (as trained;
see ``prompt``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from thinkfl_operator.core.models import PRINT_RESULTS as RESULTS
from thinkfl_operator.core.models import SEARCH_METRICS as METRICS
from thinkfl_operator.core.models import SEARCH_TRACES as TRACES
from thinkfl_operator.core.models import Candidate, Span
from thinkfl_operator.engines.thinkfl import prompt
from thinkfl_operator.engines.thinkfl.client import ChatClient
from thinkfl_operator.engines.thinkfl.parser import ToolCall, parse_reply, root_cause_dicts
from thinkfl_operator.evidence.toolbox import Toolbox


@dataclass(frozen=True)
class Stage:
    name: str
    tools: frozenset[str]
    replies: int
    instruction: str  # sent as a user turn when the stage starts ("" for the first)


@dataclass
class ConversationResult:
    """What one conversation produced."""

    candidates: list[Candidate] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_seconds: float = 0.0  # time spent waiting for the model
    seconds: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    ended: str = ""  # "answer" | "budget" | "deadline"

    def why_unanswered(self) -> str:
        """How a conversation without an answer ended, in the words a person needs: its turns
        used up (and on what), its time up, or cut short."""
        replies = f"{self.llm_calls} {'reply' if self.llm_calls == 1 else 'replies'}"
        if self.ended == "budget":
            text = f"all {replies} used without print_results"
        elif self.ended == "deadline":
            text = f"its time ran out after {replies} ({self.llm_seconds:.1f} s waiting for the model)"
        else:
            text = f"interrupted after {replies}"
        if self.problems:
            text += f"; {len(self.problems)} unusable tool calls, first: {self.problems[0]}"
        return text


def stages(replies: tuple[int, int, int]) -> list[Stage]:
    think, rethink, final = replies
    return [
        Stage("think", frozenset({TRACES, RESULTS}), think, ""),
        Stage("rethink", frozenset({TRACES, METRICS, RESULTS}), rethink, prompt.RETHINK_PROMPT),
        Stage("final", frozenset({RESULTS}), final, prompt.FINAL_PROMPT),
    ]


class Conversation:
    """Drives one model through the stages over one root span, with one Toolbox."""

    def __init__(self, client: ChatClient, tools: Toolbox, plan: list[Stage], deadline: float) -> None:
        self.client, self.tools, self.plan, self.deadline = client, tools, plan, deadline
        self.out = ConversationResult()
        self._cache: dict[str, str] = {}

    def run(self, root: Span) -> ConversationResult:
        """Talk until an answer, the budget or the deadline; LLMUnavailable propagates."""
        self.out.messages += [
            {"role": "system", "content": prompt.SYSTEM_PROMPT},
            {"role": "user", "content": prompt.first_user_message(root)},
        ]
        jumped = False
        for index, stage in enumerate(self.plan):
            started = time.monotonic()
            later = self.plan[index + 1].tools if index + 1 < len(self.plan) else frozenset()
            status = self._stage(stage, later, instruct=not jumped)
            self.out.seconds[stage.name] = time.monotonic() - started
            if status in ("answer", "deadline"):
                self.out.ended = status
                return self.out
            jumped = status == "jumped"
        self.out.ended = "budget"
        return self.out

    def _stage(self, stage: Stage, later: frozenset[str], instruct: bool) -> str:
        """"answer", "deadline", "jumped" (the model moved on to the next stage's tools), "done"."""
        if stage.instruction and instruct:
            self._say(stage.instruction)
        for _ in range(stage.replies):
            if time.monotonic() >= self.deadline:
                return "deadline"
            status = self._turn(stage, later)
            if status != "more":
                return status
        return "done"

    def _turn(self, stage: Stage, later: frozenset[str]) -> str:
        """One reply and the tool calls in it: "answer", "jumped" or "more"."""
        reply = self.client.complete(self.out.messages, self.deadline)
        self.out.llm_calls += 1
        self.out.prompt_tokens += reply.prompt_tokens
        self.out.completion_tokens += reply.completion_tokens
        self.out.llm_seconds += reply.seconds
        self.out.messages.append({"role": "assistant", "content": reply.text})
        parsed = parse_reply(reply.text)
        self.out.problems += parsed.problems
        if not parsed.calls:
            self._say(prompt.UNPARSABLE_REPLY)
            return "more"
        status = "more"
        for call in parsed.calls:
            result = self._call(stage, later, call)
            if result == "answer":
                return "answer"
            status = "jumped" if result == "jumped" else status
        return status

    def _call(self, stage: Stage, later: frozenset[str], call: ToolCall) -> str:
        if call.name not in (TRACES, METRICS, RESULTS):
            self._tool(prompt.UNKNOWN_TOOL.format(name=call.name, allowed=", ".join(sorted(stage.tools))))
            return "more"
        jumped = call.name not in stage.tools and call.name in later and stage.name != "final" \
            and call.name != RESULTS
        if call.name not in stage.tools and not jumped:
            self._tool(prompt.FINAL_ONLY if stage.name == "final" else
                       f"{call.name} is not available in this step; use one of {', '.join(sorted(stage.tools))}.")
            return "more"
        if call.name == RESULTS:
            return "answer" if self._answer(call) else "more"
        key = json.dumps({"name": call.name, "arguments": call.arguments}, sort_keys=True, default=str)
        if key in self._cache:
            self._tool(prompt.REPEATED_CALL + "\n" + self._cache[key])
        else:
            self._cache[key] = result = self._execute(call)
            self._tool(result)
        return "jumped" if jumped else "more"

    def _execute(self, call: ToolCall) -> str:
        args = call.arguments
        if call.name == TRACES:
            return self.tools.search_traces(str(args.get("parent_span_id", "")))[1]
        return self.tools.search_fluctuating_metrics(str(args.get("service_name", "")),
                                                     args.get("timestamp", ""))[1]

    def _answer(self, call: ToolCall) -> bool:
        causes = root_cause_dicts(call.arguments.get("root_causes", call.arguments))
        candidates = [_candidate(c) for c in causes]
        candidates = [c for c in candidates if c.node or c.service or c.pod]
        if not candidates:
            self._tool("print_results needs root_causes: a list of {node, service, pod} objects.")
            return False
        self.tools.print_results(candidates)
        self.out.candidates = candidates
        return True

    def _say(self, text: str) -> None:
        self.out.messages.append({"role": "user", "content": text})

    def _tool(self, text: str) -> None:
        self.out.messages.append({"role": "tool", "content": text})


def _candidate(raw: dict[str, Any]) -> Candidate:
    reason = str(raw.get("reason", "") or "") or "named by the model"
    return Candidate(node=str(raw.get("node", "") or ""), service=str(raw.get("service", "") or ""),
                     pod=str(raw.get("pod", "") or ""), reason=reason)
