"""The operator's HTTP port: the Alertmanager webhook (``POST /alerts``), its own metrics
(``GET /metrics``) and ``GET /healthz``; started and stopped with the operator.

The port is served by its own thread and event loop: parsing a large payload or creating a
thousand incidents never holds kopf's loop, so the operator's watches, handlers and liveness
endpoint (kopf's, on ``operator.health_port``) keep their pace under a flood of alerts, and a
stuck webhook and a stuck operator are told apart.

With ``alerts.tls_cert_file`` the port serves HTTPS; with ``alerts.tls_client_ca_file`` too it
asks every client for a certificate and refuses, in the handshake, one that does not chain to
that CA. A client without a certificate completes the handshake (kubelet probes and scrapers
carry none) and ``POST /alerts`` answers it 401 (``alerts.server``). The files are read once,
at start: a renewed certificate is served after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from concurrent.futures import Future

from aiohttp import web

from thinkfl_operator.alerts.payload import AlertIntakeConfig
from thinkfl_operator.alerts.server import CreateIncident, WebhookPolicy, make_app
from thinkfl_operator.config.settings import AlertSettings, Settings
from thinkfl_operator.core.errors import UserInputError
from thinkfl_operator.kube.metrics import OperatorMetrics

#: Seconds the server may take to start listening or to stop.
START_STOP_TIMEOUT_S = 10.0


def build_app(settings: Settings, metrics: OperatorMetrics, create: CreateIncident) -> web.Application:
    """The webhook app of ``alerts.server`` plus ``GET /metrics``."""
    alerts = settings.alerts
    intake = AlertIntakeConfig(service_labels=tuple(alerts.service_labels),
                               namespace=alerts.namespace, engine=alerts.engine,
                               namespace_label=alerts.namespace_label, max_alerts=alerts.max_alerts)
    policy = WebhookPolicy(token=alerts.token.get_secret_value(), per_minute=alerts.rate_per_minute,
                           burst=alerts.burst, concurrency=alerts.concurrency,
                           token_required=alerts.require_token, client_cert=bool(alerts.tls_client_ca_file))
    app = make_app(create, intake, policy, count=metrics.observe_alerts)

    async def scrape(request: web.Request) -> web.Response:
        body, content_type = metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    app.router.add_get("/metrics", scrape)
    return app


def tls_context(alerts: AlertSettings) -> ssl.SSLContext | None:
    """The webhook port's server TLS context (None: plain HTTP); with a client CA, client
    certificates are asked for and verified against it when given (``CERT_OPTIONAL``: the
    handler refuses a POST without one, probes without one still get ``/healthz``)."""
    if not alerts.tls_cert_file:
        return None
    # Not create_default_context(CLIENT_AUTH): it trusts the system's CAs for client certificates,
    # so any publicly signed certificate would pass. Only the configured CA may vouch for a client.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(alerts.tls_cert_file, alerts.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise UserInputError(f"webhook certificate THINKFL_ALERTS__TLS_CERT_FILE={alerts.tls_cert_file!r} "
                             f"with key {alerts.tls_key_file!r}: {exc}") from exc
    if alerts.tls_client_ca_file:
        try:
            context.load_verify_locations(cafile=alerts.tls_client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise UserInputError(f"webhook client CA THINKFL_ALERTS__TLS_CLIENT_CA_FILE="
                                 f"{alerts.tls_client_ca_file!r}: {exc}") from exc
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


class HttpServer:
    """The app on ``host:port`` in a thread of its own (``start``/``stop``); port 0 serves nothing;
    HTTPS with ``ssl_context`` (``tls_context``)."""

    def __init__(self, app: web.Application, port: int, host: str = "0.0.0.0",
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._app, self._port, self._host, self._ssl = app, port, host, ssl_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listening once it returns; the bind error (port taken) is raised here."""
        if not self._port or self._thread is not None:
            return
        started: Future[None] = Future()
        self._thread = threading.Thread(target=self._serve, args=(started,), name="webhook", daemon=True)
        self._thread.start()
        await asyncio.wait_for(asyncio.wrap_future(started), START_STOP_TIMEOUT_S)

    def _serve(self, started: Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._runner = web.AppRunner(self._app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.TCPSite(self._runner, self._host, self._port, ssl_context=self._ssl).start())
        except BaseException as exc:  # noqa: BLE001 - handed to start(), which raises it
            started.set_exception(exc)
            loop.close()
            return
        started.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

    async def stop(self) -> None:
        """Idempotent: also called when the server never started."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop already closed
            loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, START_STOP_TIMEOUT_S)
        self._thread = self._loop = None
