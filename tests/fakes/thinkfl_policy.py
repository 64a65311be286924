"""A scripted stand-in for the ThinkFL model's behaviour, for the replay server.

It reads the conversation it is sent and answers the way the seed README's example does: walk
down the slowest child span with ``search_traces`` until a span has no children, check the
metrics of that span's service, then ``print_results`` with that pod, its service and two
more services seen on the way. Deterministic, so tests and the benchmark can assert on it.
"""

from __future__ import annotations

import json
import re
from typing import Any

ROOT_ROW = re.compile(r"^\s*\d+\s+(\d+)\s+(\S+)\s+([0-9a-f]+)\s", re.MULTILINE)


def call(name: str, arguments: dict[str, Any], closing: str = "</tool_call>") -> str:
    """A reply in the trained format (arguments as a JSON string, as in the seed)."""
    return "<tool_call>" + json.dumps({"name": name, "arguments": json.dumps(arguments)}) + closing


def _service(pod: str) -> str:
    parts = pod.split("-")
    return "-".join(parts[:-2]) if len(parts) > 2 else "-".join(parts[:-1]) or pod


class WalkPolicy:
    """Callable for ``ReplayServer``: request JSON in, next assistant content out."""

    def __init__(self, extra_services: int = 2) -> None:
        self.extra_services = extra_services

    def __call__(self, request: dict[str, Any]) -> str:
        messages = request["messages"]
        seen = self._seen(messages)
        last_tool = next((m["content"] for m in reversed(messages) if m["role"] == "tool"), None)
        final = any("return the answer" in m["content"] for m in messages if m["role"] == "user")
        if final or (last_tool is not None and last_tool.startswith("{")):
            return call("print_results", {"root_causes": self._answer(seen)}, "<tool_call>")
        if last_tool is None:
            row = ROOT_ROW.search(messages[1]["content"])
            assert row is not None, messages[1]["content"]
            seen.append({"cmdb_id": row.group(2), "span_id": row.group(3), "timestamp": int(row.group(1))})
            return call("search_traces", {"parent_span_id": row.group(3)})
        children = _spans(last_tool)
        if children:
            slowest = max(children, key=lambda s: s["duration"])
            return call("search_traces", {"parent_span_id": slowest["span_id"]})
        deepest = seen[-1]
        return call("search_fluctuating_metrics",
                    {"service_name": _service(deepest["cmdb_id"]), "timestamp": str(seen[0]["timestamp"])})

    def _seen(self, messages: list[dict[str, str]]) -> list[dict[str, Any]]:
        spans: list[dict[str, Any]] = []
        row = ROOT_ROW.search(messages[1]["content"]) if len(messages) > 1 else None
        if row:
            spans.append({"cmdb_id": row.group(2), "span_id": row.group(3), "timestamp": int(row.group(1))})
        for message in messages:
            if message["role"] == "tool":
                children = _spans(message["content"])
                if children:
                    spans.append(max(children, key=lambda s: s["duration"]))
        return spans

    def _answer(self, seen: list[dict[str, Any]]) -> list[dict[str, str]]:
        deepest = seen[-1]["cmdb_id"]
        answer = [{"pod": deepest}, {"service": _service(deepest)}]
        for span in reversed(seen[:-1]):
            service = _service(span["cmdb_id"])
            if all(a.get("service") != service for a in answer):
                answer.append({"service": service})
            if len(answer) >= 2 + self.extra_services:
                break
        return answer


def _spans(text: str) -> list[dict[str, Any]]:
    body = text.split("\n(", 1)[0]
    try:
        value = json.loads(body)
    except ValueError:
        return []
    return value if isinstance(value, list) else []
