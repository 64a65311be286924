"""Chat completions from an OpenAI-compatible endpoint (vLLM), with our own retry policy.

The ``openai`` client's retries are off (``max_retries=0``): this module retries connection
errors, timeouts, 5xx and 429 (honouring ``Retry-After``) with exponential backoff, never past
the incident's deadline, and then raises ``LLMUnavailable`` naming the endpoint and the cause.
Other 4xx answers (a wrong model name, a bad request) are not retried.

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

from thinkfl_operator.errors import BackendError
from thinkfl_operator.settings import LLMSettings

#: Sent when no API key is configured: the client requires one, vLLM ignores it.
PLACEHOLDER_KEY = "EMPTY"
MAX_BACKOFF_S = 8.0
#: Largest answer read from the endpoint (a chat completion is a few kB).
MAX_ANSWER_BYTES = 8 * 1024 * 1024


class BoundedTransport(httpx.HTTPTransport):
    """httpx's transport, with each answer read under the request's read timeout as a total
    (from the moment the request is sent) and at most ``max_bytes``: past either, the read fails
    as httpx's own errors would (``ReadTimeout``, ``RemoteProtocolError``)."""

    def __init__(self, max_bytes: int = MAX_ANSWER_BYTES) -> None:
        super().__init__()
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


class LLMRejected(BackendError):
    """The endpoint refused the request (4xx other than 429): retrying will not help."""

    retryable = False
    backend = "llm"
    reason = "BackendRejected"


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
    """One endpoint, one model; ``complete`` returns the assistant text of one reply."""

    def __init__(self, cfg: LLMSettings, clock: Any = time) -> None:
        self.cfg = cfg
        self.url = cfg.base_url
        self._clock = clock
        self._client = openai.OpenAI(
            base_url=cfg.base_url,
            api_key=cfg.api_key.get_secret_value() or PLACEHOLDER_KEY,
            timeout=cfg.request_timeout_s,
            max_retries=0,
            http_client=httpx.Client(transport=BoundedTransport(), timeout=cfg.request_timeout_s),
        )

    def complete(self, messages: list[dict[str, str]], deadline: float) -> Completion:
        """One reply; retried on transient failures until ``deadline`` (a monotonic time).

        ``LLMTimedOut`` when the budget runs out while the model is answering a request that
        had not failed before; after transient failures it is ``LLMUnavailable``."""
        delay = self.cfg.backoff_s
        last = ""
        for attempt in range(self.cfg.retries + 1):
            try:
                return self._once(messages, deadline)
            except LLMRejected:
                raise
            except LLMTimedOut:
                if attempt == 0:
                    raise
                raise LLMUnavailable(f"LLM at {self.url}: {last} (after {attempt + 1} tries)") from None
            except LLMUnavailable as exc:
                last = str(exc)
                wait = max(delay, exc.retry_after if isinstance(exc, _Transient) else 0.0)
                last_try = attempt == self.cfg.retries
                if last_try or self._clock.monotonic() + wait >= deadline:
                    raise LLMUnavailable(f"LLM at {self.url}: {exc} (after {attempt + 1} tries)") from None
                self._clock.sleep(wait)
                delay = min(delay * 2, MAX_BACKOFF_S)
        raise AssertionError("unreachable")

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
        except openai.RateLimitError as exc:
            raise _Transient("rate limited (429)", _retry_after(exc)) from None
        except openai.APITimeoutError:
            if timeout < self.cfg.request_timeout_s:  # cut short by the budget: slow, not down
                raise LLMTimedOut(f"LLM at {self.url} was still answering when the budget ran "
                                  f"out ({timeout:.1f} s were left)") from None
            raise _Transient(f"no answer within {timeout:.1f} s") from None
        except openai.APIConnectionError as exc:
            if isinstance(exc.__cause__ or exc.__context__, AnswerTooLarge):  # the same again
                raise LLMRejected(f"LLM at {self.url} answered more than "
                                  f"{MAX_ANSWER_BYTES // 2**20} MiB for one reply") from None
            raise _Transient(f"cannot connect ({_cause(exc)})") from None
        except openai.InternalServerError as exc:
            raise _Transient(f"server error {exc.status_code}: {_message(exc)}") from None
        except openai.APIStatusError as exc:
            raise LLMRejected(f"LLM at {self.url} refused the request ({exc.status_code}): {_message(exc)}") from None
        except (openai.APIResponseValidationError, ValueError) as exc:
            raise _Transient(f"malformed response ({type(exc).__name__})") from None
        return _completion(response, self._clock.monotonic() - started)


class _Transient(LLMUnavailable):
    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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


def _retry_after(exc: openai.APIStatusError) -> float:
    value = exc.response.headers.get("retry-after", "") if exc.response is not None else ""
    try:
        return min(float(value), MAX_BACKOFF_S)
    except ValueError:
        return 0.0


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
