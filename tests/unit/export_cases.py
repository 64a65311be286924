"""Confirmed incidents for the export, report and reward tests: real diagnoses of the synthetic
generator's incidents by the deterministic engine, kept as ``status.record`` text exactly as the
operator writes it (``build_record`` then ``encode_record``), on objects shaped as
``kubectl get fi -o json`` prints them."""

from __future__ import annotations

from functools import cache
from typing import Any

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.models import Incident
from thinkfl_operator.demo.synthetic import SyntheticIncident, generate
from thinkfl_operator.engines.heuristic.engine import HeuristicEngine
from thinkfl_operator.feedback.export import records_from_objects
from thinkfl_operator.feedback.record import build_record, decode_record, encode_record

FAULTS = {"slow-recs": ("network_delay", "recommendationservice"),
          "busy-cart": ("cpu_contention", "cartservice")}
CONFIRMED = [{"type": "Diagnosed", "status": "True"}, {"type": "Confirmed", "status": "True"}]


@cache
def incident(name: str) -> tuple[SyntheticIncident, str]:
    """The synthetic incident behind ``name`` and its diagnosis record as status text."""
    fault, service = FAULTS[name]
    synthetic = generate(fault=fault, service=service)
    spec = Incident(time_s=synthetic.time_s, service="frontend", description=f"{service} is slow")
    diagnosis = HeuristicEngine(Settings()).diagnose(synthetic.store(), spec)
    return synthetic, encode_record(build_record(diagnosis, spec))


def fi(name: str, *, label: dict[str, str] | None = None, annotation: str | None = None,
       conditions: list[dict[str, str]] | None = None, record: str | None = None,
       grade: dict[str, Any] | None = None, engine: str = "heuristic",
       namespace: str = "shop") -> dict[str, Any]:
    """A FailureIncident as the API returns it, diagnosed from ``incident(name)``."""
    text = incident(name if name in FAULTS else "slow-recs")[1]
    spec: dict[str, Any] = {"service": "frontend"}
    if label is not None:
        spec["feedback"] = label
    annotations = {"thinkfl.dev/root-cause": annotation} if annotation else {}
    return {"apiVersion": "thinkfl.dev/v1alpha1", "kind": "FailureIncident",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
            "spec": spec,
            "status": {"phase": "Diagnosed", "engine": engine, "model": "",
                       "record": text if record is None else record,
                       "grade": grade or {"score": 100, "rank": 1, "matched": ["service"],
                                          "factors": {"service": 100}},
                       "conditions": CONFIRMED if conditions is None else conditions}}


def confirmed_rows() -> list[dict[str, Any]]:
    """One row per synthetic incident, labeled with its faulty pod by an SRE."""
    objects = [fi(name, label={"pod": incident(name)[0].faulty_pod, "faultType": FAULTS[name][0],
                               "by": "alice@example.com", "note": f"{FAULTS[name][1]} was throttled"})
               for name in FAULTS]
    rows, skipped = records_from_objects(objects)
    assert not skipped
    return rows



def record_in(name: str) -> dict[str, Any]:
    """The decoded diagnosis record of ``incident(name)``."""
    return decode_record(incident(name)[1])
