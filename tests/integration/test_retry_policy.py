"""The one transport policy every backend client shares (telemetry/transport.py), checked on each
client against a scripted server that records when each request arrived: transient statuses are
retried, ``Retry-After`` (seconds or an HTTP-date) is waited out before the next request, no
request is sent and no wait is begun past the deadline, 4xx and answers that do not decode are
not retried, and each attempt is shown as in flight to the terminal's progress line."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.backend_clients import KINDS, Client, client
from tests.fakes.scripted import Scripted, ScriptedServer
from thinkfl_operator.core import deadline
from thinkfl_operator.core.errors import BackendError, DeadlineExceeded
from thinkfl_operator.observability.progress import oldest_wait
from thinkfl_operator.telemetry.transport import RetryPolicy, parse_retry_after


@contextmanager
def kind_client(kind: str, url: str, **options: float) -> Iterator[Client]:
    made = client(kind, url, **options)  # type: ignore[arg-type]
    try:
        yield made
    finally:
        made.close()


@pytest.mark.parametrize("kind", KINDS)
def test_transient_statuses_are_retried_until_an_answer(kind: str) -> None:
    script = [Scripted(408), Scripted(500), Scripted(502), Scripted(429, {"Retry-After": "0"})]
    with ScriptedServer(script) as server, kind_client(kind, server.url, retries=4) as made:
        made.call()
        assert len(server.arrivals) == 5


@pytest.mark.parametrize("kind", KINDS)
def test_retry_after_in_seconds_and_as_a_date_is_waited_out(kind: str) -> None:
    """A 503 naming a moment, then a 429 asking for 1 s: each next request comes no earlier."""
    now = time.time()
    not_before = math.ceil(now + 0.3)  # whole seconds, as an HTTP-date has them
    date = email.utils.formatdate(not_before, usegmt=True)
    script = [Scripted(503, {"Retry-After": date}), Scripted(429, {"Retry-After": "1"})]
    with ScriptedServer(script) as server, kind_client(kind, server.url) as made:
        made.call()
        arrivals = server.arrivals
    assert len(arrivals) == 3
    assert arrivals[1].wall >= not_before
    assert arrivals[2].monotonic - arrivals[1].monotonic >= 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_a_retry_after_past_the_deadline_is_not_waited_for(kind: str) -> None:
    """The server asks for 30 s, the diagnosis has 3 s left: one request, then the error at
    once, saying why it gave up."""
    with ScriptedServer(always=Scripted(503, {"Retry-After": "30"})) as server, \
            kind_client(kind, server.url, retries=5) as made, deadline.within(3):
        with pytest.raises(BackendError, match="would pass the deadline") as caught:
            made.call()
        assert len(server.arrivals) == 1
    assert caught.value.retryable


@pytest.mark.parametrize("kind", KINDS)
def test_no_request_is_sent_after_the_deadline(kind: str) -> None:
    """Failing fast and for ever, with retries to spare: every request falls inside the budget."""
    with ScriptedServer(always=Scripted(503)) as server, \
            kind_client(kind, server.url, retries=10, backoff_s=0.2) as made:
        with deadline.within(1.0):
            ends = deadline.ends()
            with pytest.raises((BackendError, DeadlineExceeded)):
                made.call()
        arrivals = server.arrivals
    assert ends is not None and arrivals
    assert all(arrival.monotonic < ends for arrival in arrivals)
    assert len(arrivals) < 11  # the deadline, not the retries, ended it


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_4xx_is_not_retried(kind: str, status: int) -> None:
    with ScriptedServer(always=Scripted(status)) as server, kind_client(kind, server.url) as made:
        with pytest.raises(BackendError) as caught:
            made.call()
        assert len(server.arrivals) == 1
    assert not caught.value.retryable


@pytest.mark.parametrize("kind", KINDS)
def test_an_answer_that_does_not_decode_is_not_retried(kind: str) -> None:
    with ScriptedServer(always=Scripted(200, {"Content-Type": "application/json"},
                                        '{"data": [')) as server, \
            kind_client(kind, server.url) as made:
        with pytest.raises(BackendError) as caught:
            made.call()
        assert len(server.arrivals) == 1
    assert not caught.value.retryable


@pytest.mark.parametrize("kind", KINDS)
def test_every_client_uses_the_one_policy_and_shows_what_it_waits_on(kind: str) -> None:
    with ScriptedServer([Scripted(503)], on_request=oldest_wait) as server, \
            kind_client(kind, server.url, retries=2, backoff_s=0.25) as made:
        assert made.policy == RetryPolicy(retries=2, backoff_s=0.25)
        made.call()
        waits = [arrival.seen for arrival in server.arrivals]
    assert len(waits) == 2
    assert all(wait is not None and wait.backend == kind for wait in waits)
    assert oldest_wait() is None  # nothing left marked in flight


def test_retry_after_values() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") is None
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(date, now=1_000_000) == 30.0
    assert parse_retry_after(date, now=1_000_100) == 0.0  # already past
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37", now=0) is None  # no zone: not HTTP


def test_backoff_doubles_to_its_cap_jittered_down_by_at_most_half() -> None:
    policy = RetryPolicy(retries=8, backoff_s=0.5, max_backoff_s=8.0)
    for attempt, ceiling in enumerate([0.5, 1, 2, 4, 8, 8, 8], start=1):
        waits = {policy.backoff(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
        assert len(waits) > 1  # jittered, not fixed
