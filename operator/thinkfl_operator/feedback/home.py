"""Where a diagnosis record lives: a ConfigMap the incident owns, named in ``status.recordConfigMap``.

The record (``record``: base64 of gzipped JSON, up to 1 MiB) is kept out of the status, so that
``kubectl describe fi`` stays readable and a watch event stays small. The operator writes it to
a ConfigMap beside the incident, under the key ``record.json.gz`` of ``binaryData`` (the same
base64 text), labelled ``thinkfl.dev/record``, with the incident as its controlling owner: it is
deleted with the incident (Kubernetes' garbage collector). Read it with::

    kubectl get cm NAME-record -o jsonpath='{.binaryData.record\\.json\\.gz}' | base64 -d | gunzip

Incidents diagnosed by versions before this one keep the text in ``status.record`` itself, and
it is still read from there (``record_text``). ``inline_records`` gives objects with their record
in ``status.record`` again, for the code that reads a whole object (``export``): from the
cluster, or from files of ``kubectl get`` output holding both kinds.

Pure: the kube layers make the API calls (``kubeapi.records``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from thinkfl_operator.feedback.shape import InvalidRecord

KEY = "record.json.gz"
LABEL = "thinkfl.dev/record"
SUFFIX = "-record"
API_VERSION, KIND = "thinkfl.dev/v1alpha1", "FailureIncident"
#: The status field naming the ConfigMap.
FIELD = "recordConfigMap"
MAX_NAME = 253

#: ``(namespace, name)`` → the ConfigMap object, or None when there is none.
ReadConfigMap = Callable[[str, str], Mapping[str, Any] | None]


def configmap_name(incident: str) -> str:
    """``<incident>-record``; a name too long for that is cut and made unique by a hash."""
    name = f"{incident}{SUFFIX}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(incident.encode("utf-8")).hexdigest()[:10]
    head = incident[: MAX_NAME - len(SUFFIX) - len(digest) - 1].rstrip(".-")
    return f"{head}-{digest}{SUFFIX}"


def record_configmap(meta: Mapping[str, Any], text: str) -> dict[str, Any]:
    """The ConfigMap holding ``text`` (an encoded record) of the incident with ``meta``."""
    name = str(meta.get("name") or "")
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": configmap_name(name), "namespace": str(meta.get("namespace") or ""),
            "labels": {LABEL: "true", "app.kubernetes.io/managed-by": "thinkfl-operator"},
            # No blockOwnerDeletion: it would need the update verb on failureincidents/finalizers.
            "ownerReferences": [{"apiVersion": API_VERSION, "kind": KIND, "name": name,
                                 "uid": str(meta.get("uid") or ""), "controller": True}],
        },
        "binaryData": {KEY: text},
    }


def may_replace(configmap: Mapping[str, Any], meta: Mapping[str, Any]) -> bool:
    """The existing ``configmap`` is this incident's record (the same owner uid), or one of an
    earlier incident of the same name the garbage collector has not deleted yet; anything else
    (someone's own ConfigMap of that name) is left alone."""
    owners = (configmap.get("metadata") or {}).get("ownerReferences") or []
    ours = [o for o in owners if o.get("kind") == KIND and str(o.get("apiVersion", "")).startswith("thinkfl.dev/")]
    return any(o.get("uid") == meta.get("uid") or o.get("name") == meta.get("name") for o in ours)


def text_of(configmap: Mapping[str, Any]) -> str:
    """The record text a ConfigMap holds; ``InvalidRecord`` when it holds none."""
    text = (configmap.get("binaryData") or {}).get(KEY)
    if not isinstance(text, str) or not text:
        name = (configmap.get("metadata") or {}).get("name") or "?"
        raise InvalidRecord(f"ConfigMap {name} has no binaryData.{KEY}")
    return text


def record_text(obj: Mapping[str, Any], read: ReadConfigMap) -> str:
    """The record text of a FailureIncident: ``status.record`` when an older version wrote it
    there, else its ConfigMap's; ``InvalidRecord`` saying why there is none."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    if status.get("record"):
        return str(status["record"])
    name = status.get(FIELD)
    if not name:
        raise InvalidRecord("the incident has no record (neither status.recordConfigMap nor "
                            "status.record)")
    configmap = read(str(meta.get("namespace") or ""), str(name))
    if configmap is None:
        raise InvalidRecord(f"its ConfigMap {name} is not there")
    return text_of(configmap)


def inline_records(objects: Iterable[Mapping[str, Any]], read: ReadConfigMap,
                   wanted: Callable[[Mapping[str, Any]], bool] = lambda _: True) -> list[dict[str, Any]]:
    """The objects, each ``wanted`` one whose record is in a ConfigMap with it in
    ``status.record``, as an older version kept it; one without a readable record is left
    as it is (``export`` counts it as having no record)."""
    out = []
    for obj in objects:
        status = obj.get("status") or {}
        if wanted(obj) and status.get(FIELD) and not status.get("record"):
            try:
                text = record_text(obj, read)
            except InvalidRecord:
                out.append(dict(obj))
                continue
            obj = {**obj, "status": {**status, "record": text}}
        out.append(dict(obj))
    return out


def configmaps_by_name(objects: Iterable[Mapping[str, Any]]) -> ReadConfigMap:
    """A reader over ConfigMap objects at hand (files of ``kubectl get cm -o yaml``)."""
    found = {(str((o.get("metadata") or {}).get("namespace") or ""),
              str((o.get("metadata") or {}).get("name") or "")): o for o in objects}
    return lambda namespace, name: found.get((namespace, name))
