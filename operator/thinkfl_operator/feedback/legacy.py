"""Records of schema version 1 (issue 8's first release) upgraded to version 2.

Version 1 kept the topology as two maps keyed by pod name, ``time`` null when unknown,
``truncated`` only when true, and did not say which answer entries were padding. Incidents
diagnosed before the upgrade still carry such a ``status.record``, so it is read and upgraded.

Padding of a ThinkFL answer is derived again from the recorded conversations, as the engine
ranked it: each conversation's answer is its first ``print_results`` naming a candidate (the
loop ends there), the answers are merged (``engine.fuse``) and ranked over the topology without
padding; the entries past those are the padding. A version-1 record whose conversations were
cut (``truncated``) may lose a conversation's answer, and then more entries count as padding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from thinkfl_operator.core.models import PRINT_RESULTS, Candidate, Topology
from thinkfl_operator.engines.ranking import rank
from thinkfl_operator.engines.thinkfl.engine import fuse
from thinkfl_operator.engines.thinkfl.parser import parse_reply, root_cause_dicts


def upgrade(record: Mapping[str, Any]) -> dict[str, Any]:
    """A (checked) version-1 record in the version-2 shape."""
    topology = record["topology"]
    pods = {str(k): str(v) for k, v in topology["pods"].items()}
    nodes = {str(k): str(v) for k, v in topology["nodes"].items()}
    named = len(record["answer"])
    if record["engine"] == "thinkfl":
        named = model_named(record["conversations"], Topology(pods=pods, nodes=nodes))
    incident = record["incident"]
    return {
        "version": 2,
        "incident": {**incident, "time": incident.get("time") or ""},
        "engine": record["engine"], "model": record["model"],
        "conversations": record["conversations"],
        "answer": [{**a, "padded": i >= named} for i, a in enumerate(record["answer"])],
        "topology": [{"pod": pod, "service": pods.get(pod, ""), "node": nodes.get(pod, "")}
                     for pod in sorted(set(pods) | set(nodes))],
        "truncated": record.get("truncated") is True,
    }


def model_named(conversations: list[list[dict[str, str]]], topology: Topology) -> int:
    """How many leading entries of the ranked answer the model named itself."""
    answers = [first_answer(conversation) for conversation in conversations]
    return len(rank(fuse(answers), topology, minimum=0))


def first_answer(conversation: list[dict[str, str]]) -> list[Candidate]:
    """The candidates of the first ``print_results`` call naming one, as the loop accepts it."""
    for message in conversation:
        if message["role"] != "assistant":
            continue
        for call in parse_reply(message["content"]).calls:
            if call.name == PRINT_RESULTS:
                found = candidates_of(call.arguments)
                if found:
                    return found
    return []


def candidates_of(arguments: Mapping[str, Any]) -> list[Candidate]:
    """The root causes of a ``print_results`` call that name a node, service or pod."""
    causes = root_cause_dicts(arguments.get("root_causes", arguments))
    found = [Candidate(node=str(c.get("node") or ""), service=str(c.get("service") or ""),
                       pod=str(c.get("pod") or ""), reason=str(c.get("reason") or ""))
             for c in causes]
    return [c for c in found if c.node or c.service or c.pod]
