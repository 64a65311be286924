"""The Kubernetes API calls made outside kopf's handlers, through the official client.

kopf owns the watch and the status patches; the Alertmanager webhook creates incidents and the
``export``/``report`` commands list them. Both go through ``api_client``: the in-cluster service
account when running in a pod, else the kubeconfig (``KUBECONFIG`` or ``~/.kube/config``), or an
explicit ``host`` (tests, a proxy).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import kubernetes

from thinkfl_operator.errors import BackendError

GROUP, VERSION, PLURAL = "thinkfl.dev", "v1alpha1", "failureincidents"


def api_client(host: str | None = None) -> kubernetes.client.ApiClient:
    """A client for ``host``, else in-cluster, else from the kubeconfig.

    ``BackendError`` (retryable) when no configuration is found, with what was tried."""
    if host:
        config = kubernetes.client.Configuration()
        config.host = host.rstrip("/")
        return kubernetes.client.ApiClient(config)
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        try:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
        except (kubernetes.config.ConfigException, OSError) as exc:
            raise BackendError(f"no Kubernetes configuration: not in a pod, and the kubeconfig "
                               f"could not be read ({exc})") from None
    return kubernetes.client.ApiClient()


class IncidentApi:
    """Creating FailureIncidents (the alert webhook's one write); the client is made lazily."""

    def __init__(self, host: str | None = None) -> None:
        self._host = host
        self._api: kubernetes.client.CustomObjectsApi | None = None

    def _objects(self) -> kubernetes.client.CustomObjectsApi:
        if self._api is None:
            self._api = kubernetes.client.CustomObjectsApi(api_client(self._host))
        return self._api

    async def create(self, manifest: Mapping[str, Any]) -> str:
        """``"created"``, or ``"exists"`` when the API answered 409 Conflict (same name)."""
        namespace = manifest["metadata"]["namespace"]
        try:
            await asyncio.to_thread(self._objects().create_namespaced_custom_object,
                                    GROUP, VERSION, namespace, PLURAL, dict(manifest))
        except kubernetes.client.ApiException as exc:
            if exc.status == 409:
                return "exists"
            raise BackendError(f"Kubernetes API answered {exc.status} {exc.reason} creating "
                               f"{namespace}/{manifest['metadata']['name']}") from None
        return "created"
