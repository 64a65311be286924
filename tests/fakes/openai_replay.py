"""A small OpenAI-compatible HTTP server that replays scripted chat-completion turns.

Tests point the real ``openai`` client at it::

    with ReplayServer(["first answer", Fault(429, headers={"Retry-After": "1"})]) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        client.chat.completions.create(model="ThinkFL", messages=[...])

The server is an aiohttp application running on its own event loop in a daemon thread,
bound to ``127.0.0.1`` on a free port chosen by the OS.  Slow replies (``delay_s``) sleep
on that loop, so they never block other requests, and stopping the server wakes them up
so shutdown takes well under a second.

Turns (one per ``POST /v1/chat/completions`` request, consumed in order):

* ``str`` -- the assistant message content of a normal 200 ``chat.completion``;
* :class:`Reply` -- the same with explicit token counts, finish reason and/or a delay;
* :class:`Fault` -- an HTTP error with an OpenAI error body (``str`` body = the message,
  ``dict`` body = sent verbatim as JSON, ``None`` = a default message for the status);
* :class:`Malformed` -- a 200 whose body is not valid JSON.  It is served with
  ``Content-Type: application/json``, so the ``openai`` client's ``response.json()``
  raises :class:`json.JSONDecodeError` (a ``ValueError``, *not* an ``openai.APIError``);
* :class:`EmptyChoices` -- a 200 ``chat.completion`` with ``"choices": []``;
* a callable ``(request_json) -> turn`` -- called on the server's loop thread for a dynamic
  answer (it may return any of the above, or an awaitable of one).  If it raises, the
  client gets a 500 and the exception is kept in :attr:`ReplayServer.errors`.

Requests asking for ``"stream": true`` are recorded but answered with a 400 and do not
consume a turn; bodies that are not JSON objects get a 400 and are not recorded.
"""

from __future__ import annotations

import inspect
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.background import BackgroundServer

__all__ = [
    "EmptyChoices",
    "Fault",
    "Malformed",
    "ReplayServer",
    "Reply",
    "Turn",
]


@dataclass(frozen=True)
class Reply:
    """A 200 chat.completion; token counts default to ``len(text) // 4`` estimates."""

    content: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    delay_s: float = 0
    finish_reason: str = "stop"


@dataclass(frozen=True)
class Fault:
    """An HTTP error response with an OpenAI-style error body."""

    status: int
    body: str | dict[str, Any] | None = None
    delay_s: float = 0
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Malformed:
    """A 200 response (``Content-Type: application/json``) whose body is ``text`` verbatim."""

    text: str
    delay_s: float = 0


@dataclass(frozen=True)
class EmptyChoices:
    """A 200 chat.completion with ``"choices": []``."""

    delay_s: float = 0


Turn = str | Reply | Fault | Malformed | EmptyChoices | Callable[[dict[str, Any]], Any]

