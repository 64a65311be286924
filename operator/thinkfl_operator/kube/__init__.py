"""The Kubernetes side: kopf handlers for FailureIncident (the only package that imports kopf).

Importing this package registers the handlers on kopf's default registry with evidence from the
live backends of the settings, so ``thinkfl run`` (``run`` below) starts the operator, as does
``kopf run --standalone -A -m thinkfl_operator.kube`` (there the namespaces and the liveness
endpoint come from kopf's own flags: ``-n NS``, ``--liveness URL``).
"""

from __future__ import annotations

import kopf

from thinkfl_operator.errors import UserInputError
from thinkfl_operator.kube.handlers import register
from thinkfl_operator.models import Incident
from thinkfl_operator.settings import Settings, get_settings
from thinkfl_operator.telemetry.live import open_live
from thinkfl_operator.telemetry.store import Store


def live_store(incident: Incident, settings: Settings) -> Store:
    """Evidence for one incident from the configured Jaeger/Tempo and Prometheus."""
    if not settings.traces.url:
        raise UserInputError("no tracing backend is configured: set THINKFL_TRACES__URL (Helm "
                             "value traces.url) to the Jaeger query or Tempo URL")
    return open_live(settings.traces, settings.prometheus, incident.service, incident.time_s)


def run(settings: Settings) -> None:
    """Run the operator until it is stopped: the namespaces of the settings (none: the whole
    cluster), kopf's liveness endpoint on ``operator.health_port``, and no peering (one replica,
    Recreate: nothing to coordinate with, and no peering RBAC)."""
    namespaces = settings.operator.namespaces
    kopf.run(clusterwide=not namespaces, namespaces=namespaces, standalone=True,
             liveness_endpoint=f"http://0.0.0.0:{settings.operator.health_port}/healthz")


register(kopf.get_default_registry(), get_settings(), live_store)
