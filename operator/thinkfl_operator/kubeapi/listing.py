"""Reading FailureIncidents out of the cluster for ``thinkfl export`` and ``thinkfl report``.

One list call (paged), through the official client set up by ``client.api_client``: in-cluster
service account, else the kubeconfig (``KUBECONFIG`` or ``~/.kube/config``). ``with_records``
then reads the record ConfigMap of each incident that needs one (``feedback.home``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import kubernetes
import urllib3

from thinkfl_operator.core.errors import BackendError
from thinkfl_operator.feedback.home import inline_records
from thinkfl_operator.kubeapi import records
from thinkfl_operator.kubeapi.client import GROUP, PLURAL, VERSION, api_client

PAGE = 500  # objects per list call; a record is up to 1 MiB, so a page stays well below 1 GiB
TIMEOUT_S = 60.0  # per call: a hung API server must not hang the command


def list_incidents(namespace: str | None = None, host: str | None = None) -> list[dict[str, Any]]:
    """Every FailureIncident of ``namespace`` (all namespaces when None), as the API returns
    them; ``BackendError`` when the API cannot be reached or refuses."""
    api = kubernetes.client.CustomObjectsApi(api_client(host))
    where = f"namespace {namespace}" if namespace else "all namespaces"
    items: list[dict[str, Any]] = []
    token: str | None = None
    try:
        while True:
            page = _page(api, namespace, token)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
    except kubernetes.client.ApiException as exc:
        raise BackendError(f"Kubernetes API answered {exc.status} {exc.reason} listing "
                           f"{PLURAL}.{GROUP} in {where}") from None
    except urllib3.exceptions.HTTPError as exc:
        raise BackendError(f"Kubernetes API unreachable listing {PLURAL}.{GROUP} in {where}: "
                           f"{exc}") from None


def with_records(objects: Iterable[Mapping[str, Any]], wanted: Callable[[Mapping[str, Any]], bool],
                 host: str | None = None) -> list[dict[str, Any]]:
    """The objects, each ``wanted`` one with its record in ``status.record`` (one GET of its
    ConfigMap each; ``feedback.home.inline_records``); ``BackendError`` when the API refuses."""
    core = kubernetes.client.CoreV1Api(api_client(host))
    try:
        return inline_records(objects, lambda namespace, name: records.read(core, namespace, name, TIMEOUT_S),
                              wanted)
    finally:
        core.api_client.close()


def _page(api: kubernetes.client.CustomObjectsApi, namespace: str | None,
          token: str | None) -> dict[str, Any]:
    paging: dict[str, Any] = {"limit": PAGE, "_request_timeout": TIMEOUT_S}
    if token:
        paging["_continue"] = token
    if namespace:
        page = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, **paging)
    else:
        page = api.list_cluster_custom_object(GROUP, VERSION, PLURAL, **paging)
    if not isinstance(page, dict):
        raise BackendError(f"Kubernetes API answered a {type(page).__name__} listing {PLURAL}.{GROUP}, "
                           "not a list object")
    return page
