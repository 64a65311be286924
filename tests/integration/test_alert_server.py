"""The Alertmanager webhook receiver over real HTTP (aiohttp test server on 127.0.0.1).

``create`` is an in-memory stand-in for the Kubernetes API: it stores manifests by namespace and
name and answers "exists" for a name it already holds, as the operator maps a 409 Conflict.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.integration.alert_payloads import FIRING, FIRING_SKIP
from thinkfl_operator.alerts.payload import AlertIntakeConfig
from thinkfl_operator.alerts.server import WebhookPolicy, make_app
from thinkfl_operator.core.errors import IncidentRejected

CFG = AlertIntakeConfig(namespace="thinkfl", engine="auto")
TOKEN = "s3cret-webhook-token"
POLICY = WebhookPolicy(token=TOKEN)
BEARER = {"Authorization": f"Bearer {TOKEN}"}

def resolved_of(body: dict[str, Any]) -> dict[str, Any]:
    """The same group once every alert has resolved."""
    resolved = copy.deepcopy(body)
    resolved["status"] = "resolved"
    for one in resolved["alerts"]:
        one["status"] = "resolved"
        one["endsAt"] = "2023-01-30T12:10:00Z"
    return resolved


class FakeKubernetes:
    """Stores created manifests; a second create of the same name is a 409 → "exists"."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls = 0

    async def create(self, manifest: dict[str, Any]) -> str:
        self.calls += 1
        key = (manifest["metadata"]["namespace"], manifest["metadata"]["name"])
        if key in self.objects:
            return "exists"
        self.objects[key] = copy.deepcopy(manifest)
        return "created"


@asynccontextmanager
async def serve(app: web.Application, headers: dict[str, str] | None = None,
                ) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """``app`` listening on 127.0.0.1 (a free port), and a client pointed at it sending
    ``headers`` (default: the bearer token) with every request."""
    async with TestClient(TestServer(app, host="127.0.0.1", port=0),
                          headers=BEARER if headers is None else headers) as client:
        yield client


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def test_firing_group_creates_one_incident_per_alert_with_a_service() -> None:
    kube = FakeKubernetes()

    async def scenario() -> None:
        async with serve(make_app(kube.create, CFG, POLICY)) as client:
            response = await client.post("/alerts", json=FIRING)
            assert response.status == 200
            assert response.content_type == "application/json"
            assert await response.json() == {
                "created": ["alert-c6eadffa33fcdf37-fe1cbcc7"],
                "existing": [],
                "rejected": [],
                "skipped": [FIRING_SKIP],
                "resolved": 0,
            }

    run(scenario)
    assert list(kube.objects) == [("thinkfl", "alert-c6eadffa33fcdf37-fe1cbcc7")]
    incident = kube.objects[("thinkfl", "alert-c6eadffa33fcdf37-fe1cbcc7")]
    assert incident["apiVersion"] == "thinkfl.dev/v1alpha1"
    assert incident["kind"] == "FailureIncident"
    assert incident["metadata"]["labels"] == {
        "thinkfl.dev/fingerprint": "c6eadffa33fcdf37",
        "thinkfl.dev/source": "alertmanager",
        "thinkfl.dev/alertname": "HighErrorRate",
    }
    assert incident["metadata"]["annotations"] == {
        "thinkfl.dev/alert-url":
            "http://prometheus:9090/graph?g0.expr=error_ratio+%3E+0.05&g0.tab=1",
    }
    assert incident["spec"] == {
        "service": "ts-contacts-service",
        "targetNamespace": "train-ticket",  # the alert's namespace label: where its pods run
        "time": "2023-01-30T11:51:46.123456Z",
        "description": "ts-contacts-service error rate above 5%\n"
                       "5xx ratio is 0.12 over the last 5 minutes.",
        "engine": "auto",
    }


