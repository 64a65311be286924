"""Which node each pod runs on, from the Kubernetes API: the topology when Prometheus has no
``kube_pod_info`` (no kube-state-metrics).

Off unless asked for (``operator.pod_nodes_from_api``, Helm ``topology.readPods``): listing pods
needs RBAC ``list`` on pods, which also shows their specs, so the default stays without it.
One list call per namespace (paged), kept for ``ttl_s``; a refused or failed call is logged and
gives no nodes: the diagnosis goes on without them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import kubernetes
import structlog
import urllib3

from thinkfl_operator.core import deadline
from thinkfl_operator.core.errors import BackendError
from thinkfl_operator.kubeapi.client import api_client

log = structlog.get_logger(__name__)

PAGE = 500
TIMEOUT_S = 10.0


class PodNodes:
    """``lookup(namespace)``: a pod → node function for that namespace's pods."""

    def __init__(self, host: str | None = None, ttl_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._host, self._ttl_s, self._clock = host, ttl_s, clock
        self._api: kubernetes.client.CoreV1Api | None = None
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, dict[str, str]]] = {}

    def lookup(self, namespace: str) -> Callable[[str], str]:
        """The node of a pod of ``namespace`` ("" when unknown); the list is made on first use."""
        nodes: dict[str, str] | None = None

        def node_of(pod: str) -> str:
            nonlocal nodes
            if nodes is None:
                nodes = self.nodes(namespace)
            return nodes.get(pod, "")

        return node_of

    def nodes(self, namespace: str) -> dict[str, str]:
        """Pod → node of every scheduled pod of ``namespace``; {} when the API cannot tell.

        The list call runs outside the lock (two diagnoses may both list a namespace once)."""
        with self._lock:
            cached = self._cache.get(namespace)
            if cached is not None and self._clock() - cached[0] < self._ttl_s:
                return cached[1]
        try:
            found = self._list(namespace)
        except (kubernetes.client.ApiException, urllib3.exceptions.HTTPError, OSError,
                ValueError, BackendError) as exc:  # BackendError: no Kubernetes configuration
            log.warning("pods not listed: no nodes from the Kubernetes API",
                        namespace=namespace, error=_reason(exc))
            found = {}
        with self._lock:
            self._cache[namespace] = (self._clock(), found)
        return found

    def close(self) -> None:
        """Close the API client's connections (the operator's cleanup); a later lookup opens
        a new one."""
        with self._lock:
            api, self._api = self._api, None
        if api is not None:
            api.api_client.close()

    def _list(self, namespace: str) -> dict[str, str]:
        with self._lock:
            if self._api is None:
                self._api = kubernetes.client.CoreV1Api(api_client(self._host))
        found: dict[str, str] = {}
        token: str | None = None
        while True:
            # The raw JSON: only two fields are read, and the client's models would refuse a
            # pod shape they do not know.
            paging: dict[str, Any] = {"limit": PAGE, "_preload_content": False,
                                      "_request_timeout": deadline.timeout(TIMEOUT_S)}
            if token:
                paging["_continue"] = token
            response: Any = self._api.list_namespaced_pod(namespace, **paging)  # raw: urllib3
            page = json.loads(response.data)
            for pod in page.get("items") or []:
                name = (pod.get("metadata") or {}).get("name")
                node = (pod.get("spec") or {}).get("nodeName")
                if name and node:
                    found[str(name)] = str(node)
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return found


def _reason(exc: Exception) -> str:
    if isinstance(exc, kubernetes.client.ApiException):
        return f"HTTP {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"
