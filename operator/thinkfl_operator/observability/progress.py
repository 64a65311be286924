"""What the process is waiting on right now, for a person watching a terminal.

Every client wraps each request it sends to a backend in ``waiting_on(name)``; the command line
asks ``oldest_wait()`` from another thread and, when a wait has lasted a while, shows which
backend it is waiting on. Thread-safe: diagnoses and their clients may run on worker threads.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Wait:
    backend: str  # "jaeger", "tempo", "prometheus", "loki", "llm", "kubernetes", …
    since: float  # time.monotonic() when the request was sent

    def seconds(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.since


_lock = threading.Lock()
_waits: dict[int, Wait] = {}
_tokens = itertools.count()


@contextmanager
def waiting_on(backend: str) -> Iterator[None]:
    """Marks one request to ``backend`` as in flight for as long as the block runs."""
    token = next(_tokens)
    with _lock:
        _waits[token] = Wait(backend, time.monotonic())
    try:
        yield
    finally:
        with _lock:
            _waits.pop(token, None)


def oldest_wait() -> Wait | None:
    """The request in flight the longest, or None when nothing is waited on."""
    with _lock:
        return min(_waits.values(), key=lambda wait: wait.since, default=None)
