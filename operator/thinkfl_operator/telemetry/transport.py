"""How every backend client talks over the network: one retry policy and one TLS policy.

Jaeger, Tempo and Loki (``telemetry.http.HttpBackend``), Prometheus (the same ``HttpBackend``)
and the LLM (``engines.thinkfl.client.ChatClient``) each send one attempt at a time and raise
``Transient`` for a failure worth another try; ``RetryPolicy.call`` (tenacity underneath)
decides whether and when:

* retried: what a client raises as ``Transient`` -- connection errors, timeouts, HTTP 408, 429
  and 5xx. Everything else (other 4xx, an answer over the size cap, an answer that does not
  decode, a refused certificate) is permanent and goes through at once;
* the wait before try *n* + 1 is ``backoff_s * 2**(n-1)``, capped at ``max_backoff_s``, then
  jittered down by up to half (so clients that failed together do not come back together);
* a ``Retry-After`` (seconds or an HTTP-date, on a 429 or 503) is a floor under that wait;
* no sleep ends at or past the deadline (the diagnosis' ``deadline.ends()``, or an earlier one
  the caller gives), and no Retry-After over ``max_retry_after_s`` is waited for: the policy
  gives up at once instead, and the last ``Transient`` propagates with ``attempts`` and
  ``gave_up`` (why it stopped) set for the client's own error message;
* each attempt runs inside ``observability.progress.waiting_on(backend)``, so a terminal can
  show what is being waited on.

Each request's own total time bound stays with the client's transport
(``telemetry.session.BoundedSession``, the LLM's ``BoundedTransport``), cut to what is left of
the deadline.

TLS: ``verify_for`` turns ``TlsSettings`` into what ``requests`` and httpx take as ``verify``:
the library's default trust store (requests: certifi, or ``REQUESTS_CA_BUNDLE``), a CA bundle
file that replaces it, or no check at all (``insecure_skip_verify``, warned about once per
process).
"""

from __future__ import annotations

import email.utils
import random
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import structlog
import tenacity
import urllib3

from thinkfl_operator.config.settings import TlsSettings, get_settings
from thinkfl_operator.core import deadline
from thinkfl_operator.core.errors import UserInputError
from thinkfl_operator.observability.progress import waiting_on

T = TypeVar("T")

log = structlog.get_logger(__name__)

#: Statuses worth another try: request timeout, too many requests, server errors.
TRANSIENT_STATUSES = frozenset({408, 429})


def is_transient_status(status: int) -> bool:
    """408, 429 and 5xx: the same request may succeed later."""
    return status in TRANSIENT_STATUSES or status >= 500


