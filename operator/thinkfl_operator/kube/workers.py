"""Where diagnoses run: at most ``size`` at once, each in a worker process (or a thread).

A diagnosis blocks: HTTP to the backends and the model, and CPU in pandas, which holds the GIL
while it works. In a worker process it never competes with kopf's event loop (the watch, the
status patches, the liveness probe) for the GIL: the operator's process sends the incident (its
object as a dict, and the try) and gets the outcome back (``runner.Outcome``). The workers are
forked from a server process that imported the diagnosis code once (``forkserver``), so a new
worker starts in milliseconds and shares those pages; each one opens the clients its diagnoses
share once (the LLM endpoint's). What crosses to a worker must pickle: the settings and the store
factory (once per worker), the incident and the try (per diagnosis). The workers run niced
(``operator.worker_nice``): when the CPUs are short, the kernel serves the operator's own process
first, so a liveness probe is answered while four diagnoses run (``bench/webhook_flood.py``).

Threads (``processes=False``) keep everything in the operator's process, for store factories
that cannot cross (a closure, a test's counting fake): the in-process sandbox and the tests.

A worker that dies (killed for memory, say) takes the pool with it: what the pool was diagnosing
gets a retryable ``WorkerLost`` outcome, and the next diagnosis starts a new pool. When the
operator stops, the worker processes are terminated: a diagnosis in a process, unlike one in a
thread, can be interrupted.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import multiprocessing
import multiprocessing.util
import os
import pickle
import signal
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from thinkfl_operator.config.logs import configure_logging
from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.errors import BackendError
from thinkfl_operator.engines.thinkfl.client import ChatClient
from thinkfl_operator.engines.thinkfl.engine import open_chat
from thinkfl_operator.kube import runner
from thinkfl_operator.observability.otel import configure_tracing

#: Imported once by the server the workers are forked from: this module imports the use case,
#: the engines and pandas.
PRELOAD = [__name__]


class WorkerLost(BackendError):
    """The worker process diagnosing the incident died (killed for memory, say); retryable, so an
    incident whose diagnosis kills its worker every time ends Failed once its tries run out."""

    backend = "operator"
    reason = "WorkerLost"


@dataclass(frozen=True)
class Diagnoser:
    """One try of one incident (``runner.run``) with what every diagnosis of a process shares."""

    settings: Settings
    open_store: runner.StoreFactory
    chat: ChatClient | None = None

    def __call__(self, body: Mapping[str, Any], attempt: int) -> runner.Outcome:
        return runner.run(body, self.settings, self.open_store, attempt, self.chat)


#: The worker process's own diagnoser, made by ``_start``.
_IN_WORKER: Diagnoser | None = None


def _start(settings: Settings, open_store: runner.StoreFactory) -> None:
    """A worker process starts: logs like the operator's, Ctrl-C left to the operator (which
    terminates its workers), niceness ``operator.worker_nice``, its own LLM client for every
    diagnosis it runs."""
    global _IN_WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if settings.operator.worker_nice:  # the operator's own process gets the CPU first
        os.nice(settings.operator.worker_nice)
    configure_logging(settings.log_level, settings.log_format)
    provider = configure_tracing()  # the diagnoses' spans are made here, in the worker
    if provider is not None:  # a worker process runs no atexit: flush its last spans as it ends
        multiprocessing.util.Finalize(provider, provider.shutdown, exitpriority=10)
    _IN_WORKER = Diagnoser(settings, open_store, open_chat(settings) if settings.llm.base_url else None)


def _diagnose(body: Mapping[str, Any], attempt: int) -> runner.Outcome:
    if _IN_WORKER is None:
        raise RuntimeError("a diagnosis reached a worker process that was not started")
    return _IN_WORKER(body, attempt)


def _started() -> int:
    return os.getpid()


class Workers:
    """``await workers.diagnose(body, attempt)``: one try of the incident ``body`` in a worker,
    within the limit of ``size`` at once."""

    def __init__(self, size: int, diagnoser: Diagnoser, processes: bool = True) -> None:
        self.size = size
        self.processes = processes
        self.running = 0  # diagnoses in a worker now (the liveness probe shows it)
        self._diagnoser = diagnoser
        self._limit = asyncio.Semaphore(size)
        if processes:
            _check_picklable(diagnoser)
        self._pool = self._new_pool()

    def _new_pool(self) -> Executor:
        if not self.processes:
            return ThreadPoolExecutor(self.size, thread_name_prefix="diagnosis")
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return ProcessPoolExecutor(self.size, mp_context=context, initializer=_start,
                                   initargs=(self._diagnoser.settings, self._diagnoser.open_store))

    async def start(self) -> None:
        """Start the worker processes now, not with the first incident (threads need nothing)."""
        if self.processes:
            loop = asyncio.get_running_loop()
            await asyncio.gather(*(loop.run_in_executor(self._pool, _started) for _ in range(self.size)))

    def close(self) -> None:
        """No new work; worker processes are terminated (threads end once the diagnoses they
        run return: a diagnosis in a thread cannot be interrupted)."""
        if self.processes:
            _terminate(self._pool)
        else:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def busy(self) -> bool:
        """Every worker is taken: a new diagnosis would wait."""
        return self._limit.locked()

    async def diagnose(self, body: Mapping[str, Any], attempt: int,
                       on_queue: Callable[[], Awaitable[None]] | None = None,
                       on_start: Callable[[], Awaitable[None]] | None = None) -> runner.Outcome:
        """Try ``attempt`` (from 0) of the incident ``body`` once a worker is free; ``on_queue``
        is awaited first when it has to wait for one, ``on_start`` when it has one."""
        if on_queue is not None and self.busy():
            await on_queue()
        async with self._limit:
            self.running += 1
            try:
                if on_start is not None:
                    await on_start()
                return await self._run(body, attempt)
            finally:
                self.running -= 1

    async def _run(self, body: Mapping[str, Any], attempt: int) -> runner.Outcome:
        loop = asyncio.get_running_loop()
        if not self.processes:  # the caller's context variables (tracing) go with it
            work = functools.partial(contextvars.copy_context().run, self._diagnoser, body, attempt)
            return await loop.run_in_executor(self._pool, work)
        pool = self._pool
        try:
            return await loop.run_in_executor(pool, _diagnose, body, attempt)
        except BrokenProcessPool as exc:
            if self._pool is pool:  # the first diagnosis to see it starts a new pool
                _terminate(pool)
                self._pool = self._new_pool()
            lost = WorkerLost(f"the worker process diagnosing it died ({exc})")
            return runner.lost(body, self._diagnoser.settings, attempt, lost)


def _check_picklable(diagnoser: Diagnoser) -> None:
    try:
        pickle.dumps((diagnoser.settings, diagnoser.open_store))
    except Exception as exc:
        raise TypeError(f"the store factory {diagnoser.open_store!r} cannot be sent to worker "
                        f"processes ({exc}); make it picklable (a module-level function or class) "
                        f"or diagnose in threads (processes=False)") from exc


def _terminate(pool: Executor) -> None:
    """Shut a process pool down and terminate its workers (Python 3.14 has ``terminate_workers``;
    before it, the pool's own table of processes, which ``shutdown`` empties)."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
