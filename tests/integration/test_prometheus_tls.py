"""An ``https://`` Prometheus is certificate-checked: a server whose certificate no trusted CA
signed is refused (the client used to switch verification off), and the same server is read
once its CA is trusted (``REQUESTS_CA_BUNDLE``, as requests reads it)."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from thinkfl_operator.telemetry.prometheus import PrometheusMetrics, PrometheusUnavailable

ANSWER = {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"pod": "cart-5dc8d4f9fd-llznp", "node": "node-1"}, "value": [1.7e9, "1"]}]}}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(ANSWER).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def https_prometheus(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", bundle
    finally:
        server.shutdown()
        server.server_close()


def _pods(url: str) -> list[str]:
    client = PrometheusMetrics(url, {"CpuUsage(m)": "x{{pods}}"}, node_source="kube_pod_info",
                               retries=0, timeout_s=5.0)
    try:
        return client.pods(1.7e9 - 600, 1.7e9, lambda pod: pod.rsplit("-", 2)[0])
    finally:
        client.close()


def test_an_untrusted_certificate_is_refused(https_prometheus: tuple[str, Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    url, _ = https_prometheus
    with pytest.raises(PrometheusUnavailable, match="(?i)certificate"):
        _pods(url)


def test_a_trusted_ca_reads_the_server(https_prometheus: tuple[str, Path],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    url, bundle = https_prometheus
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert _pods(url) == ["cart-5dc8d4f9fd-llznp"]
