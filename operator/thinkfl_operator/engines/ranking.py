"""Candidates from any engine → the ranked, integer-scored list written to the status.

Normalizes pod → service → node against the observed topology, drops names it never saw,
merges candidates of the same service (the first, most likely, wins; later ones may fill in its
pod or node), pads to the minimum count with the given fallback order, and turns scores into
integers 0..100 that never increase down the list.
"""

from __future__ import annotations

from collections.abc import Iterable

from thinkfl_operator.core.models import Candidate, RootCause, Topology

#: A topology's service names and node names.
_Known = tuple[set[str], set[str]]


def _known(topology: Topology) -> _Known:
    return topology.services, set(topology.nodes.values())


def normalize(candidate: Candidate, topology: Topology, known: _Known | None = None) -> Candidate | None:
    """Fill service and node from the pod; None when nothing names a known pod, service or node.
    ``known``: the topology's service and node names, when already gathered."""
    services, nodes = known if known is not None else _known(topology)
    pod, service, node = candidate.pod.strip(), candidate.service.strip(), candidate.node.strip()
    if pod and pod not in topology.pods:
        # A model may put a service in the pod field, or a pod in the service field.
        if pod in services and not service:
            service = pod
        pod = ""
    if service and service not in services:
        if service in topology.pods:
            pod, service = service, ""
        else:
            service = ""
    if pod:
        service = topology.pods[pod]
        node = topology.nodes.get(pod, node)
    if node and node not in nodes:
        node = ""
    if not (pod or service or node):
        return None
    return Candidate(node=node, service=service, pod=pod, reason=candidate.reason, score=candidate.score)


def rank(
    candidates: Iterable[Candidate],
    topology: Topology,
    fallback: Iterable[Candidate] = (),
    minimum: int = 3,
) -> list[RootCause]:
    """The ranked list: known names only, one entry per service (or node), at least ``minimum``."""
    merged: dict[str, Candidate] = {}
    order: list[str] = []
    padded: set[str] = set()  # keys added from ``fallback``
    known = _known(topology)  # gathered once, not per candidate
    for source in (candidates, fallback):
        padding = source is fallback
        for raw in source:
            cand = normalize(raw, topology, known)
            if cand is None:
                continue
            key = cand.service or f"node:{cand.node}"
            if key in merged:
                old = merged[key]
                merged[key] = Candidate(old.node or cand.node, old.service, old.pod or cand.pod,
                                        old.reason or cand.reason, old.score)
                continue
            if padding and len(order) >= minimum:
                break
            merged[key] = cand
            order.append(key)
            if padding:
                padded.add(key)
    return _scored([merged[k] for k in order], [k in padded for k in order])


def _scored(ordered: list[Candidate], padded: list[bool]) -> list[RootCause]:
    top = max((c.score for c in ordered), default=0.0)
    out: list[RootCause] = []
    previous = 100
    for i, cand in enumerate(ordered):
        if top > 0:
            score = round(100 * max(cand.score, 0.0) / top)
        else:
            score = max(100 - 10 * i, 1)  # ranked by position only (e.g. a model's answer)
        score = min(score, previous)
        previous = score
        out.append(RootCause(rank=i + 1, node=cand.node, service=cand.service, pod=cand.pod,
                             reason=cand.reason, score=score, padded=padded[i]))
    return out
