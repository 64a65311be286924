"""What stands between the network and the webhook's work: the bearer token, a per-source rate
limit and the names of incidents already known to exist.

Hand-written because each is a few lines over the standard library (``hmac.compare_digest``, a
token bucket, an ordered dict): aiohttp has no rate-limit or auth middleware of its own, and the
maintained ones (aiohttp-limiter, aiohttp-basicauth) bring more than a bearer token and a bucket.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

#: Sources whose buckets are kept (least recently seen dropped first): bounded memory whatever
#: the number of addresses a flood comes from.
MAX_SOURCES = 4096
#: Incident names remembered as existing (least recently used dropped first).
MAX_NAMES = 16384


def authorized(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>``; always False when no token
    is configured (the webhook accepts nothing until one is). Constant-time comparison."""
    if not token or not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimit:
    """A token bucket per source: ``burst`` requests at once, refilled at ``per_minute``.
    ``per_minute`` 0 turns the limit off."""

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute, self.burst = per_minute, max(1, burst)
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, source: str) -> float:
        """0 when ``source`` may send now (a token is taken), else the seconds until it may."""
        if self.per_minute <= 0:
            return 0.0
        now, rate = self._clock(), self.per_minute / 60.0
        bucket = self._buckets.pop(source, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        self._buckets[source] = bucket
        if len(self._buckets) > MAX_SOURCES:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate


class KnownNames:
    """Incident names the API server already holds (created here, or answered 409): a payload
    Alertmanager sends again costs no API call for them."""

    def __init__(self, size: int = MAX_NAMES) -> None:
        self._size = size
        self._names: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, name: object) -> bool:
        if name in self._names:
            self._names.move_to_end(str(name))
            return True
        return False

    def add(self, name: str) -> None:
        self._names[name] = None
        self._names.move_to_end(name)
        if len(self._names) > self._size:
            self._names.popitem(last=False)
