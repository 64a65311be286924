"""The Alertmanager webhook receiver: ``POST /alerts`` creates FailureIncidents, ``GET /healthz``.

Secure by default: a POST must carry ``Authorization: Bearer <token>`` (Alertmanager's
``http_config.authorization``); with no token configured every POST is refused (401) and a log
line says why. With mutual TLS (``WebhookPolicy.client_cert``, the server's TLS context verifying
certificates against the client CA) a POST must also come over a connection whose client
certificate was verified (401 otherwise); ``token_required=False`` lets the certificate alone
authenticate. ``GET /healthz`` (and the operator's ``/metrics``) need neither, so kubelet probes
and scrapers without a client certificate still reach them. Each source address has a token
bucket (429 with ``Retry-After`` when empty), checked before the body is read.

Kubernetes stays outside: ``create(manifest)`` is given by the caller and returns ``"created"``,
or ``"exists"`` when the API server answered 409 Conflict (the same alert fingerprint was posted
before: that is the de-duplication across payloads); it raises ``IncidentRejected`` when the API
server refused the manifest for good, any other exception when a later try may succeed.
Creates run at most ``concurrency`` at a time across all requests; a name another request is
creating is awaited, not created twice, and a name known to exist costs no call. Responses:

* 200 JSON ``{"created": [names], "existing": [names], "rejected": [reasons], "skipped":
  [reasons], "resolved": N}``: refused alerts are in ``rejected`` (Alertmanager must not retry
  them, or the group's later alerts would wait forever);
* 400 text/plain, one line, when the body is not an Alertmanager payload (Alertmanager does not
  retry 4xx);
* 401 without the token or (mutual TLS) without a verified client certificate; 429 over the
  rate limit;
* 503 text/plain, one line, when a create failed in a way a retry may mend (Alertmanager
  retries; incidents created before the failure come back as ``existing`` next time);
* 405 for any other method on ``/alerts``.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from thinkfl_operator.alerts.guard import KnownNames, RateLimit, authorized
from thinkfl_operator.alerts.payload import (
    AlertIntakeConfig,
    BadAlertPayload,
    incidents_from_payload,
)
from thinkfl_operator.core.errors import IncidentRejected

#: Largest webhook body accepted (aiohttp answers 413 beyond it); Alertmanager groups can be big.
MAX_BODY_BYTES = 8 * 1024 * 1024
#: Seconds between two log lines about refused requests (a flood must not flood the log).
REFUSAL_LOG_S = 10.0

CreateIncident = Callable[[dict[str, Any]], Awaitable[str]]
#: Called with each alert outcome (created, existing, rejected, failed, unauthorized, limited).
Count = Callable[[str, int], None]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class WebhookPolicy:
    """Who may post and how much: the bearer token ("" refuses everything), whether it is asked
    (``token_required``), whether a verified client certificate is (``client_cert``: the TLS
    context verifies it, the handler checks there was one), requests per minute and burst per
    source address (0 per minute: no limit), creates in flight at once."""

    token: str = ""
    per_minute: int = 600
    burst: int = 60
    concurrency: int = 8
    token_required: bool = True
    client_cert: bool = False

    def __post_init__(self) -> None:
        if not self.token_required and not self.client_cert:
            raise ValueError("a webhook without a token needs client certificates (else anyone could post)")


def make_app(create: CreateIncident, cfg: AlertIntakeConfig, policy: WebhookPolicy, *,
             max_body_bytes: int = MAX_BODY_BYTES, count: Count | None = None) -> web.Application:
    """An aiohttp application serving ``POST /alerts`` and ``GET /healthz``."""
    intake = _Intake(create, policy, count or (lambda _outcome, _n: None))
    limit = RateLimit(policy.per_minute, policy.burst)
    refusals = _Refusals()

    async def post_alerts(request: web.Request) -> web.Response:
        if policy.client_cert and not _client_certificate(request):
            intake.count("unauthorized", 1)
            refusals.note("no verified client certificate (mutual TLS)", request.remote)
            return web.Response(status=401, text="a client certificate signed by the webhook's client CA is required")
        if policy.token_required and not authorized(request.headers.get("Authorization"), policy.token):
            intake.count("unauthorized", 1)
            refusals.note("no webhook token is configured (alerts.token): every alert is refused"
                          if not policy.token else "missing or wrong bearer token", request.remote)
            return web.Response(status=401, text="a bearer token is required (Authorization: Bearer ...)",
                                headers={"WWW-Authenticate": 'Bearer realm="thinkfl-alerts"'})
        wait = limit.take(request.remote or "")
        if wait > 0:
            intake.count("limited", 1)
            refusals.note("over the rate limit (alerts.ratePerMinute)", request.remote)
            return web.Response(status=429, text=f"too many requests; retry in {math.ceil(wait)} s",
                                headers={"Retry-After": str(math.ceil(wait))})
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
        outcomes = await asyncio.gather(*(intake.create(m) for m in result.incidents))
        answer: dict[str, Any] = {"created": [], "existing": [], "rejected": [], "skipped": result.skipped,
                                  "resolved": result.resolved}
        failed = []
        for manifest, (outcome, detail) in zip(result.incidents, outcomes, strict=True):
            name = manifest["metadata"]["name"]
            if outcome == "failed":
                failed.append(detail)
            else:
                answer[outcome].append(detail if outcome == "rejected" else name)
        log.info("alerts received", created=answer["created"], existing=answer["existing"],
                 rejected=answer["rejected"], failed=failed, skipped=result.skipped, resolved=result.resolved)
        if failed:
            return _text(503, failed[0] + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""))
        return web.json_response(answer)

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post("/alerts", post_alerts)
    app.router.add_get("/healthz", healthz)
    return app


class _Intake:
    """Creates incidents: bounded concurrency, one create per name in flight, known names skipped.
    Lives on one event loop (the webhook's)."""

    def __init__(self, create: CreateIncident, policy: WebhookPolicy, count: Count) -> None:
        self._create, self.count = create, count
        self._slots: asyncio.Semaphore | None = None
        self._concurrency = max(1, policy.concurrency)
        self._known = KnownNames()
        self._inflight: dict[str, asyncio.Future[tuple[str, str]]] = {}

    async def create(self, manifest: dict[str, Any]) -> tuple[str, str]:
        """(outcome, detail): ("created" | "existing", name), ("rejected", reason) or
        ("failed", reason)."""
        name = manifest["metadata"]["name"]
        if name in self._known:
            self.count("existing", 1)
            return "existing", name
        pending = self._inflight.get(name)
        if pending is not None:  # another request is creating it: its answer is ours
            outcome, detail = await asyncio.shield(pending)
            return ("existing", name) if outcome == "created" else (outcome, detail)
        future: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        self._inflight[name] = future
        try:
            result = await self._one(manifest)
            future.set_result(result)
            return result
        finally:
            del self._inflight[name]
            if not future.done():
                future.set_result(("failed", f"creating FailureIncident {name} was cancelled"))

    async def _one(self, manifest: dict[str, Any]) -> tuple[str, str]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._concurrency)
        name, namespace = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
        async with self._slots:
            try:
                outcome = await self._create(manifest)
            except IncidentRejected as exc:
                log.warning("incident refused by the API server", name=name, namespace=namespace, error=str(exc))
                self.count("rejected", 1)
                return "rejected", f"{namespace}/{name}: {exc}"
            except Exception as exc:  # noqa: BLE001 - API server or network; Alertmanager retries
                log.error("creating incident failed", name=name, namespace=namespace,
                          error=f"{type(exc).__name__}: {exc}")
                self.count("failed", 1)
                return "failed", f"creating FailureIncident {namespace}/{name} failed: {type(exc).__name__}: {exc}"
        if outcome not in ("created", "exists"):
            log.error("create returned an unknown outcome", name=name, outcome=outcome)
            self.count("failed", 1)
            return "failed", f"creating FailureIncident {namespace}/{name} returned {outcome!r}"
        self._known.add(name)
        self.count("created" if outcome == "created" else "existing", 1)
        return ("created" if outcome == "created" else "existing"), name


class _Refusals:
    """Refused requests, logged at most once per ``REFUSAL_LOG_S`` with how many there were."""

    def __init__(self) -> None:
        self._last = -math.inf
        self._since = 0

    def note(self, why: str, source: str | None) -> None:
        self._since += 1
        now = time.monotonic()
        if now - self._last >= REFUSAL_LOG_S:
            log.warning("alert post refused", reason=why, source=source or "", refused=self._since)
            self._last, self._since = now, 0


def _client_certificate(request: web.Request) -> bool:
    """Whether the request came over TLS with a client certificate the server verified (the
    TLS context refuses one that does not chain to the client CA; none at all reaches here)."""
    transport = request.transport
    return bool(transport is not None and transport.get_extra_info("peercert"))


def _text(status: int, reason: str) -> web.Response:
    """A text/plain response holding ``reason`` on one line."""
    return web.Response(status=status, text=" ".join(reason.split()))
