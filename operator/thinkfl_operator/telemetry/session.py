"""A ``requests.Session`` whose every answer is read under one total time bound and a size cap.

``requests`` (and urllib3 under it) time out one socket operation at a time: a server that sends
a byte every half second never trips a 10 s read timeout, and a 200 MB answer is held whole
before anyone looks at it. ``BoundedSession`` reads each body itself, a chunk at a time, and
stops when the request's ``timeout`` has passed since it was sent (``TooSlow``, a
``requests.Timeout``) or when the decoded body passes ``max_bytes`` (``BodyTooLarge``: a
compressed bomb counts at its real size). Every client that talks HTTP through ``requests``
uses it: the Jaeger, Tempo, Loki and Prometheus backends (``telemetry.http.HttpBackend``).
A subclass of the library's session rather than a wrapper of our own: the libraries keep their
whole behaviour (redirects, proxies, TLS, auth), only the reading of the body changes.
"""

from __future__ import annotations

import time
from typing import Any

import requests
import urllib3

from thinkfl_operator.core import deadline

#: Default cap of one answer (bytes, decoded).
MAX_BODY_BYTES = 32 * 1024 * 1024
#: Total seconds of a request sent without a timeout.
DEFAULT_TIMEOUT_S = 30.0
#: Bytes asked of the socket at a time.
_CHUNK = 64 * 1024


class BodyTooLarge(requests.RequestException):
    """The answer's body passed the session's cap (or declared a length past it)."""

    def __init__(self, url: str, what: str, max_bytes: int) -> None:
        super().__init__(f"the answer of {url} holds {what}, over the cap of {max_bytes / 2**20:.0f} MiB")
        self.what, self.max_bytes = what, max_bytes


class TooSlow(requests.Timeout):
    """The whole answer did not arrive within the request's timeout."""


class BoundedSession(requests.Session):
    """``requests.Session`` reading each body under the request's total timeout and a size cap."""

    def __init__(self, max_bytes: int = MAX_BODY_BYTES) -> None:
        super().__init__()
        self.max_bytes = max_bytes

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        streamed = kwargs.pop("stream", False)
        # Within the diagnosis' own deadline too, whatever timeout the library passed.
        total = deadline.timeout(_total_seconds(kwargs.get("timeout")))
        kwargs["timeout"] = total
        until = time.monotonic() + total
        response = super().send(request, stream=True, **kwargs)
        if streamed:  # the caller reads the body itself
            return response
        try:
            response._content = self._read(response, until, total)
        except BaseException:
            response.close()  # a half-read connection is not reused
            raise
        response.raw.release_conn()  # read to its end: back to the pool (keep-alive)
        return response

    def _read(self, response: requests.Response, until: float, total: float) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise BodyTooLarge(response.url, f"{int(declared) / 2**20:.0f} MiB (declared)", self.max_bytes)
        body = bytearray()
        try:
            while chunk := response.raw.read1(_CHUNK, decode_content=True):
                body += chunk
                if len(body) > self.max_bytes:
                    raise BodyTooLarge(response.url, f"more than {self.max_bytes / 2**20:.0f} MiB", self.max_bytes)
                if time.monotonic() > until:
                    raise TooSlow(f"the answer of {response.url} took longer than {total:g} s "
                                  f"({len(body)} bytes read)")
        except requests.RequestException:  # ours (an OSError too): as it is
            raise
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.exceptions.ReadTimeout(str(exc)) from None
        except urllib3.exceptions.DecodeError as exc:
            raise requests.exceptions.ContentDecodingError(str(exc)) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise requests.exceptions.ChunkedEncodingError(f"{type(exc).__name__}: {exc}") from None
        return bytes(body)


def _total_seconds(timeout: Any) -> float:
    """A request's ``timeout`` (seconds, or a (connect, read) pair) as one total."""
    if isinstance(timeout, (int, float)) and timeout > 0:
        return float(timeout)
    if isinstance(timeout, tuple) and all(isinstance(t, (int, float)) for t in timeout):
        return float(sum(timeout))
    return DEFAULT_TIMEOUT_S
