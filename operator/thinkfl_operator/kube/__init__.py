"""The Kubernetes side: kopf handlers for FailureIncident (the only package that imports kopf).

Importing this package registers the handlers on kopf's default registry with evidence from the
live backends of the settings, so ``thinkfl run`` (``run`` below) starts the operator, as does
``kopf run --standalone -A -m thinkfl_operator.kube`` (there the namespaces and the liveness
endpoint come from kopf's own flags: ``-n NS``, ``--liveness URL``).
"""

from __future__ import annotations

import functools

import kopf

from thinkfl_operator.errors import UserInputError
from thinkfl_operator.kube.handlers import register
from thinkfl_operator.kube.runner import StoreFactory
from thinkfl_operator.kubeapi.podlogs import PodLogs
from thinkfl_operator.kubeapi.pods import PodNodes
from thinkfl_operator.models import Incident
from thinkfl_operator.settings import Settings, get_settings
from thinkfl_operator.telemetry.live import live_logs, open_live
from thinkfl_operator.telemetry.loglines import LogSource
from thinkfl_operator.telemetry.store import Store


def live_stores(pods: PodNodes | None = None) -> StoreFactory:
    """Evidence for each incident from the configured Jaeger/Tempo and Prometheus; a pod's node
    from ``pods`` (the Kubernetes API) when Prometheus cannot tell and the settings allow it."""

    def live_store(incident: Incident, settings: Settings) -> Store:
        if not settings.traces.url:
            raise UserInputError("no tracing backend is configured: set THINKFL_TRACES__URL (Helm "
                                 "value traces.url) to the Jaeger query or Tempo URL")
        lookup = None
        if settings.operator.pod_nodes_from_api and incident.namespace:
            lookup = (pods or _default_pods()).lookup(incident.namespace)
        return open_live(settings.traces, settings.prometheus, incident.service, incident.time_s,
                         lookup, logs=_log_source(settings, incident))

    return live_store


def _log_source(settings: Settings, incident: Incident) -> LogSource | None:
    """Loki when configured; else the Kubernetes API's pods/log when the chart allows it
    (``logs.podLogs``) and the incident says where its pods run; else no log evidence."""
    logs = live_logs(settings.logs, incident.namespace)
    if logs is None and settings.logs.enabled and settings.logs.pod_logs and incident.namespace:
        logs = PodLogs(incident.namespace, settings.logs)
    return logs


@functools.cache
def _default_pods() -> PodNodes:
    return PodNodes()


def run(settings: Settings) -> None:
    """Run the operator until it is stopped: the namespaces of the settings (none: the whole
    cluster), kopf's liveness endpoint on ``operator.health_port``, and no peering (one replica,
    Recreate: nothing to coordinate with, and no peering RBAC)."""
    namespaces = settings.operator.namespaces
    kopf.run(clusterwide=not namespaces, namespaces=namespaces, standalone=True,
             liveness_endpoint=f"http://0.0.0.0:{settings.operator.health_port}/healthz")


register(kopf.get_default_registry(), get_settings(), live_stores())
