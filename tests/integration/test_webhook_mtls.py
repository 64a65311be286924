"""Mutual TLS on the webhook port, over real TLS on 127.0.0.1 (trustme certificates): the
operator's own app and server (``kube.web``) with the settings the chart sets.

``create`` is an in-memory stand-in for the Kubernetes API that keeps every manifest it got, so
each refusal can be shown to have created nothing.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme

from tests.integration.alert_payloads import FIRING
from tests.net import free_port
from thinkfl_operator.config.settings import AlertSettings, Settings
from thinkfl_operator.core.errors import UserInputError
from thinkfl_operator.kube.metrics import OperatorMetrics
from thinkfl_operator.kube.web import HttpServer, build_app, tls_context

TOKEN = "mtls-and-a-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


class Pki:
    """The webhook's CA (server and Alertmanager certificates) and a stranger's CA, as files."""

    def __init__(self, folder: Path) -> None:
        self.ca, self.other_ca = trustme.CA(), trustme.CA()
        self.server = self.ca.issue_cert("127.0.0.1", "localhost")
        self.client = self.ca.issue_cert("alertmanager.monitoring.svc")
        self.stranger = self.other_ca.issue_cert("alertmanager.monitoring.svc")
        self.files = {name: folder / f"{name}.pem" for name in ("cert", "key", "ca")}
        self.server.cert_chain_pems[0].write_to_path(str(self.files["cert"]))
        self.server.private_key_pem.write_to_path(str(self.files["key"]))
        self.ca.cert_pem.write_to_path(str(self.files["ca"]))

    def settings(self, **alerts: Any) -> AlertSettings:
        values = {"token": TOKEN, "tls_cert_file": str(self.files["cert"]),
                  "tls_key_file": str(self.files["key"]), "tls_client_ca_file": str(self.files["ca"])}
        return AlertSettings.model_validate(values | alerts)

    def client_context(self, cert: trustme.LeafCert | None) -> ssl.SSLContext:
        """What Alertmanager's ``tls_config`` sets up: the server's CA, and a certificate to show."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        if cert is not None:
            cert.configure_cert(context)
        return context


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@asynccontextmanager
async def webhook(alerts: AlertSettings, created: list[dict[str, Any]]) -> AsyncIterator[str]:
    """The operator's webhook port serving HTTPS; its base URL."""

    async def create(manifest: dict[str, Any]) -> str:
        created.append(manifest)
        return "created"

    port = free_port()
    server = HttpServer(build_app(Settings(alerts=alerts), OperatorMetrics(), create), port,
                        "127.0.0.1", ssl_context=tls_context(alerts))
    await server.start()
    try:
        yield f"https://localhost:{port}"
    finally:
        await server.stop()


async def post(url: str, context: ssl.SSLContext, headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, \
            session.post(url + "/alerts", json=FIRING, headers=headers, ssl=context) as response:
        return response.status, await response.text()


@pytest.mark.asyncio
async def test_a_certificate_from_the_client_ca_and_the_token_create_the_incident(pki: Pki) -> None:
    created: list[dict[str, Any]] = []
    async with webhook(pki.settings(), created) as url:
        status, body = await post(url, pki.client_context(pki.client), BEARER)
    assert status == 200, body
    assert [m["spec"]["service"] for m in created] == ["ts-contacts-service"]


@pytest.mark.asyncio
async def test_without_a_client_certificate_a_post_is_refused_but_probes_get_healthz(pki: Pki) -> None:
    created: list[dict[str, Any]] = []
    async with webhook(pki.settings(), created) as url:
        status, body = await post(url, pki.client_context(None), BEARER)
        async with aiohttp.ClientSession() as session, \
                session.get(url + "/healthz", ssl=pki.client_context(None)) as health:
            health_status = health.status
    assert (status, created) == (401, [])
    assert "client certificate" in body
    assert health_status == 200  # kubelet probes carry no client certificate


@pytest.mark.asyncio
async def test_a_certificate_from_another_ca_is_refused_in_the_handshake(pki: Pki) -> None:
    created: list[dict[str, Any]] = []
    async with webhook(pki.settings(), created) as url:
        with pytest.raises(aiohttp.ClientConnectionError):
            await post(url, pki.client_context(pki.stranger), BEARER)
    assert created == []


@pytest.mark.asyncio
async def test_the_token_still_applies_with_mutual_tls_unless_turned_off(pki: Pki) -> None:
    created: list[dict[str, Any]] = []
    async with webhook(pki.settings(), created) as url:
        status, _ = await post(url, pki.client_context(pki.client), {})
    assert (status, created) == (401, [])
    async with webhook(pki.settings(require_token=False), created) as url:
        status, body = await post(url, pki.client_context(pki.client), {})
    assert status == 200, body
    assert len(created) == 1


def test_tls_settings_that_cannot_work_are_refused(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs alerts.tls_client_ca_file"):
        AlertSettings(token=TOKEN, require_token=False)
    with pytest.raises(ValueError, match="go together"):
        AlertSettings(tls_cert_file=str(pki.files["cert"]))
    with pytest.raises(UserInputError, match="THINKFL_ALERTS__TLS_CLIENT_CA_FILE"):
        tls_context(pki.settings(tls_client_ca_file=str(tmp_path / "missing.pem")))
    assert tls_context(AlertSettings()) is None  # plain HTTP by default
