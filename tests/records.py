"""Diagnosis records as older releases wrote them, for the tests that read them back."""

from __future__ import annotations

from typing import Any


def as_version_1(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` (a version 2 diagnosis record) as the first release wrote it: topology maps
    keyed by pod, no padding flags, a null time, no ``truncated`` when false."""
    return {"version": 1, "incident": {**record["incident"], "time": None},
            "engine": record["engine"], "model": record["model"],
            "conversations": record["conversations"],
            "answer": [{k: a[k] for k in ("rank", "service", "pod", "node", "score")}
                       for a in record["answer"]],
            "topology": {"pods": {e["pod"]: e["service"] for e in record["topology"]},
                         "nodes": {e["pod"]: e["node"] for e in record["topology"] if e["node"]}}}
