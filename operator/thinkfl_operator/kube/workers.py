"""Where diagnoses run: at most ``size`` at once, each in a thread of the workers' own pool.

A diagnosis blocks (HTTP to the backends and the model, CPU in the engine), so it leaves the
event loop; its own pool means neither the default executor's size (min(32, CPUs + 4)) nor the
webhook's API calls limit it. The caller's context variables (tracing) go with it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Workers:
    """``await workers.run(fn, *args)``: ``fn(*args)`` in a worker thread, within the limit."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.running = 0  # diagnoses in their thread now (the liveness probe shows it)
        self._limit = asyncio.Semaphore(size)
        self._pool = ThreadPoolExecutor(size, thread_name_prefix="diagnosis")

    def close(self) -> None:
        """No new work; the threads end once the diagnoses they run return (when the operator
        stops: a diagnosis in a thread cannot be interrupted)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def busy(self) -> bool:
        """Every worker is taken: a new diagnosis would wait."""
        return self._limit.locked()

    async def run(self, fn: Callable[..., T], *args: Any,
                  on_queue: Callable[[], Awaitable[None]] | None = None,
                  on_start: Callable[[], Awaitable[None]] | None = None) -> T:
        """``fn(*args)`` once a worker is free; ``on_queue`` is awaited first when it has to wait
        for one, ``on_start`` when it has one."""
        if on_queue is not None and self.busy():
            await on_queue()
        async with self._limit:
            self.running += 1
            try:
                if on_start is not None:
                    await on_start()
                work = functools.partial(contextvars.copy_context().run, fn, *args)
                return await asyncio.get_running_loop().run_in_executor(self._pool, work)
            finally:
                self.running -= 1
