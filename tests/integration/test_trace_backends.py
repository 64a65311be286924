"""Jaeger and Tempo clients against the fake trace API: retries, backoff, unreachable backends,
404 / 4xx messages, per-request timeouts and request counting."""

from __future__ import annotations

import socket
import time
from typing import Any

import pandas as pd
import pytest

from tests.fakes.hostile import HostileServer
from tests.fakes.trace_api import Fault, TraceApiServer
from thinkfl_operator.core.errors import BackendError, UserInputError
from thinkfl_operator.telemetry.http import (
    BackendRejected,
    BackendUnavailable,
    HttpBackend,
    InvalidResponse,
    NotFound,
)
from thinkfl_operator.telemetry.jaeger import JaegerClient
from thinkfl_operator.telemetry.spans import COLUMNS
from thinkfl_operator.telemetry.tempo import TempoClient

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
MISSING = "0123456789abcdef0123456789abcdef"
T0 = 1_700_000_000_000_000


def spans() -> pd.DataFrame:
    rows = [
        (TRACE, "00f067aa0ba902b7", "", "web-1", "web", "node-1", "GET /", T0, 500, "0",
         "server"),
        (TRACE, "00f067aa0ba902b8", "00f067aa0ba902b7", "db-0", "db", "node-2", "SELECT",
         T0 + 10, 400, "2", "client"),
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


class Sleeps:
    """A recorded, instant ``sleep``."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def assert_jittered(waits: list[float], ceilings: list[float]) -> None:
    """Each wait is its doubling backoff, jittered down by at most half."""
    assert len(waits) == len(ceilings)
    for wait, ceiling in zip(waits, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling


def closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------------------------- retries


def test_5xx_is_retried_with_backoff_then_unavailable_names_backend_and_url() -> None:
    sleeps = Sleeps()
    with TraceApiServer(spans(), faults=[Fault(503, "overloaded", times=None)]) as server:
        client = JaegerClient(server.url, api="v1", retries=3, backoff_s=0.5, sleep=sleeps)
        with pytest.raises(BackendUnavailable) as info:
            client.trace(TRACE)
        assert server.calls == 4 and client.requests == 4
    message = str(info.value)
    assert message == (f"Jaeger at {server_url(info.value)} is unreachable: "
                       "HTTP 503 Service Unavailable: overloaded (after 4 tries)")
    assert_jittered(sleeps.calls, [0.5, 1.0, 2.0])
    assert info.value.retryable and isinstance(info.value, BackendError)
    assert info.value.status == 503 and info.value.path == f"/api/traces/{TRACE}"


def server_url(exc: BackendError) -> str:
    url = getattr(exc, "url", "")
    assert url.startswith("http://127.0.0.1:")
    return str(url)


def test_backoff_doubles_up_to_eight_seconds_jittered() -> None:
    sleeps = Sleeps()
    with TraceApiServer(spans(), faults=[Fault(500, times=None)]) as server:
        http = HttpBackend("Jaeger", server.url, retries=6, backoff_s=2, sleep=sleeps)
        with pytest.raises(BackendUnavailable, match=r"\(after 7 tries\)"):
            http.get_json("/api/services")
    assert_jittered(sleeps.calls, [2, 4, 8, 8, 8, 8])


def test_recovers_when_the_failures_stop() -> None:
    sleeps = Sleeps()
    faults = [Fault(502, times=1), Fault(500, {"message": "busy"}, times=1)]
    with TraceApiServer(spans(), faults=faults) as server:
        client = JaegerClient(server.url, api="v3", retries=3, backoff_s=0.1, sleep=sleeps)
        frame = client.trace(TRACE)
        assert len(frame) == 2 and client.requests == 3 and server.calls == 3
    assert_jittered(sleeps.calls, [0.1, 0.2])


def test_429_waits_for_retry_after() -> None:
    sleeps = Sleeps()
    fault = Fault(429, "slow down", headers={"Retry-After": "3"})
    with TraceApiServer(spans(), flavor="tempo", faults=[fault]) as server:
        client = TempoClient(server.url, retries=2, backoff_s=0.25, sleep=sleeps)
        frame, _ = client.trace(TRACE)
    assert len(frame) == 2 and sleeps.calls == [3.0]


def test_closed_port_is_unreachable_with_backend_and_url() -> None:
    url = closed_port_url()
    sleeps = Sleeps()
    client = JaegerClient(url, retries=3, backoff_s=0.01, sleep=sleeps)
    with pytest.raises(BackendUnavailable) as info:
        client.trace(TRACE)
    assert str(info.value) == f"Jaeger at {url} is unreachable: ConnectionError (after 4 tries)"
    assert client.requests == 4 and len(sleeps.calls) == 3
    tempo = TempoClient(url + "/", retries=0)  # a trailing slash is dropped
    with pytest.raises(BackendUnavailable, match=rf"^Tempo at {url} is unreachable: "
                                                 r"ConnectionError \(after 1 try\)$"):
        tempo.search(0, 60)


# ---------------------------------------------------------------------------------- 404 and 4xx


@pytest.mark.parametrize("api", ["v1", "v3", "auto"])
def test_missing_jaeger_trace_is_not_found_naming_trace_and_url(api: str) -> None:
    with TraceApiServer(spans()) as server:
        client = JaegerClient(server.url, api=api, sleep=Sleeps())
        with pytest.raises(NotFound) as info:
            client.trace(MISSING)
        assert str(info.value) == f"trace {MISSING} not found in Jaeger at {server.url}"
        assert not info.value.retryable
        assert server.calls == (2 if api == "auto" else 1)  # 404s are not retried


@pytest.mark.parametrize("api", ["v1", "v2", "auto"])
def test_missing_tempo_trace_is_not_found_naming_trace_and_url(api: str) -> None:
    with TraceApiServer(spans(), flavor="tempo") as server:
        client = TempoClient(server.url, api=api)
        with pytest.raises(NotFound, match=f"^trace {MISSING} not found in Tempo at "
                                           f"{server.url}$"):
            client.trace(MISSING[1:])  # Tempo-style 31 characters


def test_jaeger_400_shows_the_v1_error_message_and_is_not_retried() -> None:
    body = {"data": None, "total": 0, "limit": 0, "offset": 0,
            "errors": [{"code": 400, "msg": "malformed parameter start: not a number"}]}
    sleeps = Sleeps()
    with TraceApiServer(spans(), faults=[Fault(400, body)]) as server:
        url = server.url
        client = JaegerClient(url, api="v1", sleep=sleeps)
        with pytest.raises(BackendRejected) as info:
            client.search("web", 1_700_000_000, 1_700_000_060)
        assert server.calls == 1 and sleeps.calls == []
    assert str(info.value) == (f"Jaeger at {url} rejected GET /api/traces (HTTP 400): "
                               "malformed parameter start: not a number")
    assert not info.value.retryable and info.value.detail.startswith("malformed")


def test_jaeger_v3_error_body_message_is_shown() -> None:
    body = {"error": {"httpCode": 400, "message": "malformed parameter query.num_traces"}}
    with TraceApiServer(spans(), faults=[Fault(400, body)]) as server:
        client = JaegerClient(server.url, api="v3")
        with pytest.raises(BackendRejected) as info:
            client.search("web", 0, 60)
    assert str(info.value).endswith("(HTTP 400): malformed parameter query.num_traces")


def test_tempo_400_shows_the_plain_text_traceql_error() -> None:
    with TraceApiServer(spans(), flavor="tempo") as server:
        url = server.url
        with pytest.raises(BackendRejected) as info:
            TempoClient(url).search(0, 60, traceql="{ span.http.status_code >>> 500 ")
    assert f"Tempo at {url} rejected GET /api/search (HTTP 400): " in str(info.value)
    assert "invalid TraceQL query: parse error" in str(info.value)


def test_json_message_and_error_fields_are_shown() -> None:
    faults = [Fault(403, {"message": "tenant not allowed"}), Fault(422, {"error": "bad id"})]
    with TraceApiServer(spans(), faults=faults) as server:
        http = HttpBackend("Jaeger", server.url)
        with pytest.raises(BackendRejected, match=r"\(HTTP 403\): tenant not allowed$"):
            http.get_json("/api/services")
        with pytest.raises(BackendRejected, match=r"\(HTTP 422\): bad id$"):
            http.get_json("/api/services")


def test_a_200_that_is_not_json_is_an_invalid_response() -> None:
    with TraceApiServer(spans(), apis=set(), unknown="html") as server:
        with pytest.raises(InvalidResponse, match="body that is not JSON: '<!doctype html>"):
            JaegerClient(server.url, api="v3").services()
        # auto: v3 and v1 both answer a UI page → the last error
        with pytest.raises(InvalidResponse):
            JaegerClient(server.url).trace(TRACE)


# ---------------------------------------------------------------------------------- timeouts


def test_per_request_timeout_is_honoured() -> None:
    with TraceApiServer(spans(), faults=[Fault(None, delay_s=5, times=None)]) as server:
        url = server.url
        client = JaegerClient(url, api="v1", timeout_s=0.3, retries=1, backoff_s=0.01)
        with pytest.raises(BackendUnavailable) as info:
            client.trace(TRACE)
        tries = server.calls
    # A read timeout cut each of the two tries (the server would answer after 5 s).
    assert tries == 2
    assert str(info.value) == (f"Jaeger at {url} is unreachable: "
                               "ReadTimeout (no answer within 0.3 s) (after 2 tries)")


def test_a_slow_first_reply_is_retried() -> None:
    with TraceApiServer(spans(), flavor="tempo", faults=[Fault(None, delay_s=5)]) as server:
        client = TempoClient(server.url, api="v2", timeout_s=0.3, retries=2, backoff_s=0.01)
        frame, partial = client.trace(TRACE)
        assert len(frame) == 2 and not partial and client.requests == 2


def test_a_slow_reply_within_the_timeout_is_fine() -> None:
    with TraceApiServer(spans(), faults=[Fault(None, delay_s=0.2)]) as server:
        client = JaegerClient(server.url, api="v1", timeout_s=2, retries=0)
        assert len(client.trace(TRACE)) == 2


# ---------------------------------------------------------------------------------- counting


def test_requests_are_counted_and_auto_remembers_the_api() -> None:
    with TraceApiServer(spans(), apis={"v1"}) as server:
        client = JaegerClient(server.url)
        client.trace(TRACE)
        assert client.requests == 2 and client.resolved_api == "v1"  # v3 404, then v1
        client.trace(TRACE)
        client.services()
        assert client.requests == 4 and server.calls == 4
        assert server.requests[1:] == [f"/api/traces/{TRACE}"] * 2 + ["/api/services"]


def test_retries_count_as_requests() -> None:
    with TraceApiServer(spans(), flavor="tempo", faults=[Fault(500, times=2)]) as server:
        client = TempoClient(server.url, api="v1", backoff_s=0)
        client.trace(TRACE)
        assert client.requests == 3 == server.calls


def test_bad_configuration_is_user_input() -> None:
    with pytest.raises(UserInputError, match="must start with http"):
        JaegerClient("jaeger:16686")
    with pytest.raises(UserInputError, match="api must be one of"):
        TempoClient("http://tempo:3200", api="v3")
    with pytest.raises(UserInputError, match="start <= end"):
        TempoClient("http://tempo:3200").search(10, 5)


def test_an_empty_api_v3_search_keeps_the_client_on_api_v3() -> None:
    """api_v3 answers an empty search with its own 404 "No traces found": that is an answer,
    not a sign that the server lacks api_v3 (which would send every later search to v1)."""
    with TraceApiServer(spans(), flavor="jaeger") as server:
        client = JaegerClient(server.url, retries=0)
        t0 = T0 / 1e6
        assert client.search("web", t0 - 3600, t0 - 1800) == []
        assert client.resolved_api == "v3"
        found = client.search("web", t0 - 1, t0 + 1)
        assert [f["trace_id"].iloc[0] for f in found] == [TRACE]
        assert not any(path.startswith("/api/traces") for path in server.requests)


def test_a_dripping_server_cannot_hold_a_request_past_its_timeout() -> None:
    """One byte every 0.1 s: each socket read is quick, so only a whole-request bound stops it."""
    with HostileServer(every_s=0.1) as server:
        http = HttpBackend("Jaeger", server.root_url + "/drip", timeout_s=0.5, retries=1, backoff_s=0.01)
        # Each try cut by the whole-request bound (not a socket read timeout, which the drip
        # never trips), then given up after the retry.
        with pytest.raises(BackendUnavailable,
                           match=r"the answer took longer than 0.5 s.*\(after 2 tries\)"):
            http.get_json("/api/traces")


@pytest.mark.parametrize("declare", [False, True])
def test_a_body_over_the_cap_is_refused_without_holding_it(declare: bool) -> None:
    with HostileServer(size=200 * 2**20, declare=declare) as server:
        http = HttpBackend("Jaeger", server.root_url + "/huge", max_bytes=8 * 2**20, retries=2)
        started = time.monotonic()
        with pytest.raises(InvalidResponse, match="over the cap of 8 MiB per answer"):
            http.get_json("/api/traces")
        assert http.requests == 1  # not retried: the same question gets the same answer
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("body", [
    {"data": [{"traceID": "aa", "spans": [5]}]},        # a number where a span was
    {"data": [{"traceID": "aa", "processes": 7,        # a number where the processes were
               "spans": [{"spanID": "a", "traceID": "aa", "startTime": 1, "duration": 2}]}]},
])
def test_a_wrongly_shaped_answer_is_the_backend_s_fault_not_a_crash(body: Any) -> None:
    """Not an AttributeError ending the incident as an operator bug: InvalidResponse (reason
    BackendRejected), naming the backend."""
    faults = [Fault(status=200, body=body, times=None, path="/api/traces")]
    with TraceApiServer(spans(), faults=faults) as server, \
            pytest.raises(InvalidResponse, match="Jaeger at http://127.0.0.1:[0-9]+ answered in a shape") as info:
        JaegerClient(server.url, api="v1").trace(TRACE)
    assert info.value.reason == "BackendRejected" and not info.value.retryable
