"""The ConfigMaps holding diagnosis records (``feedback.home``): written by the operator, read
back for the feedback and by ``thinkfl export``.

Calls made: ``create`` (the first diagnosis), ``get`` (a record read back; a ConfigMap of that
name already there) and ``patch`` (a later diagnosis of the same incident replaces its record).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kubernetes
import urllib3

from thinkfl_operator.core.errors import BackendError
from thinkfl_operator.feedback.home import may_replace, record_configmap

TIMEOUT_S = 10.0  # per call: a hung API server must not hold a worker


def save(core: kubernetes.client.CoreV1Api, meta: Mapping[str, Any], text: str) -> str:
    """Create (or replace) the record's ConfigMap of the incident with ``meta``; its name.

    ``BackendError`` when the API refuses or cannot be reached, or when a ConfigMap of that
    name belongs to something else (it is left alone)."""
    body: Any = record_configmap(meta, text)  # the client sends a plain dict as it is
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    where = f"ConfigMap {namespace}/{name}"
    try:
        try:
            core.create_namespaced_config_map(namespace, body, _request_timeout=TIMEOUT_S)
            return str(name)
        except kubernetes.client.ApiException as exc:
            if exc.status != 409:
                raise
        existing = core.read_namespaced_config_map(name, namespace, _request_timeout=TIMEOUT_S)
        if not may_replace(core.api_client.sanitize_for_serialization(existing), meta):
            raise BackendError(f"{where} exists and is not this incident's record: left alone, "
                               "the record is not kept")
        # A JSON merge patch: the new record, labels and owner replace the old ones.
        core.patch_namespaced_config_map(name, namespace, body, _request_timeout=TIMEOUT_S,
                                         _content_type="application/merge-patch+json")
    except kubernetes.client.ApiException as exc:
        raise BackendError(f"Kubernetes API answered {exc.status} {exc.reason} writing {where}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise BackendError(f"Kubernetes API unreachable writing {where}: {exc}") from None
    return str(name)


def read(core: kubernetes.client.CoreV1Api, namespace: str, name: str,
         timeout_s: float = TIMEOUT_S) -> dict[str, Any] | None:
    """The ConfigMap as a plain object, None when there is none (404); ``BackendError`` when
    the API refuses otherwise or cannot be reached."""
    try:
        found = core.read_namespaced_config_map(name, namespace, _request_timeout=timeout_s)
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            return None
        raise BackendError(f"Kubernetes API answered {exc.status} {exc.reason} reading "
                           f"ConfigMap {namespace}/{name}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise BackendError(f"Kubernetes API unreachable reading ConfigMap {namespace}/{name}: "
                           f"{exc}") from None
    plain: dict[str, Any] = core.api_client.sanitize_for_serialization(found)
    return plain