def test_resolved_group_creates_nothing() -> None:
    kube = FakeKubernetes()

    async def scenario() -> None:
        async with serve(make_app(kube.create, CFG, POLICY)) as client:
            response = await client.post("/alerts", json=resolved_of(FIRING))
            assert response.status == 200
            assert await response.json() == {
                "created": [], "existing": [], "rejected": [], "skipped": [], "resolved": 2,
            }

    run(scenario)
    assert kube.objects == {} and kube.calls == 0


def test_same_alert_in_two_posts_is_created_once() -> None:
    kube = FakeKubernetes()

    async def scenario() -> None:
        async with serve(make_app(kube.create, CFG, POLICY)) as client:
            first = await client.post("/alerts", json=FIRING)
            assert (await first.json())["created"] == ["alert-c6eadffa33fcdf37-fe1cbcc7"]
            # Alertmanager re-sends the group every repeat_interval; the fingerprint is stable.
            again = copy.deepcopy(FIRING)
            again["alerts"][0]["annotations"]["description"] = "5xx ratio is now 0.20."
            second = await client.post("/alerts", json=again)
            assert second.status == 200
            body = await second.json()
            assert body["created"] == [] and body["existing"] == ["alert-c6eadffa33fcdf37-fe1cbcc7"]
            assert body["resolved"] == 0 and len(body["skipped"]) == 1

    run(scenario)
    assert kube.calls == 1 and len(kube.objects) == 1  # the second post costs no API call
    first_description = kube.objects[("thinkfl", "alert-c6eadffa33fcdf37-fe1cbcc7")]["spec"]["description"]
    assert first_description.endswith("0.12 over the last 5 minutes.")  # the first one stays


def test_duplicate_fingerprints_in_one_post_call_create_once() -> None:
    kube = FakeKubernetes()
    body = copy.deepcopy(FIRING)
    body["alerts"].append(copy.deepcopy(body["alerts"][0]))

    async def scenario() -> None:
        async with serve(make_app(kube.create, CFG, POLICY)) as client:
            response = await client.post("/alerts", json=body)
            assert (await response.json())["created"] == ["alert-c6eadffa33fcdf37-fe1cbcc7"]

    run(scenario)
    assert kube.calls == 1


def test_bad_payloads_get_400_with_a_one_line_reason() -> None:
    kube = FakeKubernetes()
    bad_time = copy.deepcopy(FIRING)
    bad_time["alerts"][1]["startsAt"] = "30/01/2023 11:52"
    cases: list[tuple[bytes, str]] = [
        (b'{"alerts": [', "request body is not valid JSON: Expecting value: line 1 column 13"),
        (b"\xff\xfe{}", "request body is not valid JSON:"),
        (b"", "request body is not valid JSON: Expecting value: line 1 column 1"),
        (b'[{"status": "firing"}]', "payload is not a JSON object (got array)"),
        (b'"firing"', "payload is not a JSON object (got string)"),
        (json.dumps({k: v for k, v in FIRING.items() if k != "alerts"}).encode(),
         "payload has no 'alerts' field"),
        (b'{"alerts": "none"}', "'alerts' is not a list (got string)"),
        (b'{"alerts": [null]}', "alerts[0] is not an object (got null)"),
        (json.dumps(bad_time).encode(),
         "alerts[1].startsAt '30/01/2023 11:52' is not an RFC 3339 time"),
    ]

    async def scenario() -> None:
        async with serve(make_app(kube.create, CFG, POLICY)) as client:
            for raw, reason in cases:
                response = await client.post(
                    "/alerts", data=raw, headers={"Content-Type": "application/json"})
                text = await response.text()
                assert response.status == 400, (raw, text)
                assert response.content_type == "text/plain"
                assert text.startswith(reason), (raw, text)
                assert "\n" not in text and text == text.strip()

    run(scenario)
    assert kube.calls == 0  # a bad alert anywhere in the group creates nothing


