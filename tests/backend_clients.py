"""One call through each backend client the operator has (Jaeger, Tempo, Loki, Prometheus, the
LLM), built the way the operator builds it, for the tests of the transport policy they share."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from thinkfl_operator.config.settings import LLMSettings, LogsSettings, TlsSettings
from thinkfl_operator.engines.thinkfl.client import ChatClient
from thinkfl_operator.telemetry.jaeger import JaegerClient
from thinkfl_operator.telemetry.loki import LokiLogs
from thinkfl_operator.telemetry.prometheus import PrometheusMetrics
from thinkfl_operator.telemetry.tempo import TempoClient
from thinkfl_operator.telemetry.transport import RetryPolicy

#: The clients, by the name each reports to ``observability.progress.waiting_on``.
KINDS = ("jaeger", "tempo", "loki", "prometheus", "llm")


@dataclass
class Client:
    kind: str
    policy: RetryPolicy
    call: Callable[[], Any]  # one request's worth of work, through the client's public API
    close: Callable[[], None]


def client(kind: str, url: str, *, retries: int = 3, backoff_s: float = 0.01,
           timeout_s: float = 5.0, tls: TlsSettings | None = None) -> Client:
    """The ``kind`` client for the server at ``url``."""
    if kind == "jaeger":
        jaeger = JaegerClient(url, api="v1", retries=retries, backoff_s=backoff_s,
                              timeout_s=timeout_s, tls=tls)
        return Client(kind, jaeger.http.retry_policy, jaeger.services, jaeger.close)
    if kind == "tempo":
        tempo = TempoClient(url, retries=retries, backoff_s=backoff_s, timeout_s=timeout_s,
                            tls=tls)
        return Client(kind, tempo.http.retry_policy, lambda: tempo.search(0, 60), tempo.close)
    if kind == "loki":
        loki = LokiLogs(LogsSettings(loki_url=url, retries=retries, backoff_s=backoff_s,
                                     timeout_s=timeout_s), tls=tls)
        return Client(kind, loki.http.retry_policy,
                      lambda: loki.http.get_json("/loki/api/v1/labels"), loki.close)
    if kind == "prometheus":
        prom = PrometheusMetrics(url, {"cpu": 'cpu{pod=~"{pods}"}'}, retries=retries,
                                 backoff_s=backoff_s, timeout_s=timeout_s, tls=tls)
        return Client(kind, prom.http.retry_policy, lambda: prom.query("up", 1.7e9), prom.close)
    if kind == "llm":
        chat = ChatClient(LLMSettings(base_url=url + "/v1", retries=retries, backoff_s=backoff_s,
                                      request_timeout_s=timeout_s), tls=tls)
        messages = [{"role": "user", "content": "hi"}]
        return Client(kind, chat.retry_policy,
                      lambda: chat.complete(messages, time.monotonic() + 60), chat.close)
    raise ValueError(kind)
