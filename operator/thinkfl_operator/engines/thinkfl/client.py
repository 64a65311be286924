"""Chat completions from an OpenAI-compatible endpoint (vLLM), under the retry policy every
backend client shares (``telemetry.transport.RetryPolicy``).

The ``openai`` client's retries are off (``max_retries=0``): connection errors, timeouts, 408,
429 and 5xx are retried with capped, jittered exponential backoff, never shorter than the
endpoint's ``Retry-After`` and never past the conversation's deadline (nor the diagnosis'), then
``LLMUnavailable`` names the endpoint and the cause. Other 4xx answers (a wrong model name, a
bad request), an answer over the size cap, an answer that does not decode and a refused
certificate are not retried. Certificates are checked as ``TlsSettings`` say (the CA bundle, or
an explicit insecure opt-in), on the transport itself.

A request's timeout bounds the whole answer, not one socket read (``BoundedTransport``): httpx,
under openai, times out each read, so a server sending a byte every half second could hold a
conversation far past its budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import openai

try:  # the HTTP library under openai: httpx2 from openai 3, httpx before
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older openai
    import httpx  # type: ignore[no-redef]

from thinkfl_operator.config.settings import LLMSettings, TlsSettings
from thinkfl_operator.core.errors import BackendError, Refused
from thinkfl_operator.telemetry.transport import (
    TLS_HINT,
    RetryPolicy,
    Transient,
    is_transient_status,
    parse_retry_after,
    ssl_context_for,
    tls_failure,
)

#: Sent when no API key is configured: the client requires one, vLLM ignores it.
PLACEHOLDER_KEY = "EMPTY"
#: Largest answer read from the endpoint (a chat completion is a few kB).
MAX_ANSWER_BYTES = 8 * 1024 * 1024


class BoundedTransport(httpx.HTTPTransport):
    """httpx's transport, with each answer read under the request's read timeout as a total
    (from the moment the request is sent) and at most ``max_bytes``: past either, the read fails
    as httpx's own errors would (``ReadTimeout``, ``RemoteProtocolError``)."""

    def __init__(self, max_bytes: int = MAX_ANSWER_BYTES, verify: Any = True) -> None:
        super().__init__(verify=verify)
        self.max_bytes = max_bytes

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {}).get("read")
        until = time.monotonic() + (float(timeout) if timeout else 60.0)
        response = super().handle_request(request)
        response.stream = _BoundedStream(response.stream, request, until, self.max_bytes)
        return response


class AnswerTooLarge(httpx.RemoteProtocolError):
    """The endpoint's answer passed ``MAX_ANSWER_BYTES``."""


class _BoundedStream(httpx.SyncByteStream):
    def __init__(self, inner: Any, request: httpx.Request, until: float, max_bytes: int) -> None:
        self._inner, self._request, self._until, self._max = inner, request, until, max_bytes

    def __iter__(self) -> Any:
        size = 0
        for chunk in self._inner:
            size += len(chunk)
            if size > self._max:
                raise AnswerTooLarge(f"answer over {self._max} bytes", request=self._request)
            if time.monotonic() > self._until:
                raise httpx.ReadTimeout("the whole answer took longer than the timeout", request=self._request)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class LLMUnavailable(BackendError):
    """The LLM endpoint did not give a usable answer after retries (retryable later)."""

    backend = "llm"
    reason = "LLMUnavailable"


class LLMRejected(Refused):
    """The endpoint refused the request (4xx other than 408 and 429) or answered what cannot be
    used (over the size cap, not a chat completion): retrying will not help."""

    backend = "llm"


class LLMTimedOut(BackendError):
    """The model was still answering when its budget (the conversation's deadline, never past
    the incident's) ran out: a working but slow model, not an unreachable one."""

    retryable = False
    backend = "llm"
    reason = "DeadlineExceeded"


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float


