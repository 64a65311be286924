"""The conversations a diagnosis stands for, in the chat format ThinkFL is trained on.

When the model answered (engine ``thinkfl``), ``Diagnosis.transcript`` holds the exact messages
it saw, its conversations one after another, each opened by the system prompt: they are split
there. Otherwise (the deterministic engine, or ``auto`` falling back to it, whose failed model
conversations did not produce the answer) one conversation per walked trace is rebuilt from the
steps, as if the model had made the same calls: the system prompt and the first user message
over the trace's root span, exactly as the ThinkFL engine builds them, then an assistant turn in
the trained reply format and a tool turn with the answer for each call. A trace's walk starts
with the search of its root span, so the search_traces calls are split there; the calls made for
the incident as a whole (metrics, print_results) close every conversation, so each one ends with
the answer, as the model's do.
"""

from __future__ import annotations

from collections.abc import Sequence

from thinkfl_operator.core.models import (
    PRINT_RESULTS,
    SEARCH_TRACES,
    TOOL_NAMES,
    Diagnosis,
    Span,
    Step,
)
from thinkfl_operator.engines.thinkfl import prompt
from thinkfl_operator.evidence.toolbox import tool_call_text

Message = dict[str, str]


def conversations_of(diagnosis: Diagnosis) -> list[list[Message]]:
    """The diagnosis as chat conversations, one per walked trace."""
    if diagnosis.engine == "thinkfl" and diagnosis.transcript:
        return split_transcript(diagnosis.transcript)
    return from_steps(diagnosis.steps, diagnosis.roots)


def split_transcript(transcript: Sequence[Message]) -> list[list[Message]]:
    """Concatenated conversations split at each system message."""
    conversations: list[list[Message]] = []
    for message in transcript:
        if message["role"] == "system" or not conversations:
            conversations.append([])
        conversations[-1].append(dict(message))
    return conversations


def from_steps(steps: Sequence[Step], roots: Sequence[Span]) -> list[list[Message]]:
    """One conversation per root span: its trace's searches, then the incident-wide calls."""
    if not roots:
        return []
    starts = [root.span_id for root in roots]
    walks: list[list[Step]] = [[] for _ in roots]
    shared: list[Step] = []
    current = 0
    for step in steps:
        if step.tool not in TOOL_NAMES:
            continue  # not a tool the model knows (the log evidence step): never in a record
        if step.tool != SEARCH_TRACES:
            shared.append(step)
            continue
        parent = str(step.arguments.get("parent_span_id", ""))
        if parent in starts[current + 1:]:
            current = starts.index(parent, current + 1)
        walks[current].append(step)
    return [_opening(root) + _turns(walk + shared) for root, walk in zip(roots, walks, strict=True)]


def _opening(root: Span) -> list[Message]:
    return [{"role": "system", "content": prompt.SYSTEM_PROMPT},
            {"role": "user", "content": prompt.first_user_message(root)}]


def _turns(steps: Sequence[Step]) -> list[Message]:
    """Each call as the model's reply, then the tool's answer (print_results ends the talk)."""
    messages: list[Message] = []
    for step in steps:
        messages.append({"role": "assistant", "content": tool_call_text(step.tool, step.arguments)})
        if step.tool != PRINT_RESULTS:
            messages.append({"role": "tool", "content": step.output})
    return messages
