"""The wall-clock budget of one diagnosis, seen by every layer that waits on something.

The operator opens it around a diagnosis (``within``); the HTTP clients of the backends and the
LLM conversation read it: ``check`` before each request, ``timeout`` to cap a request's own
timeout, ``sleep`` to cut a backoff short. It lives in a context variable, so each diagnosis
(each worker thread runs in its own copy of the context) has its own, and code run without one
(the CLI, tests) is unbounded.

    with deadline.within(300):
        diagnose(...)           # DeadlineExceeded from the first request past 300 s
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from thinkfl_operator.core.errors import DeadlineExceeded

#: The shortest timeout handed to a request while any budget is left.
MIN_TIMEOUT_S = 0.05


@dataclass(frozen=True)
class _Budget:
    ends: float  # time.monotonic() at which it runs out
    seconds: float  # its size, for messages


_CURRENT: ContextVar[_Budget | None] = ContextVar("thinkfl_deadline", default=None)


@contextlib.contextmanager
def within(seconds: float) -> Iterator[None]:
    """A budget of ``seconds`` from now for the code inside (an outer, shorter one still wins)."""
    budget = _Budget(time.monotonic() + seconds, seconds)
    outer = _CURRENT.get()
    token = _CURRENT.set(budget if outer is None or budget.ends < outer.ends else outer)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def ends() -> float | None:
    """The monotonic time the current budget runs out; None when there is none."""
    budget = _CURRENT.get()
    return None if budget is None else budget.ends


def remaining() -> float | None:
    """Seconds left in the current budget (≤ 0 once spent); None when there is none."""
    budget = _CURRENT.get()
    return None if budget is None else budget.ends - time.monotonic()


def check(doing: str) -> None:
    """``DeadlineExceeded`` naming ``doing`` (e.g. "asking Jaeger") once the budget is spent,
    or has less left than ``MIN_TIMEOUT_S``: a request begun then would be given that much
    (``timeout``) and outlast the budget."""
    budget = _CURRENT.get()
    if budget is not None and time.monotonic() + MIN_TIMEOUT_S > budget.ends:
        raise DeadlineExceeded(f"the diagnosis ran out of its {budget.seconds:g} s budget "
                               f"({doing})")


def timeout(seconds: float) -> float:
    """``seconds``, cut to what is left of the budget (never below ``MIN_TIMEOUT_S``)."""
    left = remaining()
    return seconds if left is None else max(MIN_TIMEOUT_S, min(seconds, left))


def sleep(seconds: float, sleeper: Callable[[float], None] = time.sleep) -> None:
    """Sleep ``seconds``, or only what is left of the budget."""
    left = remaining()
    sleeper(seconds if left is None else max(0.0, min(seconds, left)))
