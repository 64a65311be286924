"""Every backend client checks certificates (issue 14): against an ``https://`` server whose
certificate a throwaway CA signed, each client (Jaeger, Tempo, Loki, Prometheus, the LLM)
refuses it by default, reads it once the CA bundle is configured (``tls.ca_bundle``, given or
from ``THINKFL_TLS__CA_BUNDLE``), and reads it with ``tls.insecure_skip_verify``, which is
warned about once."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import trustme

from tests.backend_clients import KINDS, client
from tests.fakes.scripted import ScriptedServer
from thinkfl_operator.config.settings import TlsSettings, get_settings
from thinkfl_operator.core.errors import BackendError, UserInputError
from thinkfl_operator.telemetry import transport


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """An https:// stand-in of every backend, and the PEM bundle of the CA that signed it."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with ScriptedServer(ssl_context=context) as server:
        yield server.url, bundle


def ask(kind: str, url: str, tls: TlsSettings | None) -> None:
    made = client(kind, url, retries=3, tls=tls)
    try:
        made.call()
    finally:
        made.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_certificate_no_trusted_ca_signed_is_refused_without_retries(
        kind: str, https: tuple[str, Path]) -> None:
    url, _ = https
    with pytest.raises(BackendError, match="(?i)certificate verify failed.*THINKFL_TLS__CA_BUNDLE"):
        ask(kind, url, TlsSettings())


@pytest.mark.parametrize("kind", KINDS)
def test_the_configured_ca_bundle_is_trusted(kind: str, https: tuple[str, Path]) -> None:
    url, bundle = https
    ask(kind, url, TlsSettings(ca_bundle=str(bundle)))


@pytest.mark.parametrize("kind", KINDS)
def test_the_ca_bundle_comes_from_the_environment(kind: str, https: tuple[str, Path],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    url, bundle = https
    monkeypatch.setenv("THINKFL_TLS__CA_BUNDLE", str(bundle))
    assert get_settings().tls.ca_bundle == str(bundle)
    ask(kind, url, None)  # no TLS given: the process's settings


@pytest.mark.parametrize("kind", KINDS)
def test_insecure_skip_verify_reads_the_server(kind: str, https: tuple[str, Path]) -> None:
    url, _ = https
    ask(kind, url, TlsSettings(insecure_skip_verify=True))


def test_insecure_skip_verify_is_warned_about_once(https: tuple[str, Path]) -> None:
    url, _ = https
    transport._warned.clear()  # whichever test came first in this process had the warning
    with structlog.testing.capture_logs() as logs:
        for kind in KINDS:
            ask(kind, url, TlsSettings(insecure_skip_verify=True))
    warnings = [log for log in logs if log["event"] == "tls_verification_off"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"


def test_a_missing_ca_bundle_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(UserInputError, match=f"THINKFL_TLS__CA_BUNDLE='{missing}': no such file"):
        client("prometheus", "https://127.0.0.1:1", tls=TlsSettings(ca_bundle=str(missing)))
