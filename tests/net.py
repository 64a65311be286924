"""Small network helpers the tests share: a free local port, a POST to a served API."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp


def free_port() -> int:
    """A port nothing listens on (once the probe socket is closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def post_json(api: Any, path: str, body: dict[str, Any]) -> None:
    """POST ``body`` to ``path`` of the API (what ``kubectl create -f`` sends); 200 or 201."""
    async with aiohttp.ClientSession() as session, session.post(
            f"{str(api.url).rstrip('/')}{path}", json=body) as response:
        assert response.status in (200, 201), await response.text()
