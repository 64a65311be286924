"""A stand-in for every backend kind at once (Jaeger, Tempo, Loki, Prometheus, an OpenAI-compatible
LLM), over HTTP or HTTPS, that answers a script of failures first and records when each request
arrived: for the transport policy's tests (retries, ``Retry-After``, deadlines, TLS).

    with ScriptedServer([Scripted(429, {"Retry-After": "1"})]) as server:
        ...                     # the first request gets 429, the next ones a success
        server.arrivals         # path, wall and monotonic time of each request

A success is the smallest answer each client accepts: a chat completion for ``…/chat/
completions``, a Prometheus ``success`` for ``/api/v1/…``, ``{"data": []}`` otherwise.
"""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Self


@dataclass(frozen=True)
class Scripted:
    """One scripted answer: a status, its headers and a short body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "scripted failure"


@dataclass(frozen=True)
class Arrival:
    path: str
    wall: float  # time.time() when the request arrived
    monotonic: float  # time.monotonic() then (same process as the client)
    seen: Any = None  # what ``on_request`` returned then


CHAT_COMPLETION = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "ThinkFL",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "answered"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
PROMETHEUS_SUCCESS = {"status": "success", "data": {"resultType": "vector", "result": []}}


def success_for(path: str) -> dict[str, Any]:
    """The smallest answer the client asking ``path`` accepts."""
    if path.split("?")[0].endswith("/chat/completions"):
        return CHAT_COMPLETION
    if path.startswith("/api/v1/"):
        return PROMETHEUS_SUCCESS
    if path.startswith("/api/search"):  # Tempo
        return {"traces": []}
    return {"data": []}


class ScriptedServer:
    """Serves on 127.0.0.1 (a free port) from a thread; TLS when given an SSL context."""

    def __init__(self, script: Iterable[Scripted] = (), *, always: Scripted | None = None,
                 ssl_context: ssl.SSLContext | None = None,
                 on_request: Callable[[], Any] | None = None) -> None:
        self._script = list(script)
        self._always = always
        self._ssl = ssl_context
        self._on_request = on_request
        self._lock = threading.Lock()
        self._arrivals: list[Arrival] = []
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("ScriptedServer is not running")
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    @property
    def arrivals(self) -> list[Arrival]:
        with self._lock:
            return list(self._arrivals)

    def start(self) -> Self:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        if self._ssl is not None:
            server.socket = self._ssl.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True,
                                        name="scripted-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _next(self, path: str) -> tuple[int, dict[str, str], bytes]:
        seen = self._on_request() if self._on_request is not None else None
        with self._lock:
            self._arrivals.append(Arrival(path, time.time(), time.monotonic(), seen))
            answer = self._script.pop(0) if self._script else self._always
        if answer is None:
            return 200, {"Content-Type": "application/json"}, json.dumps(success_for(path)).encode()
        return answer.status, answer.headers, answer.body.encode()


def _handler(owner: ScriptedServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self._answer()

        def _answer(self) -> None:
            status, headers, body = owner._next(self.path)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    return Handler
