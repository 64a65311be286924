"""The operator's HTTP port: the Alertmanager webhook (``POST /alerts``), its own metrics
(``GET /metrics``) and ``GET /healthz``; started and stopped with the operator.

kopf's liveness endpoint stays on its own port (``operator.health_port``) so a stuck webhook and
a stuck operator are told apart.
"""

from __future__ import annotations

from aiohttp import web

from thinkfl_operator.alert_server import CreateIncident, make_app
from thinkfl_operator.alerts import AlertIntakeConfig
from thinkfl_operator.kube.metrics import OperatorMetrics
from thinkfl_operator.settings import Settings


def build_app(settings: Settings, metrics: OperatorMetrics, create: CreateIncident) -> web.Application:
    """The webhook app of ``alert_server`` plus ``GET /metrics``."""
    alerts = settings.alerts
    intake = AlertIntakeConfig(service_labels=tuple(alerts.service_labels),
                               namespace=alerts.namespace, engine=alerts.engine,
                               namespace_label=alerts.namespace_label)
    app = make_app(create, intake)

    async def scrape(request: web.Request) -> web.Response:
        body, content_type = metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    app.router.add_get("/metrics", scrape)
    return app


class HttpServer:
    """The app on ``0.0.0.0:port`` (``start``/``stop``); ``port`` 0 serves nothing."""

    def __init__(self, app: web.Application, port: int, host: str = "0.0.0.0") -> None:
        self._runner = web.AppRunner(app, access_log=None)
        self._port, self._host = port, host

    async def start(self) -> None:
        if not self._port:
            return
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()

    async def stop(self) -> None:
        """Idempotent: also called when the server never started."""
        await self._runner.cleanup()
