"""A server that answers the hostile way, for the whole-request timeout and the body cap of every
HTTP client (Jaeger, Tempo, Loki, Prometheus): ``/drip/...`` and ``/huge/...`` answer any path
below them, so a client pointed at ``root_url + "/drip"`` gets the treatment on every request."""

from __future__ import annotations

from aiohttp import web

from tests.fakes.background import BackgroundServer


class HostileServer(BackgroundServer):
    """An HTTP server that answers 200 to everything, the hostile way: ``drip`` sends a valid
    JSON body one byte every ``every_s`` seconds; ``huge`` streams ``size`` bytes of JSON as fast
    as it can, chunked (no Content-Length) or declared."""

    def __init__(self, every_s: float = 0.5, size: int = 200 * 2**20, declare: bool = False) -> None:
        super().__init__()
        self.every_s, self.size, self.declare = every_s, size, declare
        self.thread_name = "hostile"

    def _routes(self, app: web.Application) -> None:
        for method in ("GET", "POST"):  # POST: the LLM's chat completions
            app.router.add_route(method, "/drip/{tail:.*}", self._drip)
            app.router.add_route(method, "/huge/{tail:.*}", self._huge)

    async def _drip(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for byte in b'{"data": []}' + b" " * 10_000:
            await response.write(bytes([byte]))
            await self._sleep(self.every_s)
        return response

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": "application/json"}
        if self.declare:
            headers["Content-Length"] = str(self.size)
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        chunk = b'{"data": [' + b"1," * (2**20 // 2 - 10) + b"1]}"
        sent = 0
        while sent < self.size:
            await response.write(chunk)
            sent += len(chunk)
        return response