_ERROR_TYPES = {
    400: ("invalid_request_error", "bad_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "forbidden"),
    404: ("not_found_error", "not_found"),
    408: ("timeout_error", "timeout"),
    409: ("conflict_error", "conflict"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}
_MAX_CALLABLE_DEPTH = 8


def _error_body(
    status: int, message: str, *, type_: str | None = None, code: str | None = None
) -> dict[str, Any]:
    default_type, default_code = _ERROR_TYPES.get(
        status, ("server_error", "server_error") if status >= 500 else ("api_error", "api_error")
    )
    return {
        "error": {
            "message": message,
            "type": type_ or default_type,
            "code": code or default_code,
            "param": None,
        }
    }


def _content_text(content: Any) -> str:
    """Text of a message ``content`` (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return ""


def estimate_prompt_tokens(request_json: dict[str, Any]) -> int:
    """``len(text) // 4`` over all request message contents."""
    messages = request_json.get("messages")
    if not isinstance(messages, list):
        return 0
    text = "".join(_content_text(m.get("content")) for m in messages if isinstance(m, dict))
    return len(text) // 4


class ReplayServer(BackgroundServer):
    thread_name = "openai-replay"

    """OpenAI-compatible test server replaying ``script`` turns; see the module docstring.

    ``when_exhausted``: ``"error"`` (default; a 500 whose error message says the script ran
    out), ``"repeat_last"`` (serve the last turn again; callables are called again), or a
    callable turn used for every request past the end of the script.
    """

    def __init__(
        self,
        script: Iterable[Turn] = (),
        *,
        when_exhausted: str | Callable[[dict[str, Any]], Any] = "error",
        model_name: str = "ThinkFL",
        host: str = "127.0.0.1",
        shutdown_timeout_s: float = 0.5,
    ) -> None:
        if not callable(when_exhausted) and when_exhausted not in ("error", "repeat_last"):
            raise ValueError(
                f"when_exhausted must be 'error', 'repeat_last' or a callable, "
                f"not {when_exhausted!r}"
            )
        self._script: list[Turn] = list(script)
        self._when_exhausted = when_exhausted
        self.model_name = model_name
        super().__init__(host, shutdown_timeout_s, client_max_size=64 * 1024 * 1024)

        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._errors: list[BaseException] = []
        self._next_turn = 0
        self._ids = itertools.count(1)


    # ------------------------------------------------------------------ public API

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` -- pass as ``openai.OpenAI(base_url=...)``."""
        return f"{self.root_url}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Snapshot of the decoded JSON bodies of chat-completion requests, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def calls(self) -> int:
        """Number of chat-completion requests received (``len(requests)``)."""
        with self._lock:
            return len(self._requests)

    @property
    def remaining(self) -> int:
        """Script turns not yet served."""
        with self._lock:
            return max(0, len(self._script) - self._next_turn)

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised by callable turns (each was answered with a 500)."""
        with self._lock:
            return list(self._errors)

    def add(self, *turns: Turn) -> None:
        """Append turns to the script (thread-safe, also while running)."""
        with self._lock:
            self._script.extend(turns)

    # ------------------------------------------------------------------ server thread

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_post("/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/models", self._models)
        app.router.add_get("/health", self._health)

    # ------------------------------------------------------------------ handlers

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": self.model_name, "object": "model", "created": 0, "owned_by": "vllm"}
                ],
            }
        )

    def _take_turn(self) -> Turn | None:
        with self._lock:
            if self._next_turn < len(self._script):
                turn = self._script[self._next_turn]
                self._next_turn += 1
                return turn
            if self._when_exhausted == "repeat_last" and self._script:
                return self._script[-1]
            if callable(self._when_exhausted):
                return self._when_exhausted
            return None

    async def _chat_completions(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as exc:
            return web.json_response(
                _error_body(400, f"request body is not valid JSON: {exc}"), status=400
            )
        if not isinstance(body, dict):
            return web.json_response(
                _error_body(400, "request body must be a JSON object"), status=400
            )
        with self._lock:
            self._requests.append(body)
            served = len(self._script)
        if body.get("stream"):
            return web.json_response(
                _error_body(
                    400, "streaming is not supported by ReplayServer", code="stream_not_supported"
                ),
                status=400,
            )

        turn: Any = self._take_turn()
        if turn is None:
            return web.json_response(
                _error_body(
                    500,
                    f"ReplayServer script exhausted: all {served} scripted "
                    f"turn(s) were already served",
                    type_="replay_script_exhausted",
                    code="script_exhausted",
                ),
                status=500,
            )
        try:
            for _ in range(_MAX_CALLABLE_DEPTH):
                if not callable(turn):
                    break
                turn = turn(body)
                if inspect.isawaitable(turn):
                    turn = await turn
        except Exception as exc:  # noqa: BLE001 - any test-callable bug becomes a 500
            with self._lock:
                self._errors.append(exc)
            return web.json_response(
                _error_body(
                    500, f"ReplayServer callable turn raised {exc!r}", code="replay_callable_error"
                ),
                status=500,
            )
        return await self._respond(turn, body)

    async def _respond(self, turn: Any, body: dict[str, Any]) -> web.Response:
        if isinstance(turn, str):
            turn = Reply(turn)
        if isinstance(turn, Reply):
            await self._sleep(turn.delay_s)
            return web.json_response(self._completion(body, turn))
        if isinstance(turn, Fault):
            await self._sleep(turn.delay_s)
            if isinstance(turn.body, dict):
                payload = turn.body
            else:
                payload = _error_body(
                    turn.status,
                    turn.body
                    if turn.body is not None
                    else f"ReplayServer scripted fault (HTTP {turn.status})",
                )
            return web.json_response(payload, status=turn.status, headers=turn.headers)
        if isinstance(turn, Malformed):
            await self._sleep(turn.delay_s)
            return web.Response(text=turn.text, content_type="application/json")
        if isinstance(turn, EmptyChoices):
            await self._sleep(turn.delay_s)
            payload = self._completion(body, Reply("", completion_tokens=0))
            payload["choices"] = []
            return web.json_response(payload)
        with self._lock:
            self._errors.append(TypeError(f"unsupported ReplayServer turn: {turn!r}"))
        return web.json_response(
            _error_body(500, f"unsupported ReplayServer turn: {turn!r}", code="replay_bad_turn"),
            status=500,
        )

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        prompt = (
            reply.prompt_tokens if reply.prompt_tokens is not None else estimate_prompt_tokens(body)
        )
        completion = (
            reply.completion_tokens
            if reply.completion_tokens is not None
            else len(reply.content) // 4
        )
        return {
            "id": f"chatcmpl-replay-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content},
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
