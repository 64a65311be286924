"""What a real ``kubectl`` (v1.32) asks of the sandbox's API that kmock's emulator does not serve.

kmock 0.8 answers a list without ``kind``, ignores ``fieldSelector``, ``labelSelector`` and a
watch's ``resourceVersion``, streams a watch as ``application/octet-stream``, prints no Table, publishes
no OpenAPI, names the core group ``/v1`` and gives a subresource its resource's short names.
kubectl needs each: ``get`` refuses a list without ``kind`` and asks for a Table (the CRD's
printer columns); ``describe`` lists Events with a ``fieldSelector`` on ``involvedObject``;
``wait`` lists and watches with ``fieldSelector=metadata.name=…``; ``get -w`` watches from the
list's ``resourceVersion``; ``explain`` and ``apply`` read ``/openapi/v3``, and ``apply`` then
leaves validation to the server (``fieldValidation=Strict``), so a write that carries
``fieldValidation`` is checked against the CRD's schema (``crd.validate``). A write without it
(the sandbox's own client) is stored as sent, so the operator's own spec checks stay testable.

``/openapi/v2`` is the same schema, as protobuf for kubectl (``openapi_v2``): before v1.27 it is all
kubectl reads. Not served: the CRD's CEL rules, Tables for resources other than FailureIncidents
and core Events, ``limit``/``continue`` paging (every list is one page), server-side apply
(``apply --server-side``). ``dryRun`` writes are answered and not stored (``kubectl diff``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp.web
import kmock
import yaml

from thinkfl_operator.kube import openapi_v2
from thinkfl_operator.kube.crd import definition, group_version, names, openapi_v3, validate
from thinkfl_operator.kube.sandbox_tables import EVENT_COLUMNS, Column, crd_columns, table
from thinkfl_operator.kube.selectors import selected


class KubectlEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with the answers kubectl needs (see the module's docstring)."""

    def __attrs_post_init__(self) -> None:
        # Ahead of kmock's own (the first reaction registered answers): a watch is JSON, or
        # kubectl has "no stream serializers registered for application/octet-stream".
        self.fallback[kmock.action.WATCH] << {"Content-Type": "application/json"} << self._serve_watch
        super().__attrs_post_init__()
        self.fallback["get /openapi/v2"] << self._serve_openapi_v2
        self.fallback["get /openapi/v3"] << self._serve_openapi_index
        self.fallback[f"get /openapi/v3/apis/{group_version()}"] << self._serve_openapi_spec

    async def _handle(self, request: kmock.Request) -> Any:
        mode = request.params.get("fieldValidation")
        if mode and _ours(request) and request.subresource is None and isinstance(request.data, dict):
            validate(request.data, whole=request.action == kmock.action.CREATE, strict=mode == "Strict")
        try:
            if request.resource is not None and request.action == kmock.action.CREATE \
                    and request.resource.plural == "selfsubjectaccessreviews":  # kubectl auth can-i
                return aiohttp.web.json_response({  # its body comes as protobuf: not read
                    "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                    "status": {"allowed": True, "reason": "the sandbox's API has no authorization"}},
                    status=201)
            if _dry_run(request):
                return aiohttp.web.json_response(
                    self._dry_run(request), status=201 if request.action == kmock.action.CREATE else 200)
            return await super()._handle(request)
        except kmock.KubernetesError as exc:
            raise _as_kubernetes_says(exc, request) from exc

    def _dry_run(self, request: kmock.Request) -> dict[str, Any]:
        """What a write would store, stored nowhere (``kubectl diff``, ``--dry-run=server``)."""
        if request.action == kmock.action.CREATE:
            return dict(request.data)
        assert request.resource is not None and request.name is not None  # a named object's URL
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            raise kmock.KubernetesError(status=404)
        current: dict[str, Any] = copy.deepcopy(dict(self.objects[key].raw))
        return _merged(current, request.data) if request.action == kmock.action.UPDATE else current

    async def _serve_version(self, request: kmock.Request) -> Any:
        """Discovery: the core group's version is ``v1`` (kmock says ``/v1``, and kubectl then
        prefers ``events.k8s.io``'s Events); a subresource (``failureincidents/status``) has no
        names of its own, or kubectl could map ``fi`` to it."""
        listed: Any = await super()._serve_version(request)
        listed["groupVersion"] = listed["groupVersion"].lstrip("/")
        for entry in listed["resources"]:
            if "/" in entry["name"]:
                entry.update(singularName="", shortNames=[], categories=[], verbs=["get", "patch", "update"])
        return listed

    async def _serve_list(self, request: kmock.Request) -> Any:
        listed: Any = await super()._serve_list(request)
        items = [o for o in listed["items"] if selected(o, request.params)]
        version = str(max((_version(o) for o in items), default=0))  # a watch from here skips these
        columns = _columns(request)
        if columns and _wants_table(request):
            return table(items, columns, request.params.get("includeObject", "Metadata"), version)
        assert request.resource is not None and request.resource.plural is not None  # a known resource
        info = self.resources[request.resource]
        api_version = "/".join(filter(None, (request.resource.group, request.resource.version)))
        return {"kind": f"{info.kind or request.resource.plural.capitalize()}List", "apiVersion": api_version,
                "metadata": {"resourceVersion": version}, "items": items}

    async def _serve_fetch(self, request: kmock.Request) -> Any:
        obj: Any = await super()._serve_fetch(request)
        columns = _columns(request)
        return table([obj], columns, request.params.get("includeObject", "Metadata")) \
            if columns and _wants_table(request) else obj

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        """kmock's watch, without the objects the selector excludes or the client has seen (a
        ``resourceVersion`` at or below the one asked for: kmock replays every object first)."""
        since = int(request.params["resourceVersion"]) if request.params.get(
            "resourceVersion", "").isdigit() else 0
        columns = _columns(request) if _wants_table(request) else []
        event: Any
        async for event in super()._serve_watch(request):
            obj = event.get("object") if isinstance(event, dict) else None
            if obj is None:
                yield event  # the empty chunk that starts the stream
            elif selected(obj, request.params) and (not since or event.get("type") != "ADDED" or _version(obj) > since):
                yield {**event, "object": table([obj], columns)} if columns else event

    async def _serve_openapi_v2(self, request: kmock.Request) -> Any:
        """Swagger 2.0: protobuf for kubectl (before v1.27 its only OpenAPI), else JSON."""
        name, incident = definition()
        if openapi_v2.PROTOBUF in _accept(request):
            return openapi_v2.document({name: incident})
        return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v0.1.0"}, "paths": {},
                "definitions": {name: incident}}

    async def _serve_openapi_index(self, request: kmock.Request) -> Any:
        digest = hashlib.sha256(json.dumps(openapi_v3(), sort_keys=True).encode()).hexdigest()[:16].upper()
        path = f"apis/{group_version()}"
        return {"paths": {path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}}}

    async def _serve_openapi_spec(self, request: kmock.Request) -> Any:
        return openapi_v3()


