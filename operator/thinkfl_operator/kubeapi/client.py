"""How the official client reaches the API: the in-cluster service account when running in a
pod, else the kubeconfig (``KUBECONFIG`` or ``~/.kube/config``), or an explicit ``host`` (tests,
a proxy)."""

from __future__ import annotations

import kubernetes

from thinkfl_operator.core.errors import BackendError

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
