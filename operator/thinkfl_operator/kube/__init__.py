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

from thinkfl_operator.engines.thinkfl.engine import open_chat
from thinkfl_operator.errors import UserInputError
from thinkfl_operator.kube.handlers import register
from thinkfl_operator.kube.runner import StoreFactory, close_quietly
from thinkfl_operator.kubeapi.podlogs import PodLogs
from thinkfl_operator.kubeapi.pods import PodNodes
from thinkfl_operator.models import Incident
from thinkfl_operator.settings import Settings
from thinkfl_operator.telemetry.live import live_logs, open_live
from thinkfl_operator.telemetry.loglines import LogSource
from thinkfl_operator.telemetry.store import Store


def live_stores(pods: PodNodes | None = None) -> StoreFactory:
    """Evidence for each incident from the configured Jaeger/Tempo and Prometheus; a pod's node
    from ``pods`` (the Kubernetes API) when Prometheus cannot tell and the settings allow it.

    Each store is the incident's own (it keeps what it fetched); the runner closes it when the
    diagnosis ends."""

    def live_store(incident: Incident, settings: Settings) -> Store:
        if not settings.traces.url:
            raise UserInputError("no tracing backend is configured: set THINKFL_TRACES__URL (Helm "
                                 "value traces.url) to the Jaeger query or Tempo URL")
        lookup = None
        if pods is not None and settings.operator.pod_nodes_from_api and incident.namespace:
            lookup = pods.lookup(incident.namespace)
        return open_live(settings.traces, settings.prometheus, incident.service, incident.time_s,
                         lookup, logs=_log_source(settings, incident), tls=settings.tls)

    return live_store


def _log_source(settings: Settings, incident: Incident) -> LogSource | None:
    """Loki when configured; else the Kubernetes API's pods/log when the chart allows it
    (``logs.podLogs``) and the incident says where its pods run; else no log evidence."""
    logs = live_logs(settings.logs, incident.namespace, settings.tls)
    if logs is None and settings.logs.enabled and settings.logs.pod_logs and incident.namespace:
        logs = PodLogs(incident.namespace, settings.logs)
    return logs


def operator_registry(settings: Settings) -> kopf.OperatorRegistry:
    """A new registry with the operator's handlers, evidence from the live backends of
    ``settings``. The clients every diagnosis shares are opened here, once: the LLM
    endpoint's (when one is configured) and the Kubernetes API's for pod placement (when the
    settings allow it); the registry's cleanup handler closes them. kopf logs in as the
    official Kubernetes client does (in-cluster, else the kubeconfig)."""
    registry = kopf.OperatorRegistry()
    chat = open_chat(settings) if settings.llm.base_url else None
    pods = PodNodes() if settings.operator.pod_nodes_from_api else None
    register(registry, settings, live_stores(pods), chat=chat)

    @kopf.on.login(id="login", registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # Through the official client, in-cluster or the kubeconfig, as the webhook's client
        # (a new registry has none of the fallback logins of kopf's default one).
        return kopf.login_via_client(**kwargs)

    @kopf.on.cleanup(id="close-clients", registry=registry)
    def close_clients(**_: Any) -> None:
        close_quietly(chat, pods)

    return registry


def run(settings: Settings) -> None:
    """Run the operator until it is stopped: the namespaces of the settings (none: the whole
    cluster), kopf's liveness endpoint on ``operator.health_port``, and no peering (one replica,
    Recreate: nothing to coordinate with, and no peering RBAC)."""
    namespaces = settings.operator.namespaces
    kopf.run(registry=operator_registry(settings), clusterwide=not namespaces,
             namespaces=namespaces, standalone=True,
             liveness_endpoint=f"http://0.0.0.0:{settings.operator.health_port}/healthz")