def _dry_run(request: kmock.Request) -> bool:
    """A write with ``dryRun`` (a query parameter, or DeleteOptions in a DELETE's body)."""
    writes = (kmock.action.CREATE, kmock.action.UPDATE, kmock.action.DELETE)
    options = request.data if request.action == kmock.action.DELETE and isinstance(request.data, dict) else {}
    return request.action in writes and bool(request.params.get("dryRun") or options.get("dryRun"))


def _merged(base: dict[str, Any], patch: Any) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) applied to ``base`` in place: ``null`` removes a key."""
    for key, value in (patch or {}).items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _merged(base[key], value)
        else:
            base[key] = value
    return base


#: Kubernetes' reasons for kmock's errors about an object: kubectl before v1.27 tells a missing
#: object by its reason alone (``apply`` creates only what is ``NotFound``).
_REASONS = {404: ("NotFound", "not found"), 409: ("AlreadyExists", "already exists")}


def _as_kubernetes_says(exc: kmock.KubernetesError, request: kmock.Request) -> kmock.KubernetesError:
    """``failureincidents.thinkfl.dev "x" not found`` (reason NotFound), as the API server words it."""
    resource = request.resource
    data = request.data if isinstance(request.data, dict) else {}
    name = request.name or (data.get("metadata") or {}).get("name")
    if exc.status not in _REASONS or resource is None or not name:
        return exc
    reason, says = _REASONS[exc.status]
    what = ".".join(filter(None, (resource.plural, resource.group)))
    return kmock.KubernetesError(status=exc.status, reason=reason, message=f'{what} "{name}" {says}',
                                 details={"name": name, "group": resource.group, "kind": resource.plural})


def _ours(request: kmock.Request) -> bool:
    return request.resource is not None and request.resource.plural == names()["plural"]


def _columns(request: kmock.Request) -> list[Column]:
    """The Table columns of the resource asked for; none (a plain list) for the others."""
    if _ours(request):
        return crd_columns()
    core_events = request.resource is not None and request.resource.group == "" \
        and request.resource.plural == "events"
    return EVENT_COLUMNS if core_events else []


def _accept(request: kmock.Request) -> str:
    return next((v for k, v in request.headers.items() if k.lower() == "accept"), "")


def _wants_table(request: kmock.Request) -> bool:
    return "as=Table" in _accept(request)


def _version(obj: Mapping[str, Any]) -> int:
    version = str((obj.get("metadata") or {}).get("resourceVersion", ""))
    return int(version) if version.isdigit() else 0


def kubeconfig(server: str, namespace: str = "default") -> str:
    """A kubeconfig for kubectl to reach the sandbox's API at ``server`` (plain HTTP, no user)."""
    text: str = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "thinkfl-sandbox",
        "clusters": [{"name": "thinkfl-sandbox", "cluster": {"server": server}}],
        "users": [{"name": "thinkfl-sandbox", "user": {}}],
        "contexts": [{"name": "thinkfl-sandbox", "context": {
            "cluster": "thinkfl-sandbox", "user": "thinkfl-sandbox", "namespace": namespace}}],
    }, sort_keys=False)
    return text
