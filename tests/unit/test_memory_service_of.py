"""MemoryStore.service_of asks its naming function once per pod, with the same answers."""

from __future__ import annotations

from thinkfl_operator.telemetry.memory import MemoryStore
from thinkfl_operator.telemetry.naming import service_of_pod


def test_service_of_is_the_naming_functions_asked_once_per_pod() -> None:
    asked: list[str] = []

    def naming(pod: str) -> str:
        asked.append(pod)
        return service_of_pod(pod)

    store = MemoryStore(service_of=naming)
    pods = ["ts-basic-service-5dc8d4f9fd-llznp", "frontend-2", "redis", "", "frontend-2"] * 3
    assert [store.service_of(p) for p in pods] == [service_of_pod(p) for p in pods]
    assert sorted(asked) == sorted(set(pods))