class Transient(Exception):
    """One failed attempt worth another (connection, timeout, 408, 429, 5xx). ``cause`` is the
    text for messages, ``retry_after`` the server's own wait (seconds; None when it named none).
    Once the policy gives up, ``attempts`` counts the tries and ``gave_up`` says why it stopped
    ("" when the tries ran out)."""

    def __init__(self, cause: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.status = status
        self.retry_after = retry_after
        self.attempts = 0
        self.gave_up = ""

    def tries(self) -> str:
        """``after 3 tries`` (and why it stopped early, when it did)."""
        text = f"after {self.attempts} {'try' if self.attempts == 1 else 'tries'}"
        return f"{text}; {self.gave_up}" if self.gave_up else text


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110
    10.2.3); None when absent or unreadable, 0 for a date already past."""
    text = (value or "").strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one client: ``retries`` more tries after the first, the first wait
    ``backoff_s``, doubling, capped at ``max_backoff_s`` (see the module docstring)."""

    retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    #: A server asking to be left alone for longer than this is given up on at once.
    max_retry_after_s: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff_s < 0:
            raise UserInputError(f"retries and backoff_s must be >= 0 "
                                 f"(got {self.retries}, {self.backoff_s})")

    def backoff(self, attempt: int) -> float:
        """The jittered wait after failed try ``attempt`` (1-based), before any Retry-After."""
        ceiling = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
        return float(ceiling * (1.0 - 0.5 * self.rng.random()))

    def call(self, attempt: Callable[[], T], *, backend: str, until: float | None = None) -> T:
        """``attempt()`` until it returns, raises anything but ``Transient``, or the policy
        gives up (the last ``Transient`` is raised then). ``until`` is a ``time.monotonic()``
        deadline of the caller's own; the diagnosis' deadline applies as well."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Transient),
            wait=self._wait,
            stop=lambda state: self._stop(state, until),
            sleep=self.sleep,
            reraise=True,
        )

        def one() -> T:
            with waiting_on(backend):
                return attempt()

        return retrying(one)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        failure = _transient(state)
        wait = self.backoff(state.attempt_number)
        if failure.retry_after is not None:
            wait = max(wait, failure.retry_after)
        return wait

    def _stop(self, state: tenacity.RetryCallState, until: float | None) -> bool:
        failure = _transient(state)
        failure.attempts = state.attempt_number
        if state.attempt_number > self.retries:
            return True
        wait = state.upcoming_sleep
        if failure.retry_after is not None and failure.retry_after > self.max_retry_after_s:
            failure.gave_up = (f"it asked to wait {failure.retry_after:g} s (Retry-After), "
                               f"over the {self.max_retry_after_s:g} s this client waits")
            return True
        ends = [t for t in (until, deadline.ends()) if t is not None]
        if ends and time.monotonic() + wait >= min(ends):
            left = max(0.0, min(ends) - time.monotonic())
            failure.gave_up = (f"the next try, {wait:.1f} s away, would pass the deadline "
                               f"({left:.1f} s left)")
            return True
        return False


def _transient(state: tenacity.RetryCallState) -> Transient:
    failure = state.outcome.exception() if state.outcome is not None else None
    if not isinstance(failure, Transient):  # retry= lets only Transient through
        raise TypeError(f"not a transient failure: {failure!r}")
    return failure


# ------------------------------------------------------------------------------------ TLS

_warned = threading.Event()


def tls_settings(tls: TlsSettings | None) -> TlsSettings:
    """``tls``, or the process's settings (``THINKFL_TLS__…``) when None."""
    return tls if tls is not None else get_settings().tls


def verify_for(tls: TlsSettings | None = None) -> bool | str:
    """``requests``' ``verify``: True (the default store), a CA bundle path, or False when
    ``insecure_skip_verify`` is on (warned about once per process)."""
    tls = tls_settings(tls)
    if tls.insecure_skip_verify:
        if not _warned.is_set():
            _warned.set()
            log.warning("tls_verification_off", setting="THINKFL_TLS__INSECURE_SKIP_VERIFY",
                        detail="backend certificates are NOT checked: anyone on the path can "
                               "read and change telemetry and LLM traffic")
        # The warning above, once, instead of urllib3's on every request.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        return False
    if tls.ca_bundle:
        path = Path(tls.ca_bundle)
        if not path.is_file():
            raise UserInputError(f"THINKFL_TLS__CA_BUNDLE={tls.ca_bundle!r}: no such file")
        return str(path)
    return True


def ssl_context_for(tls: TlsSettings | None = None) -> ssl.SSLContext | bool:
    """httpx's ``verify``: the same choice as ``verify_for``, a CA bundle as an SSL context."""
    verify = verify_for(tls)
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify


def tls_failure(exc: BaseException) -> str | None:
    """The certificate problem when ``exc`` (or one of its causes) is a TLS failure, else None."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or "certificate verify failed"
        found = re.search(r"certificate verify failed[^()'\"]*", str(seen))
        if found is not None:
            return found.group(0).strip()
        seen = seen.__cause__ or seen.__context__
    return None


TLS_HINT = ("trust its CA with THINKFL_TLS__CA_BUNDLE (Helm tls.caBundle), or, knowingly, "
            "THINKFL_TLS__INSECURE_SKIP_VERIFY=true")