def test_content_type_is_not_required() -> None:
    kube = FakeKubernetes()

    async def scenario() -> None:
        async with serve(make_app(kube.create, CFG, POLICY)) as client:
            response = await client.post("/alerts", data=json.dumps(FIRING),
                                         headers={"Content-Type": "text/plain"})
            assert response.status == 200

    run(scenario)
    assert len(kube.objects) == 1


def test_create_failure_is_503_and_the_retry_sees_existing() -> None:
    kube = FakeKubernetes()
    body = copy.deepcopy(FIRING)
    second = copy.deepcopy(body["alerts"][0])
    second["fingerprint"] = "0123456789abcdef"
    second["labels"]["service"] = "ts-basic-service"
    body["alerts"].append(second)
    failures = iter([None, ConnectionResetError("api server went away")])

    async def flaky(manifest: dict[str, Any]) -> str:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return await kube.create(manifest)

    async def scenario() -> None:
        async with serve(make_app(flaky, CFG, POLICY)) as client:
            response = await client.post("/alerts", json=body)
            assert response.status == 503
            assert await response.text() == (
                "creating FailureIncident thinkfl/alert-0123456789abcdef-fe1cbcc7 failed: "
                "ConnectionResetError: api server went away"
            )
            retry = await client.post("/alerts", json=body)  # Alertmanager retries 5xx
            assert await retry.json() == {
                "created": ["alert-0123456789abcdef-fe1cbcc7"],
                "existing": ["alert-c6eadffa33fcdf37-fe1cbcc7"],
                "rejected": [],
                "skipped": [FIRING_SKIP],
                "resolved": 0,
            }

    run(scenario)
    assert len(kube.objects) == 2


def test_unknown_create_outcome_is_503() -> None:
    async def confused(manifest: dict[str, Any]) -> str:
        return "maybe"

    async def scenario() -> None:
        async with serve(make_app(confused, CFG, POLICY)) as client:
            response = await client.post("/alerts", json=FIRING)
            assert response.status == 503
            assert "returned 'maybe'" in await response.text()

    run(scenario)


def test_other_methods_are_405_and_healthz_is_ok() -> None:
    kube = FakeKubernetes()

    async def scenario() -> None:
        async with serve(make_app(kube.create, CFG, POLICY)) as client:
            for method in ("GET", "PUT", "DELETE", "PATCH"):
                response = await client.request(method, "/alerts")
                assert response.status == 405, method
                assert response.headers["Allow"] == "POST"
            health = await client.get("/healthz")
            assert health.status == 200 and await health.text() == "ok"
            assert (await client.post("/healthz")).status == 405
            assert (await client.get("/nope")).status == 404

    run(scenario)
    assert kube.calls == 0


def test_oversized_body_is_413() -> None:
    kube = FakeKubernetes()

    async def scenario() -> None:
        async with serve(make_app(kube.create, CFG, POLICY, max_body_bytes=1024)) as client:
            response = await client.post("/alerts", data=b"{" + b" " * 4096 + b"}")
            assert response.status == 413

    run(scenario)
    assert kube.calls == 0


def many(count: int, service: str = "ts-order-service") -> dict[str, Any]:
    """A firing group of ``count`` distinct alerts of one service."""
    body = copy.deepcopy(FIRING)
    template = body["alerts"][0]
    body["alerts"] = []
    for i in range(count):
        one = copy.deepcopy(template)
        one["fingerprint"] = f"{i:016x}"
        one["labels"]["service"] = service
        body["alerts"].append(one)
    return body


def test_without_a_configured_token_every_post_is_refused() -> None:
    kube = FakeKubernetes()
    counted: list[tuple[str, int]] = []

    async def scenario() -> None:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer anything"}):
            app = make_app(kube.create, CFG, WebhookPolicy(token=""), count=lambda o, n: counted.append((o, n)))
            async with serve(app, headers=headers) as client:
                response = await client.post("/alerts", json=FIRING)
                assert response.status == 401, headers
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
                assert (await client.get("/healthz")).status == 200  # probes need no token

    run(scenario)
    assert kube.calls == 0 and counted == [("unauthorized", 1)] * 3


