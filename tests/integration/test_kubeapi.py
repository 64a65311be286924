"""The official client's calls outside kopf, against kmock's emulator: pod → node listing (cached,
and harmless when the API refuses or is away) and the status merge patch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.net import free_port, post_json
from thinkfl_operator.kube.sandbox import RESOURCE
from thinkfl_operator.kubeapi.incidents import IncidentApi
from thinkfl_operator.kubeapi.pods import PodNodes


async def _pod(api: Any, name: str, node: str | None, namespace: str = "shop") -> None:
    spec = {"containers": [{"name": "app", "image": "app:1"}]}
    if node:
        spec["nodeName"] = node
    await post_json(api, f"/api/v1/namespaces/{namespace}/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
        "spec": spec})


def _pod_lists(api: Any) -> int:
    return sum(1 for r in api._requests if r.resource is not None
               and r.resource.plural == "pods" and str(r.action).endswith("LIST"))


@pytest.mark.asyncio
async def test_pod_nodes_lists_a_namespace_once_per_ttl(api: Any) -> None:
    await _pod(api, "cart-1", "node-a")
    await _pod(api, "cart-2", None)  # not scheduled yet
    await _pod(api, "other-1", "node-b", namespace="elsewhere")
    now = [0.0]
    pods = PodNodes(host=str(api.url), ttl_s=60, clock=lambda: now[0])
    node_of = pods.lookup("shop")
    assert _pod_lists(api) == 0  # listed on first use only
    found = await asyncio.to_thread(lambda: [node_of(p) for p in ("cart-1", "cart-2", "other-1")])
    assert found == ["node-a", "", ""]
    await asyncio.to_thread(pods.nodes, "shop")
    assert _pod_lists(api) == 1
    now[0] = 61.0
    await asyncio.to_thread(pods.nodes, "shop")
    assert _pod_lists(api) == 2


def test_pod_nodes_without_an_api_gives_no_nodes_and_no_error() -> None:
    assert PodNodes(host=f"http://127.0.0.1:{free_port()}").nodes("shop") == {}


@pytest.mark.asyncio
async def test_status_is_merge_patched(api: Any) -> None:
    await post_json(api, "/apis/thinkfl.dev/v1alpha1/namespaces/default/failureincidents", {
        "apiVersion": "thinkfl.dev/v1alpha1", "kind": "FailureIncident",
        "metadata": {"name": "one", "namespace": "default"},
        "spec": {"service": "frontend", "time": "2026-11-01T10:40:00Z"},
        "status": {"phase": "Pending", "summary": "kept"}})
    await IncidentApi(host=str(api.url)).patch_status("default", "one", {"phase": "Diagnosing"})
    status = api.objects[RESOURCE, "default", "one"]["status"]
    assert status["phase"] == "Diagnosing" and status["summary"] == "kept"
    [patch] = [r for r in api._requests if str(r.action).endswith("UPDATE")]
    assert patch.subresource == "status"
    assert patch.headers.get("Content-Type") == "application/merge-patch+json"


@pytest.mark.asyncio
async def test_an_unreachable_api_is_a_backend_error_naming_the_call() -> None:
    from thinkfl_operator.core.errors import BackendError

    incidents = IncidentApi(host=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(BackendError, match="unreachable patching the status of default/one"):
        await incidents.patch_status("default", "one", {"phase": "Diagnosing"})
    manifest = {"metadata": {"name": "two", "namespace": "default"}}
    with pytest.raises(BackendError, match="unreachable creating default/two"):
        await incidents.create(manifest)


@pytest.mark.asyncio
@pytest.mark.parametrize(("code", "refused_for_good"), [(422, True), (413, True), (403, True),
                                                       (429, False), (500, False)])
async def test_a_create_refused_for_good_is_incident_rejected_with_the_api_message(
        code: int, refused_for_good: bool) -> None:
    """A Status answer as kube-apiserver sends it: 4xx but 409/429 is final (IncidentRejected,
    carrying the server's message), 429 and 5xx may pass later (BackendError)."""
    from aiohttp import web

    from thinkfl_operator.core.errors import BackendError, IncidentRejected

    message = 'FailureIncident.thinkfl.dev "x" is invalid: spec.service: Too long: may not be more than 253 bytes'

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": message, "reason": "Invalid", "code": code}, status=code)

    app = web.Application()
    app.router.add_post("/apis/thinkfl.dev/v1alpha1/namespaces/default/failureincidents", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        manifest = {"metadata": {"name": "x", "namespace": "default"}, "spec": {}}
        with pytest.raises(BackendError) as caught:
            await IncidentApi(host=f"http://127.0.0.1:{port}").create(manifest)
    finally:
        await runner.cleanup()
    assert isinstance(caught.value, IncidentRejected) is refused_for_good
    if refused_for_good:
        assert str(caught.value) == f"Kubernetes API refused default/x: {code} {message}"
