"""The cluster's names a diagnosis record holds: pods, services, nodes and operation names.

Names come from the topology, the answer, the label and feedback, the incident's service, the
spans shown to the model (``cmdb_id`` and ``operation_name`` of the root span and of the tools'
answers) and the calls the model wrote (which may name what was never observed). Tool answers
are searched as text, so an answer cut short by the output cap still gives its names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from thinkfl_operator.core.models import PRINT_RESULTS, SEARCH_METRICS
from thinkfl_operator.engines.thinkfl.parser import parse_reply, root_cause_dicts
from thinkfl_operator.feedback.opening import root_of
from thinkfl_operator.feedback.shape import InvalidRecord

_FIELD = re.compile(r'"(cmdb_id|operation_name)"\s*:\s*("(?:[^"\\]|\\.)*")')
_CAUSE_KEYS = ("service", "pod", "node")


@dataclass
class Names:
    """Every name of one record, by kind."""

    pods: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    nodes: set[str] = field(default_factory=set)
    operations: set[str] = field(default_factory=set)

    def add_cause(self, cause: Any) -> None:
        if isinstance(cause, Mapping):
            self.services.add(str(cause.get("service") or ""))
            self.pods.add(str(cause.get("pod") or ""))
            self.nodes.add(str(cause.get("node") or ""))

    def add_messages(self, messages: Iterable[Mapping[str, str]]) -> None:
        for message in messages:
            role, text = message.get("role"), message.get("content") or ""
            if role == "assistant":
                self._add_calls(text)
            elif role == "user":
                self._add_root(text)
            elif role == "tool":
                for key, value in _FIELD.findall(text):
                    (self.pods if key == "cmdb_id" else self.operations).add(str(json.loads(value)))

    def _add_calls(self, text: str) -> None:
        for call in parse_reply(text).calls:
            if call.name == PRINT_RESULTS:
                for cause in root_cause_dicts(call.arguments.get("root_causes", call.arguments)):
                    self.add_cause(cause)
            elif call.name == SEARCH_METRICS:
                self.services.add(str(call.arguments.get("service_name") or ""))

    def _add_root(self, text: str) -> None:
        try:
            root = root_of(text, {})
        except InvalidRecord:
            return  # not an opening message
        self.pods.add(root.cmdb_id)
        self.operations.add(root.operation_name)

    def cleaned(self) -> Names:
        """Without empty names."""
        return Names(*({n for n in names if n.strip()} for names in
                       (self.pods, self.services, self.nodes, self.operations)))


def names_of(record: Mapping[str, Any], labels: Iterable[Mapping[str, Any]],
             messages: Iterable[Mapping[str, str]] = ()) -> Names:
    """Every name of a (version-2) record, of its labels (label, feedback) and of ``messages``."""
    names = Names()
    for entry in record["topology"]:
        names.add_cause(entry)
    for cause in [*record["answer"], *labels]:
        names.add_cause({k: cause.get(k) for k in _CAUSE_KEYS})
    names.services.add(str(record["incident"].get("service") or ""))
    for conversation in record["conversations"]:
        names.add_messages(conversation)
    names.add_messages(messages)
    return names.cleaned()
