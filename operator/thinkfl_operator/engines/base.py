"""The one engine interface: a store and an incident in, a ranked diagnosis out."""

from __future__ import annotations

from typing import Protocol

from thinkfl_operator.core.models import Diagnosis, Incident
from thinkfl_operator.telemetry.store import Store


class Engine(Protocol):
    name: str

    def diagnose(self, store: Store, incident: Incident) -> Diagnosis:
        """Rank the likely root causes of ``incident`` from the evidence in ``store``."""
        ...
