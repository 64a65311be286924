"""Pod → service names, the one place that knows Kubernetes pod naming."""

from __future__ import annotations

import re

# Deployment pods: <name>-<replicaset hash>-<5 char suffix>, e.g. ts-basic-service-5dc8d4f9fd-llznp
_DEPLOYMENT = re.compile(r"^(?P<svc>.+)-[a-z0-9]{5,10}-[a-z0-9]{5}$")
# StatefulSet (and AIOps-2022) pods: <name>-<ordinal>, e.g. frontend-2
_ORDINAL = re.compile(r"^(?P<svc>.+)-\d+$")


def service_of_pod(pod: str) -> str:
    """The service a pod belongs to: the pod name minus its ReplicaSet hash and suffix, or ordinal."""
    for pattern in (_DEPLOYMENT, _ORDINAL):
        match = pattern.match(pod)
        if match:
            return match.group("svc")
    return pod


def service_of_aiops_pod(pod: str) -> str:
    """AIOps-2022 names: ``cartservice2-0`` is a second deployment of ``cartservice``."""
    return re.sub(r"2?-\d+$", "", pod)
