"""Writing FailureIncidents outside kopf's own patches: the Alertmanager webhook creates them,
and the handlers mark one Diagnosing when a queued diagnosis gets its worker (kopf writes a
handler's patch only when the handler returns). The diagnosis record goes to a ConfigMap the
incident owns (``feedback.home``, ``records``), read back when feedback is graded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import kubernetes
import urllib3

from thinkfl_operator.core.errors import BackendError, IncidentRejected
from thinkfl_operator.feedback.home import record_text
from thinkfl_operator.kubeapi import records
from thinkfl_operator.kubeapi.client import GROUP, PLURAL, VERSION, api_client

TIMEOUT_S = 10.0  # per call: a hung API server must not hold a worker or the webhook


class IncidentApi:
    """Creating FailureIncidents and patching their status; the client is made lazily."""

    def __init__(self, host: str | None = None) -> None:
        self._host = host
        self._api: kubernetes.client.CustomObjectsApi | None = None

    def _objects(self) -> kubernetes.client.CustomObjectsApi:
        if self._api is None:
            self._api = kubernetes.client.CustomObjectsApi(api_client(self._host))
        return self._api

    def _core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self._objects().api_client)

    def connect(self) -> None:
        """Make the clients now (blocking: call it from a thread), not with the first incident,
        whose answer the first ``CoreV1Api`` would delay by a second of imports."""
        self._core()

    async def save_record(self, meta: Mapping[str, Any], text: str) -> str:
        """The record ``text`` in the incident's ConfigMap (created or replaced); its name.
        ``BackendError`` when it could not be written."""
        return await asyncio.to_thread(records.save, self._core(), meta, text)

    def read_record(self, obj: Mapping[str, Any]) -> str:
        """The record text of the FailureIncident ``obj`` (blocking: call it from a thread):
        its ConfigMap's, or ``status.record`` of an older version. ``InvalidRecord`` when
        there is none, ``BackendError`` when the API cannot be asked."""
        return record_text(obj, lambda namespace, name: records.read(self._core(), namespace, name))

    def close(self) -> None:
        """Close the API client's connections (when the operator stops)."""
        api, self._api = self._api, None
        if api is not None:
            api.api_client.close()

    async def create(self, manifest: Mapping[str, Any]) -> str:
        """``"created"``, or ``"exists"`` when the API answered 409 Conflict (same name).
        ``IncidentRejected`` when it refused the manifest for good (any other 4xx but 429),
        ``BackendError`` when a later try may succeed (5xx, 429, unreachable)."""
        namespace = manifest["metadata"]["namespace"]
        try:
            await asyncio.to_thread(self._objects().create_namespaced_custom_object,
                                    GROUP, VERSION, namespace, PLURAL, dict(manifest),
                                    _request_timeout=TIMEOUT_S)
        except kubernetes.client.ApiException as exc:
            if exc.status == 409:
                return "exists"
            if 400 <= (exc.status or 0) < 500 and exc.status != 429:
                raise IncidentRejected(f"Kubernetes API refused {namespace}/{manifest['metadata']['name']}: "
                                       f"{exc.status} {_message(exc)}") from None
            raise BackendError(f"Kubernetes API answered {exc.status} {exc.reason} creating "
                               f"{namespace}/{manifest['metadata']['name']}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendError(f"Kubernetes API unreachable creating "
                               f"{namespace}/{manifest['metadata']['name']}: {exc}") from None
        return "created"

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """A merge patch of ``status`` (the status subresource); ``BackendError`` when refused."""
        try:
            # A JSON merge patch: the client would otherwise send a strategic merge patch, which
            # the API server refuses for custom resources (415).
            await asyncio.to_thread(self._objects().patch_namespaced_custom_object_status,
                                    GROUP, VERSION, namespace, PLURAL, name, {"status": dict(status)},
                                    _content_type="application/merge-patch+json",
                                    _request_timeout=TIMEOUT_S)
        except kubernetes.client.ApiException as exc:
            raise BackendError(f"Kubernetes API answered {exc.status} {exc.reason} patching the "
                               f"status of {namespace}/{name}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendError(f"Kubernetes API unreachable patching the status of "
                               f"{namespace}/{name}: {exc}") from None


def _message(exc: kubernetes.client.ApiException) -> str:
    """The API server's own message (a Status object's ``message``), else the HTTP reason."""
    try:
        status = json.loads(exc.body or "")
    except (ValueError, TypeError):
        status = None
    message = status.get("message") if isinstance(status, dict) else None
    text = message if isinstance(message, str) and message else str(exc.reason or "")
    return " ".join(text.split())[:500]
