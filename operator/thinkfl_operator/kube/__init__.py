"""The Kubernetes side: kopf handlers for FailureIncident (the only package that imports kopf).

Importing this package registers the handlers on kopf's default registry with evidence from the
live backends of the settings, so ``kopf run -m thinkfl_operator.kube`` (or ``thinkfl run``)
starts the operator.
"""

from __future__ import annotations

import kopf

from thinkfl_operator.kube.handlers import register
from thinkfl_operator.models import Incident
from thinkfl_operator.settings import Settings, get_settings
from thinkfl_operator.telemetry.live import open_live
from thinkfl_operator.telemetry.store import Store


def live_store(incident: Incident, settings: Settings) -> Store:
    """Evidence for one incident from the configured Jaeger/Tempo and Prometheus."""
    return open_live(settings.traces, settings.prometheus, incident.service, incident.time_s)


register(kopf.get_default_registry(), get_settings(), live_store)
