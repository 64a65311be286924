"""The FailureIncident CRD as an API server serves it: discovery names, the OpenAPI v3 document
and the checks of a write against the schema.

Read from ``failureincidents.yaml`` beside this module, a copy of ``crds/failureincidents.yaml``
kept by ``scripts/sync_crd.py``, so nothing here repeats a name or a field of the CRD. Used by
the in-process API of ``thinkfl demo --operator`` (``sandbox_api``). Not checked: the CEL rules
(``x-kubernetes-validations``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kmock
import yaml

#: The CRD as the API server is given it (the package's copy of crds/failureincidents.yaml).
CRD_FILE = Path(__file__).with_name("failureincidents.yaml")


@functools.cache
def crd() -> dict[str, Any]:
    """The CustomResourceDefinition, parsed once."""
    loaded: dict[str, Any] = yaml.safe_load(CRD_FILE.read_text("utf-8"))
    return loaded


def names() -> dict[str, Any]:
    """``spec.names``: kind, listKind, plural, singular, shortNames, categories."""
    found: dict[str, Any] = crd()["spec"]["names"]
    return found


def served() -> dict[str, Any]:
    """The CRD's stored version: its name, schema, subresources and printer columns."""
    return next(v for v in crd()["spec"]["versions"] if v.get("storage"))


def group_version() -> str:
    return f"{crd()['spec']['group']}/{served()['name']}"


def schema() -> dict[str, Any]:
    root: dict[str, Any] = served()["schema"]["openAPIV3Schema"]
    return root


def resource_info() -> kmock.ResourceInfo:
    """FailureIncident as discovery shows it: names, scope, verbs and subresources of the CRD."""
    return kmock.ResourceInfo(
        kind=names()["kind"], singular=names()["singular"], shortnames=names().get("shortNames", []),
        categories=names().get("categories", []), namespaced=crd()["spec"]["scope"] == "Namespaced",
        subresources=list(served().get("subresources", {})),
        verbs=["list", "watch", "get", "patch", "create", "update", "delete"])


def definition() -> tuple[str, dict[str, Any]]:
    """The schema's name as the API server publishes it (``dev.thinkfl.v1alpha1.FailureIncident``)
    and the schema with its GroupVersionKind (what ``kubectl explain`` looks it up by)."""
    group, version, kind = crd()["spec"]["group"], served()["name"], names()["kind"]
    gvk = {"group": group, "version": version, "kind": kind}
    return (f"{'.'.join(reversed(group.split('.')))}.{version}.{kind}",
            {**schema(), "x-kubernetes-group-version-kind": [gvk]})


@functools.cache
def openapi_v3() -> dict[str, Any]:
    """The group-version's OpenAPI v3 document as the API server publishes a CRD: the schema
    with its GroupVersionKind (what ``kubectl explain`` reads), and a PATCH path that takes
    ``fieldValidation`` (so ``kubectl apply`` leaves validation to the server: ``validate``)."""
    group, version, kind = crd()["spec"]["group"], served()["name"], names()["kind"]
    name, incident = definition()
    ref = {"$ref": f"#/components/schemas/{name}"}
    gvk = {"group": group, "version": version, "kind": kind}
    listed = {"type": "object", "required": ["items"], "description": f"A list of {kind}.",
              "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                             "metadata": {"type": "object"}, "items": {"type": "array", "items": ref}},
              "x-kubernetes-group-version-kind": [{**gvk, "kind": names()["listKind"]}]}
    validation = {"name": "fieldValidation", "in": "query", "schema": {"type": "string"},
                  "description": "Ignore, Warn or Strict: what to do with unknown or duplicate fields."}
    patch = {"operationId": f"patchNamespaced{kind}", "parameters": [validation],
             "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk,
             "requestBody": {"content": {"application/merge-patch+json": {"schema": {"type": "object"}}}},
             "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}}
    path = f"/apis/{group}/{version}/namespaces/{{namespace}}/{names()['plural']}/{{name}}"
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
            "paths": {path: {"patch": patch}},
            "components": {"schemas": {name: incident, f"{name}List": listed}}}


def validate(obj: Mapping[str, Any], whole: bool, strict: bool) -> None:
    """The API server's checks of a write, as kmock errors: unknown fields (``strict``: 400
    BadRequest) and, for a whole object (a create), the schema (422 Invalid). A patch is checked
    for unknown fields only; ``status`` is the operator's (its own subresource)."""
    kind, version = names()["kind"], served()["name"]
    unknown = sorted(_unknown(obj, schema(), ""))
    if strict and unknown:
        fields = ", ".join(f'unknown field "{u}"' for u in unknown)
        raise kmock.KubernetesError(status=400, reason="BadRequest", message=(
            f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding error: {fields}'))
    if not whole:
        return
    checked = {k: v for k, v in obj.items() if k != "status"}
    problems = [f"{_path(e)}: Invalid value: {json.dumps(e.instance)}: {e.message}"
                for e in jsonschema.Draft4Validator(schema()).iter_errors(checked)]
    if problems:
        name = (obj.get("metadata") or {}).get("name", "")
        raise kmock.KubernetesError(status=422, reason="Invalid", message=(
            f'{kind}.{crd()["spec"]["group"]} "{name}" is invalid: {", ".join(problems)}'))


def _unknown(value: Any, node: Mapping[str, Any], at: str) -> Iterator[str]:
    """Fields of ``value`` that the schema ``node`` does not declare (metadata is not walked)."""
    if isinstance(value, dict) and "properties" in node and at != ".metadata":
        for key, item in value.items():
            if key in node["properties"]:
                yield from _unknown(item, node["properties"][key], f"{at}.{key}")
            elif not node.get("additionalProperties") and not node.get("x-kubernetes-preserve-unknown-fields"):
                yield f"{at}.{key}".lstrip(".")
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for i, item in enumerate(value):
            yield from _unknown(item, node["items"], f"{at}[{i}]")


def _path(error: jsonschema.ValidationError) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".") or "<root>"
