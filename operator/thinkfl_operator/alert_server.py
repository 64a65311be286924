"""The Alertmanager webhook receiver: ``POST /alerts`` creates FailureIncidents, ``GET /healthz``.

Kubernetes stays outside: ``create(manifest)`` is given by the caller and returns ``"created"``,
or ``"exists"`` when the API server answered 409 Conflict (the same alert fingerprint was posted
before: that is the de-duplication across payloads). Responses:

* 200 JSON ``{"created": [names], "existing": [names], "skipped": [reasons], "resolved": N}``;
* 400 text/plain, one line, when the body is not an Alertmanager payload (Alertmanager does not
  retry 4xx);
* 503 text/plain, one line, when ``create`` raised (Alertmanager retries; incidents created
  before the failure come back as ``existing`` next time);
* 405 for any other method on ``/alerts``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from thinkfl_operator.alerts import AlertIntakeConfig, BadAlertPayload, incidents_from_payload

#: Largest webhook body accepted (aiohttp answers 413 beyond it); Alertmanager groups can be big.
MAX_BODY_BYTES = 8 * 1024 * 1024

CreateIncident = Callable[[dict[str, Any]], Awaitable[str]]

log = structlog.get_logger(__name__)


def make_app(create: CreateIncident, cfg: AlertIntakeConfig, *,
             max_body_bytes: int = MAX_BODY_BYTES) -> web.Application:
    """An aiohttp application serving ``POST /alerts`` and ``GET /healthz``."""

    async def post_alerts(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            return _text(400, f"request body is not valid JSON: {exc}")
        try:
            result = incidents_from_payload(payload, cfg)
        except BadAlertPayload as exc:
            log.warning("alert payload rejected", reason=str(exc))
            return _text(400, str(exc))

        created: list[str] = []
        existing: list[str] = []
        for manifest in result.incidents:
            name = manifest["metadata"]["name"]
            namespace = manifest["metadata"]["namespace"]
            try:
                outcome = await create(manifest)
            except Exception as exc:  # noqa: BLE001 - API server or network; Alertmanager retries
                log.error("creating incident failed", name=name, namespace=namespace,
                          error=f"{type(exc).__name__}: {exc}")
                return _text(503, f"creating FailureIncident {namespace}/{name} failed: "
                                  f"{type(exc).__name__}: {exc}")
            if outcome == "created":
                created.append(name)
            elif outcome == "exists":
                existing.append(name)
            else:
                log.error("create returned an unknown outcome", name=name, outcome=outcome)
                return _text(500, f"creating FailureIncident {namespace}/{name} returned "
                                  f"{outcome!r}, not 'created' or 'exists'")
        log.info("alerts received", created=created, existing=existing,
                 skipped=result.skipped, resolved=result.resolved)
        return web.json_response({
            "created": created,
            "existing": existing,
            "skipped": result.skipped,
            "resolved": result.resolved,
        })

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post("/alerts", post_alerts)
    app.router.add_get("/healthz", healthz)
    return app


def _text(status: int, reason: str) -> web.Response:
    """A text/plain response holding ``reason`` on one line."""
    return web.Response(status=status, text=" ".join(reason.split()))
