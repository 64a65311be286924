"""The conversation ThinkFL was trained on, kept byte for byte, and the coordinator's stage prompts.

``SYSTEM_PROMPT`` and ``USER_PREFIX`` must not drift from the training text (a unit test compares
them with the published example). Keeping them constant also lets vLLM reuse its prefix cache
across incidents. The stage and corrective prompts follow the authors' coordinator: think (trace
tool), rethink ("inspect deeper into the trace tree", trace and metrics tools), final (only
``print_results``).

The coordinator (github.com/LLM4AIOps/ThinkFL, ``coordinator.py``) also adds a user turn after
every tool answer ("Please continue to further identify the root cause service…"). Those are not
sent: in the conversation the model was trained on (the model card's example) a tool answer is
followed directly by the model's next call, and the stage prompts already say what is allowed.
"""

from __future__ import annotations

from thinkfl_operator.core.models import TOOL_NAMES as TOOL_NAMES  # noqa: PLC0414 (the prompt's tools)
from thinkfl_operator.core.models import Span
from thinkfl_operator.evidence.formatting import root_span_table

#: The call-format instruction that ends the system prompt (closing tag repeated, as trained).
CALL_FORMAT = (
    "<tool_call>{'name': tool name, **can and must only** be one of [search_traces, "
    "search_fluctuating_metrics, print_results], 'arguments': tool input}<tool_call>"
)

SYSTEM_PROMPT = (
    "You are a software operations engineer. Your task is to systematically diagnose and "
    "identify the root cause of software failures.\n"
    "\n"
    "You have the following tools:\n"
    "\n"
    '[{"type": "function", "function": {"name": "search_traces", "description": "Get all '
    'traces with the input span_id as the parent", "parameters": {"type": "object", '
    '"properties": {"parent_span_id": {"type": "string", "description": "The parent span_id '
    'to be queried."}}, "required": ["parent_span_id"]}}}, {"type": "function", "function": '
    '{"name": "search_fluctuating_metrics", "description": "Get all fluctuating metrics '
    'with the input service_name and around the input timestamp", "parameters": {"type": '
    '"object", "properties": {"service_name": {"type": "string", "description": "The '
    'service_name to be queried."}, "timestamp": {"type": "string", "description": "The '
    'timestamp to be queried."}}, "required": ["service_name", "timestamp"]}}}, {"type": '
    '"function", "function": {"name": "print_results", "description": "Print the root cause '
    'node/service/pod and corresponding reason.", "parameters": {"type": "object", '
    '"properties": {"root_causes": {"type": "array", "description": "An array of potential '
    "root causes ordered by likelihood. You may include any number of causes, but you must "
    'provide at least three potential root causes.", "items": {"type": "object", '
    '"properties": {"node": {"type": "string", "description": "The root cause node (e.g. '
    'node-1)."}, "service": {"type": "string", "description": "The root cause service (e.g. '
    'recommendationservice)."}, "pod": {"type": "string", "description": "The root cause '
    'pod (e.g. recommendationservice-0)."}}, "required": []}}}}}}]\n'
    "\n"
    "The parameters for these tools should be filled as a JSON object, with JSON keys as "
    "parameter names and key values as parameter content.\n"
    "\n"
    "You must insert the following command once in your reply to call the tool:\n"
    "\n"
    "<tool_call>{'name': tool name, **can and must only** be one of [search_traces, "
    "search_fluctuating_metrics, print_results], 'arguments': tool input}<tool_call>"
)

USER_PREFIX = (
    "Please read the following root trace and identify corresponding root cause service.\n"
    "A possible approach is to recursively search for the traces you suspect have issues, "
    "and combine with metrics data to confirm the root cause.\n"
)

#: Opens the rethink stage: go deeper before answering; metrics become available.
RETHINK_PROMPT = (
    "It is better to inspect deeper into the trace tree. Even if you have already found the "
    "root cause service, use search_traces to inspect the deeper traces and confirm that there "
    "is no deeper root cause. You may also use search_fluctuating_metrics to combine with "
    "metrics data and confirm the root cause."
)

#: Opens the final stage: only print_results is accepted from here on.
FINAL_PROMPT = (
    "Please rethink the above and return the answer: the root causes ordered by likelihood, "
    "each with its node, service or pod and the reason, by the print_results tool."
)

#: The reply held no tool call that could be read.
UNPARSABLE_REPLY = (
    "Your reply did not contain a tool call that could be read. You must insert the "
    "following command once in your reply to call the tool:\n\n" + CALL_FORMAT
)

#: ``UNKNOWN_TOOL.format(name=..., allowed=...)``: a tool outside the allowed ones was called.
UNKNOWN_TOOL = "There is no tool named {name} here. The tool name can and must only be one of [{allowed}]."

#: The exact call was made before; the cached result follows this note.
REPEATED_CALL = (
    "You have already made this exact call; its result is repeated below. Please try something "
    "else: search the traces of another span, check another service, or call print_results."
)

#: In the final stage only the answer is accepted.
FINAL_ONLY = (
    "Only print_results is accepted now. Please return the root causes ordered by likelihood "
    "by the print_results tool."
)


def first_user_message(root: Span, index: int = 0) -> str:
    """The opening user turn: the two trained sentences, then the root span as a pandas table."""
    return USER_PREFIX + root_span_table(root, index)
