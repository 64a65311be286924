"""The observed topology: what an answer may name (pods seen in spans or with KPIs, their nodes)."""

from __future__ import annotations

from collections.abc import Mapping

from thinkfl_operator.core.models import Topology
from thinkfl_operator.telemetry.store import Store


def observed(store: Store, span_pods: Mapping[str, str], span_nodes: Mapping[str, str]) -> Topology:
    """Pods seen in the spans (pod → service) plus the pods with KPIs; nodes from the store,
    overridden by what the spans say."""
    pods = dict(span_pods)
    for pod in store.metric_pods():
        pods.setdefault(pod, store.service_of(pod))
    nodes = {p: n for p in pods if (n := store.node_of(p))}
    nodes.update({p: n for p, n in span_nodes.items() if n})
    return Topology(pods=pods, nodes=nodes)