def test_a_wrong_or_missing_bearer_token_is_401_and_creates_nothing() -> None:
    kube = FakeKubernetes()
    refused = [{}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"},
               {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": TOKEN}]

    async def scenario() -> None:
        for headers in refused:
            async with serve(make_app(kube.create, CFG, POLICY), headers=headers) as client:
                response = await client.post("/alerts", json=FIRING)
                assert response.status == 401, headers
        async with serve(make_app(kube.create, CFG, POLICY), headers={"Authorization": f"bearer {TOKEN}"}) as client:
            assert (await client.post("/alerts", json=FIRING)).status == 200  # the scheme is case-blind

    run(scenario)
    assert kube.calls == 1


def test_a_source_over_its_rate_is_429_with_retry_after_and_its_body_unread() -> None:
    kube = FakeKubernetes()
    policy = WebhookPolicy(token=TOKEN, per_minute=6, burst=2)

    async def scenario() -> None:
        async with serve(make_app(kube.create, CFG, policy)) as client:
            statuses = [(await client.post("/alerts", json=many(1))).status for _ in range(2)]
            limited = await client.post("/alerts", json=many(3))
            assert statuses == [200, 200]
            assert limited.status == 429
            assert 1 <= int(limited.headers["Retry-After"]) <= 10

    run(scenario)
    assert kube.calls == 1  # the same alert twice; the limited post created nothing


def test_an_alert_the_api_refuses_for_good_is_answered_200_and_the_rest_are_created() -> None:
    kube = FakeKubernetes()
    body = many(3)

    async def strict(manifest: dict[str, Any]) -> str:
        if manifest["metadata"]["name"].startswith("alert-0000000000000001"):
            raise IncidentRejected("Kubernetes API refused thinkfl/x: 422 spec.service: Too long")
        return await kube.create(manifest)

    async def scenario() -> None:
        async with serve(make_app(strict, CFG, POLICY)) as client:
            response = await client.post("/alerts", json=body)
            assert response.status == 200  # Alertmanager must not retry the group forever
            answer = await response.json()
            assert len(answer["created"]) == 2
            assert len(answer["rejected"]) == 1 and "422 spec.service: Too long" in answer["rejected"][0]

    run(scenario)
    assert len(kube.objects) == 2


def test_creates_are_bounded_and_a_retried_payload_in_flight_creates_each_incident_once() -> None:
    kube = FakeKubernetes()
    running, peak = 0, 0

    async def slow(manifest: dict[str, Any]) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return await kube.create(manifest)

    policy = WebhookPolicy(token=TOKEN, concurrency=3)
    body = many(30)

    async def scenario() -> None:
        async with serve(make_app(slow, CFG, policy)) as client:
            first, second = await asyncio.gather(client.post("/alerts", json=body),
                                                 client.post("/alerts", json=body))
            answers = [await first.json(), await second.json()]
            assert sum(len(a["created"]) for a in answers) == 30
            assert all(len(a["created"]) + len(a["existing"]) == 30 for a in answers)

    run(scenario)
    assert kube.calls == 30 and len(kube.objects) == 30
    assert peak == 3


def test_a_payload_past_max_alerts_is_cut_and_says_so() -> None:
    kube = FakeKubernetes()
    cfg = AlertIntakeConfig(namespace="thinkfl", max_alerts=4)

    async def scenario() -> None:
        async with serve(make_app(kube.create, cfg, POLICY)) as client:
            answer = await (await client.post("/alerts", json=many(10))).json()
            assert len(answer["created"]) == 4
            assert answer["skipped"] == ["6 alerts past the first 4 of this payload were not read (alerts.maxAlerts)"]

    run(scenario)
    assert kube.calls == 4