class ChatClient:
    """One endpoint, one model; ``complete`` returns the assistant text of one reply.
    ``tls`` None: the process's ``THINKFL_TLS__…`` settings."""

    def __init__(self, cfg: LLMSettings, clock: Any = time, tls: TlsSettings | None = None) -> None:
        self.cfg = cfg
        self.url = cfg.base_url
        self._clock = clock
        self.retry_policy = RetryPolicy(cfg.retries, cfg.backoff_s, sleep=clock.sleep)
        transport = BoundedTransport(verify=ssl_context_for(tls))
        self._client = openai.OpenAI(
            base_url=cfg.base_url,
            api_key=cfg.api_key.get_secret_value() or PLACEHOLDER_KEY,
            timeout=cfg.request_timeout_s,
            max_retries=0,
            http_client=httpx.Client(transport=transport, timeout=cfg.request_timeout_s),
        )

    def close(self) -> None:
        """Close the connections to the endpoint."""
        self._client.close()

    def complete(self, messages: list[dict[str, str]], deadline: float) -> Completion:
        """One reply; retried on transient failures until ``deadline`` (a monotonic time).

        ``LLMTimedOut`` when the budget runs out while the model is answering a request that
        had not failed before; after transient failures it is ``LLMUnavailable``."""
        failures: list[Transient] = []

        def attempt() -> Completion:
            try:
                return self._once(messages, deadline)
            except Transient as exc:
                failures.append(exc)
                raise
            except LLMTimedOut:
                if not failures:
                    raise
                last = failures[-1]  # slow after failing: the endpoint is not well
                raise LLMUnavailable(f"LLM at {self.url}: {last.cause} (after "
                                     f"{len(failures) + 1} tries)") from last

        try:
            return self.retry_policy.call(attempt, backend="llm", until=deadline)
        except Transient as exc:
            raise LLMUnavailable(f"LLM at {self.url}: {exc.cause} ({exc.tries()})") from exc

    def _once(self, messages: list[dict[str, str]], deadline: float) -> Completion:
        started = self._clock.monotonic()
        timeout = max(0.05, min(self.cfg.request_timeout_s, deadline - started))
        try:
            response = self._client.chat.completions.create(
                model=self.cfg.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=self.cfg.temperature,
                max_tokens=self.cfg.max_tokens,
                timeout=timeout,
            )
        except openai.APITimeoutError as exc:
            if timeout < self.cfg.request_timeout_s:  # cut short by the budget: slow, not down
                raise LLMTimedOut(f"LLM at {self.url} was still answering when the budget ran "
                                  f"out ({timeout:.1f} s were left)") from exc
            raise Transient(f"no answer within {timeout:.1f} s") from exc
        except openai.APIConnectionError as exc:
            if isinstance(exc.__cause__ or exc.__context__, AnswerTooLarge):  # the same again
                raise LLMRejected(f"LLM at {self.url} answered more than "
                                  f"{MAX_ANSWER_BYTES // 2**20} MiB for one reply") from exc
            problem = tls_failure(exc)
            if problem is not None:
                raise LLMUnavailable(f"LLM at {self.url}: TLS failed ({problem}); {TLS_HINT}") from exc
            raise Transient(f"cannot connect ({_cause(exc)})") from exc
        except openai.APIStatusError as exc:
            if is_transient_status(exc.status_code):
                what = "rate limited" if exc.status_code == 429 else "server error"
                raise Transient(f"{what} {exc.status_code}: {_message(exc)}", exc.status_code,
                                _retry_after(exc)) from exc
            raise LLMRejected(f"LLM at {self.url} refused the request ({exc.status_code}): {_message(exc)}") from exc
        except (openai.APIResponseValidationError, ValueError) as exc:
            raise LLMRejected(f"LLM at {self.url}: malformed response ({type(exc).__name__}), "
                              "not a chat completion") from exc
        return _completion(response, self._clock.monotonic() - started)


def _completion(response: Any, seconds: float) -> Completion:
    choices = getattr(response, "choices", None) or []
    text = ""
    if choices and getattr(choices[0], "message", None) is not None:
        text = choices[0].message.content or ""
    usage = getattr(response, "usage", None)
    return Completion(
        text=text,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        seconds=seconds,
    )


def _retry_after(exc: openai.APIStatusError) -> float | None:
    return parse_retry_after(exc.response.headers.get("retry-after") if exc.response is not None
                             else None)


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
        if isinstance(inner, str):
            return inner[:300]
    return str(exc.message)[:300]


def _cause(exc: Exception) -> str:
    cause = exc.__cause__ or exc.__context__
    return type(cause).__name__ if cause else "connection failed"
