"""OpenTelemetry spans through opentelemetry-api only: a no-op until an SDK is configured.

Two spans, with attributes namespaced under the span's name:

* ``thinkfl.diagnose`` around one diagnosis: ``.service``, ``.trace_id``, ``.engine_asked``;
  on exit ``.engine`` (the one that answered), ``.top_cause``, ``.root_causes``, ``.llm_calls``,
  ``.tool_calls``.
* ``thinkfl.tool`` around one tool call: ``.name``, ``.arguments`` (compact JSON),
  ``.output_length`` (characters the model saw).

An exception leaving a span is recorded on it and sets its status to ERROR (the API's default).
The tracer is looked up at each span, so a provider installed after import still applies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace

from thinkfl_operator.core.models import Diagnosis, Step

TRACER_NAME = "thinkfl_operator"
DIAGNOSE, TOOL = "thinkfl.diagnose", "thinkfl.tool"

AttributeValue = str | int | float | bool


class SpanHandle:
    """Sets attributes on one span under its name's namespace, leaving out None values."""

    def __init__(self, span: trace.Span, namespace: str) -> None:
        self.span, self.namespace = span, namespace

    def set(self, **attributes: AttributeValue | None) -> None:
        for key, value in attributes.items():
            if value is not None:
                self.span.set_attribute(f"{self.namespace}.{key}", value)


@contextmanager
def span(name: str, /, **attributes: AttributeValue | None) -> Iterator[SpanHandle]:
    """A current span called ``name`` with ``attributes`` (keys become ``<name>.<key>``)."""
    with trace.get_tracer(TRACER_NAME).start_as_current_span(name) as current:
        handle = SpanHandle(current, name)
        handle.set(**attributes)
        yield handle


def outcome(result: Diagnosis) -> dict[str, AttributeValue | None]:
    """What a ``thinkfl.diagnose`` span records on exit."""
    top = result.top
    return {
        "engine": result.engine,
        "top_cause": (top.pod or top.service or top.node) if top else None,
        "root_causes": len(result.root_causes),
        "llm_calls": result.usage.llm_calls,
        "tool_calls": result.usage.tool_calls,
    }


def step_attributes(step: Step) -> dict[str, AttributeValue | None]:
    """What a ``thinkfl.tool`` span records: the Step its call left."""
    return {
        "name": step.tool,
        "arguments": json.dumps(step.arguments, separators=(",", ":"), sort_keys=True, default=str),
        "output_length": len(step.output),
    }
