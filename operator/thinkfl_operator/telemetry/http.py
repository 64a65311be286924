"""JSON over HTTP for one named telemetry backend (Jaeger, Tempo, Loki, Prometheus).

Retries follow the one policy of every client (``telemetry.transport.RetryPolicy``): connection
errors, timeouts, 408, 429 and 5xx are retried with capped, jittered exponential backoff
(``backoff_s``, doubling, at most 8 s), never shorter than the server's ``Retry-After`` and never
past the diagnosis' deadline; then ``BackendUnavailable`` names the backend, its URL and the last
cause (or ``DeadlineExceeded`` when the budget is spent). A 404 raises ``NotFound``; other 4xx
raise ``BackendRejected`` with the backend's own error message (Jaeger ``{"errors":[{"msg":…}]}``,
Jaeger api_v3 ``{"error":{"message":…}}``, Tempo plain text, Prometheus ``error``, or JSON
``message``). Neither is retried. A 2xx body that is not JSON raises ``InvalidResponse`` (often a
UI page served for an API path this backend version lacks). A certificate the client does not
trust raises ``BackendUnavailable`` at once (``TlsSettings``: a CA bundle, or an explicit
insecure opt-in).

``timeout_s`` bounds a whole request (connect, headers and every byte of the body), not one
socket read, and a body larger than ``max_bytes`` is refused as ``InvalidResponse`` as soon as
it passes the cap (``telemetry.session.BoundedSession``); neither is held past its bound.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self, TypeVar

import requests

from thinkfl_operator.config.settings import TlsSettings
from thinkfl_operator.core import deadline
from thinkfl_operator.core.errors import BackendError, Refused, UserInputError
from thinkfl_operator.telemetry.session import MAX_BODY_BYTES, BodyTooLarge, BoundedSession, TooSlow
from thinkfl_operator.telemetry.transport import (
    TLS_HINT,
    RetryPolicy,
    Transient,
    is_transient_status,
    parse_retry_after,
    tls_failure,
    verify_for,
)

T = TypeVar("T")

#: Characters of a backend's error message kept in our messages.
_DETAIL_CHARS = 300


class HttpBackendError(BackendError):
    """A failed request to a backend; ``status`` is the HTTP status (None when none came)."""

    def __init__(
        self, message: str, *, backend: str, url: str, path: str, status: int | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message)
        self.backend = backend
        self.url = url
        self.path = path
        self.status = status
        self.detail = detail


class BackendUnavailable(HttpBackendError):
    """No usable answer after the retries (connection, timeout, 408, 429, 5xx), or a refused
    certificate; retry later."""


class NotFound(HttpBackendError):
    """HTTP 404: the object (or, on older versions, the API route) does not exist."""

    retryable = False
    reason = "NotFound"


class BackendRejected(HttpBackendError, Refused):
    """HTTP 4xx other than 404 and 429: the request is wrong; retrying will not help."""


class InvalidResponse(HttpBackendError, Refused):
    """A 2xx answer whose body is not JSON (or not the JSON shape expected)."""


class HttpBackend:
    """GET JSON from ``url`` + path; ``requests`` counts every HTTP attempt (for benchmarks).
    ``tls`` None: the process's ``THINKFL_TLS__…`` settings."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
        headers: Mapping[str, str] | None = None,
        max_bytes: int = MAX_BODY_BYTES,
        tls: TlsSettings | None = None,
    ) -> None:
        url = url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise UserInputError(f"{name} URL {url!r} must start with http:// or https://")
        if timeout_s <= 0 or retries < 0 or backoff_s < 0 or max_bytes <= 0:
            raise UserInputError(
                f"{name}: timeout_s and max_bytes must be > 0, retries and backoff_s >= 0 "
                f"(got {timeout_s}, {max_bytes}, {retries}, {backoff_s})"
            )
        self.name = name
        self.url = url
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.retry_policy = RetryPolicy(retries, backoff_s, sleep=sleep)
        self.requests = 0
        self._count = threading.Lock()
        if session is None:
            session = BoundedSession(max_bytes)
            session.verify = verify_for(tls)
        self._session = session
        self._headers = {"Accept": "application/json", **(headers or {})}

    # ------------------------------------------------------------------ public API

    def get_json(self, path: str, params: Mapping[str, Any] | None = None, *,
                 retries: int | None = None) -> Any:
        """The decoded JSON body of ``GET url+path?params`` (retried; see the module docstring;
        ``retries`` overrides the client's for this request, e.g. 0 for an optional query whose
        5xx means "not here" more often than "try again")."""
        text = self._get_text(path, params, retries)
        try:
            return json.loads(text)
        except ValueError:
            raise self._invalid(path, text) from None

    def get_json_documents(self, path: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Like ``get_json`` for bodies holding one or more concatenated JSON documents
        (grpc-gateway streams: one ``{"result": …}`` per line)."""
        text = self._get_text(path, params)
        try:
            return _documents(text)
        except ValueError:
            raise self._invalid(path, text) from None

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HttpBackend({self.name!r}, {self.url!r})"

    # ------------------------------------------------------------------ internals

    @property
    def retries(self) -> int:
        return self.retry_policy.retries

    @retries.setter
    def retries(self, retries: int) -> None:
        self.retry_policy = dataclasses.replace(self.retry_policy, retries=retries)

    @property
    def backoff_s(self) -> float:
        return self.retry_policy.backoff_s

    def _get_text(self, path: str, params: Mapping[str, Any] | None,
                  retries: int | None = None) -> str:
        policy = self.retry_policy if retries is None else dataclasses.replace(self.retry_policy,
                                                                                retries=retries)
        try:
            return policy.call(lambda: self._once(path, params), backend=self.name.lower())
        except Transient as exc:
            deadline.check(f"asking {self.name} at {self.url}: {exc.cause}")
            raise BackendUnavailable(
                f"{self.name} at {self.url} is unreachable: {exc.cause} ({exc.tries()})",
                backend=self.name, url=self.url, path=path, status=exc.status, detail=exc.cause,
            ) from exc

    def _once(self, path: str, params: Mapping[str, Any] | None) -> str:
        deadline.check(f"asking {self.name} at {self.url}")
        with self._count:
            self.requests += 1
        timeout_s = deadline.timeout(self.timeout_s)
        try:
            response = self._session.get(
                self.url + path, params=dict(params) if params else None,
                headers=self._headers, timeout=timeout_s,
            )
            # JSON is UTF-8 (RFC 8259); ``response.text`` would guess the charset, slowly.
            text = response.content.decode("utf-8", errors="replace").lstrip("\ufeff")
        except BodyTooLarge as exc:
            raise self._too_large(path, exc.what) from None
        except TooSlow as exc:
            raise Transient(f"the answer took longer than {timeout_s:g} s") from exc
        except requests.Timeout as exc:
            cause = f"{type(exc).__name__} (no answer within {timeout_s:g} s)"
            raise Transient(cause) from exc
        except requests.exceptions.SSLError as exc:
            problem = tls_failure(exc) or f"TLS failed ({type(exc).__name__})"
            raise BackendUnavailable(
                f"{self.name} at {self.url}: TLS failed ({problem}); {TLS_HINT}",
                backend=self.name, url=self.url, path=path, detail=problem) from exc
        except requests.ConnectionError as exc:
            raise Transient(type(exc).__name__) from exc
        except requests.RequestException as exc:  # broken chunked body, decoding errors
            raise Transient(type(exc).__name__) from exc
        status = response.status_code
        if status < 400:
            return text
        detail = error_message(text)
        suffix = f": {detail}" if detail else ""
        if is_transient_status(status):
            reason = f" {response.reason}" if response.reason else ""
            raise Transient(f"HTTP {status}{reason}{suffix}", status,
                            parse_retry_after(response.headers.get("Retry-After")))
        if status == 404:
            raise NotFound(f"{self.name} at {self.url} has no {path} (HTTP 404){suffix}",
                           backend=self.name, url=self.url, path=path, status=status, detail=detail)
        raise BackendRejected(
            f"{self.name} at {self.url} rejected GET {path} (HTTP {status}){suffix}",
            backend=self.name, url=self.url, path=path, status=status, detail=detail,
        )

    def _too_large(self, path: str, what: str) -> InvalidResponse:
        return InvalidResponse(
            f"{self.name} at {self.url} answered GET {path} with {what}, over the cap of "
            f"{self.max_bytes / 2**20:.0f} MiB per answer (raise max_body_mb, or narrow the query)",
            backend=self.name, url=self.url, path=path, detail=what)

    def _invalid(self, path: str, text: str) -> InvalidResponse:
        start = " ".join(text[:80].split())
        return InvalidResponse(
            f"{self.name} at {self.url} answered GET {path} with a body that is not JSON: "
            f"{start!r}", backend=self.name, url=self.url, path=path, detail=start,
        )


#: What decoding an answer of an unexpected shape raises (a list where an object was, a missing
#: key, a number that is not one): the backend's answer is wrong, not the operator.
SHAPE_ERRORS = (AttributeError, KeyError, TypeError, ValueError, IndexError)


def first_answer(order: Sequence[str], calls: Mapping[str, Callable[[], T]],
                 http: HttpBackend | None = None) -> tuple[str, T]:
    """The first of ``calls`` (in ``order``) that neither raises ``NotFound`` nor
    ``InvalidResponse``, with its name; the last such error when none answers. An answer that
    does not decode (``SHAPE_ERRORS``) is an ``InvalidResponse`` of ``http``'s backend."""
    last: HttpBackendError | None = None
    for api in order:
        try:
            return api, calls[api]()
        except (NotFound, InvalidResponse) as exc:
            last = exc
        except SHAPE_ERRORS as exc:
            name, url = (http.name, http.url) if http is not None else ("the backend", "")
            last = InvalidResponse(
                f"{name} at {url} answered in a shape its {api} API does not have "
                f"({type(exc).__name__}: {str(exc)[:200]})", backend=name, url=url, path="",
                detail=f"{type(exc).__name__}: {exc}")
    if last is None:
        raise ValueError("no API to ask")
    raise last


def error_message(body: str) -> str:
    """The error text of a failed response: Jaeger v1 ``errors[].msg``, api_v3
    ``error.message``, JSON ``error``/``message``, or the plain text (Tempo)."""
    text = body.strip()
    if not text:
        return ""
    try:
        data = json.loads(text)
    except ValueError:
        return _clip(" ".join(text.split()))
    found = _message_in(data)
    return _clip(found if found is not None else " ".join(text.split()))


def _clip(text: str) -> str:
    """At most ``_DETAIL_CHARS``: its start and its end (where Prometheus, for one, says what
    the long list before was about)."""
    if len(text) <= _DETAIL_CHARS:
        return text
    tail = _DETAIL_CHARS // 3
    return f"{text[:_DETAIL_CHARS - tail - 3]} … {text[-tail:]}"


def _message_in(data: Any) -> str | None:
    if isinstance(data, str):
        return data
    if not isinstance(data, dict):
        return None
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        texts = [str(e.get("msg") or e.get("message") or "") if isinstance(e, dict) else str(e)
                 for e in errors]
        joined = "; ".join(t for t in texts if t)
        if joined:
            return joined
    kind = data.get("errorType")  # Prometheus: {"errorType": "bad_data", "error": "parse error…"}
    if isinstance(kind, str) and kind and isinstance(data.get("error"), str):
        return f"{kind}: {data['error']}"
    for key in ("error", "message", "msg"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict):
            inner = _message_in(value)
            if inner:
                return inner
    return None


def _documents(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    out: list[Any] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            break
        value, pos = decoder.raw_decode(text, pos)
        out.append(value)
    if not out:
        raise ValueError("empty body")
    return out


class QueryClient:
    """What the trace backends' clients share: one HttpBackend and the choice of API version
    (``auto`` tries the newest first and remembers the first that answers)."""

    #: The backend's name in messages, and the API versions it accepts (besides "auto").
    display_name = ""
    apis: tuple[str, ...] = ()

    def __init__(
        self,
        url: str,
        *,
        api: str = "auto",
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
        http: HttpBackend | None = None,
        max_bytes: int = MAX_BODY_BYTES,
        tls: TlsSettings | None = None,
    ) -> None:
        if api not in self.apis:
            raise UserInputError(
                f"{self.display_name} api must be one of {', '.join(self.apis)}, not {api!r}")
        self.http = http or HttpBackend(
            self.display_name, url, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s,
            sleep=sleep, session=session, max_bytes=max_bytes, tls=tls,
        )
        self.api = api
        #: The API in use once known (``api`` itself unless "auto").
        self.resolved_api: str | None = None if api == "auto" else api

    @property
    def url(self) -> str:
        return self.http.url

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (every retry counts)."""
        return self.http.requests

    def close(self) -> None:
        self.http.close()
