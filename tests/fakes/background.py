"""An aiohttp application served from a daemon thread on 127.0.0.1 (the fakes' shared base).

A subclass adds its routes in ``_routes``; ``start``/``stop`` (or ``with``) run it on its own
event loop, on a port the OS picks. Slow replies use ``_sleep``, which ends early when the
server stops, so shutdown is fast.
"""

from __future__ import annotations

import asyncio
import http.server
import multiprocessing as mp
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web


class BackgroundServer:
    """Start, serve, stop; subclasses only describe their routes."""

    thread_name = "fake-server"

    def __init__(self, host: str = "127.0.0.1", shutdown_timeout_s: float = 0.5,
                 client_max_size: int = 1024**2) -> None:
        self._host = host
        self._shutdown_timeout_s = shutdown_timeout_s
        self._client_max_size = client_max_size
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.port: int | None = None

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` while the server runs."""
        if self.port is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return f"http://{self._host}:{self.port}"

    def _routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        name = type(self).__name__
        if self._thread is not None:
            raise RuntimeError(f"{name} already started")
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise RuntimeError(f"{name} did not start within 10 s")
        if self._startup_error is not None:
            self._thread.join(timeout=1)
            raise RuntimeError(f"{name} failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        """Stop serving; in-flight slow replies are woken up. Idempotent."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None or stopping is None:
            return
        if thread.is_alive():
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # loop already closed
                pass
            thread.join(timeout=self._shutdown_timeout_s + 5)
        self.port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                self._ready.set()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        runner: web.AppRunner | None = None
        try:
            app = web.Application(client_max_size=self._client_max_size)
            self._routes(app)
            runner = web.AppRunner(app, access_log=None, handler_cancellation=True,
                                   shutdown_timeout=self._shutdown_timeout_s)
            await runner.setup()
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((self._host, 0))
            self.port = sock.getsockname()[1]
            await web.SockSite(runner, sock).start()
        except Exception as exc:  # noqa: BLE001 - reported by start(), not lost in the thread
            self._startup_error = exc
            self._ready.set()
            if runner is not None:
                await runner.cleanup()
            return
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await runner.cleanup()

    async def _sleep(self, delay_s: float) -> None:
        """Non-blocking delay that ends early when the server is stopping."""
        if delay_s <= 0 or self._stopping is None:
            return
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=delay_s)
        except TimeoutError:
            pass


@dataclass
class Fault:
    """An injected answer for requests whose path starts with ``path``, ``times`` times
    (None = always). ``status=None`` only delays the normal answer by ``delay_s``."""

    status: int | None = 500
    body: str | dict[str, Any] | None = None
    delay_s: float = 0
    times: int | None = 1
    path: str = ""
    headers: dict[str, str] | None = None


class FaultyServer(BackgroundServer):
    """A backend stand-in that records every request (``requests``, ``calls``) and answers the
    ones a ``Fault`` matches its way (``inject``, ``_take_fault``); the error bodies are each
    backend's own (the subclass's)."""

    def __init__(self, faults: Iterable[Fault] = (), host: str = "127.0.0.1",
                 shutdown_timeout_s: float = 0.5, client_max_size: int = 1024**2) -> None:
        super().__init__(host, shutdown_timeout_s, client_max_size)
        self._lock = threading.Lock()
        self._faults: list[Fault] = list(faults)
        self._requests: list[str] = []

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` -- the base URL to give a client."""
        return self.root_url

    @property
    def requests(self) -> list[str]:
        """``path?query`` of every request received, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self._requests)

    def inject(self, *faults: Fault) -> None:
        """Add faults (thread-safe, also while running)."""
        with self._lock:
            self._faults.extend(faults)

    def _take_fault(self, path: str) -> Fault | None:
        """The first fault matching ``path`` with uses left (one use taken), else None."""
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path) and (fault.times is None or fault.times > 0):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None


@contextmanager
def threaded_http(handler: type[http.server.BaseHTTPRequestHandler],
                  poll_s: float = 0.5) -> Iterator[str]:
    """The standard library's threading HTTP server with ``handler`` on 127.0.0.1 (a port the
    OS picks), for stand-ins that speak plain HTTP: its base URL while the block runs."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(poll_s,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def in_own_process(make: Callable[[], BackgroundServer], timeout_s: float = 120.0) -> Iterator[str]:
    """The server ``make`` builds, run in a forked process of its own (no GIL shared with the
    client, as a real backend): its root URL while the block runs (benchmarks use it)."""
    ctx = mp.get_context("fork")
    urls: Any = ctx.Queue()
    stop = ctx.Event()
    process = ctx.Process(target=_serve, args=(make, urls, stop), daemon=True)
    process.start()
    try:
        yield urls.get(timeout=timeout_s)
    finally:
        stop.set()
        process.join(timeout=5)


def _serve(make: Callable[[], BackgroundServer], urls: Any, stop: Any) -> None:
    with make() as server:
        urls.put(server.root_url)
        stop.wait()
