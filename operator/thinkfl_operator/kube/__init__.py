"""The Kubernetes side: kopf handlers for FailureIncident (the only package that imports kopf).

Nothing happens at import. ``operator_registry(settings)`` builds a ``kopf.OperatorRegistry``
with the handlers, evidence from the live backends of the settings and the clients the process
shares (the LLM endpoint's, the Kubernetes API's), which its cleanup handler closes when the
operator stops; ``run(settings)`` (``thinkfl run``) runs it. ``kopf run --standalone -A -m
thinkfl_operator.kube.kopf_cli`` runs the same registry (there the namespaces and the liveness
endpoint come from kopf's own flags: ``-n NS``, ``--liveness URL``).
"""

from __future__ import annotations

from typing import Any

import kopf

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.errors import UserInputError
from thinkfl_operator.core.models import Incident
from thinkfl_operator.engines.thinkfl.engine import open_chat
from thinkfl_operator.kube.handlers import register
from thinkfl_operator.kube.runner import StoreFactory, close_quietly
from thinkfl_operator.kubeapi.podlogs import PodLogs
from thinkfl_operator.kubeapi.pods import PodNodes
from thinkfl_operator.telemetry.live import live_logs, open_live
from thinkfl_operator.telemetry.loglines import LogSource
from thinkfl_operator.telemetry.store import Store


def live_stores(pods: PodNodes | None = None) -> StoreFactory:
    """Evidence for each incident from the configured Jaeger/Tempo and Prometheus; a pod's node
    from ``pods`` (the Kubernetes API) when Prometheus cannot tell and the settings allow it.

    Each store is the incident's own (it keeps what it fetched); the runner closes it when the
    diagnosis ends."""
    return LiveStores(pods)


class LiveStores:
    """``live_stores``' factory. It pickles, for worker processes, without its pod-placement
    client: a worker opens its own (in-cluster or the kubeconfig) the first time it needs one,
    as does this process with ``open_pods`` and no ``pods``."""

    def __init__(self, pods: PodNodes | None = None, open_pods: bool = False) -> None:
        self._pods = pods
        self._with_pods = pods is not None or open_pods

    def close(self) -> None:
        close_quietly(self._pods)

    def __getstate__(self) -> dict[str, Any]:
        return {"_pods": None, "_with_pods": self._with_pods}

    def __call__(self, incident: Incident, settings: Settings) -> Store:
        if not settings.traces.url:
            raise UserInputError("no tracing backend is configured: set THINKFL_TRACES__URL (Helm "
                                 "value traces.url) to the Jaeger query or Tempo URL")
        lookup = None
        if self._with_pods and settings.operator.pod_nodes_from_api and incident.namespace:
            self._pods = self._pods or PodNodes()
            lookup = self._pods.lookup(incident.namespace)
        return open_live(settings.traces, settings.prometheus, incident.service, incident.time_s,
                         lookup, logs=_log_source(settings, incident), tls=settings.tls)


def _log_source(settings: Settings, incident: Incident) -> LogSource | None:
    """Loki when configured; else the Kubernetes API's pods/log when the chart allows it
    (``logs.podLogs``) and the incident says where its pods run; else no log evidence."""
    logs = live_logs(settings.logs, incident.namespace, settings.tls)
    if logs is None and settings.logs.enabled and settings.logs.pod_logs and incident.namespace:
        logs = PodLogs(incident.namespace, settings.logs)
    return logs


def operator_registry(settings: Settings) -> kopf.OperatorRegistry:
    """A new registry with the operator's handlers, evidence from the live backends of
    ``settings``. The clients every diagnosis shares are opened once: the LLM endpoint's (when
    one is configured) and the Kubernetes API's for pod placement (when the settings allow it),
    by each worker process (``operator.worker_processes``), else here, and then the registry's
    cleanup handler closes them. kopf logs in as the official Kubernetes client does
    (in-cluster, else the kubeconfig)."""
    registry = kopf.OperatorRegistry()
    here = not settings.operator.worker_processes  # the diagnoses run in this process
    chat = open_chat(settings) if settings.llm.base_url and here else None
    pods = PodNodes() if settings.operator.pod_nodes_from_api and here else None
    stores = LiveStores(pods, open_pods=settings.operator.pod_nodes_from_api)  # a worker: its own
    register(registry, settings, stores, chat=chat)

    @kopf.on.login(id="login", registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # Through the official client, in-cluster or the kubeconfig, as the webhook's client
        # (a new registry has none of the fallback logins of kopf's default one).
        return kopf.login_via_client(**kwargs)

    @kopf.on.cleanup(id="close-clients", registry=registry)
    def close_clients(**_: Any) -> None:
        close_quietly(chat, stores)

    return registry


def run(settings: Settings) -> None:
    """Run the operator until it is stopped: the namespaces of the settings (none: the whole
    cluster), kopf's liveness endpoint on ``operator.health_port``, and no peering (one replica,
    Recreate: nothing to coordinate with, and no peering RBAC)."""
    namespaces = settings.operator.namespaces
    kopf.run(registry=operator_registry(settings), clusterwide=not namespaces,
             namespaces=namespaces, standalone=True,
             liveness_endpoint=f"http://0.0.0.0:{settings.operator.health_port}/healthz")
