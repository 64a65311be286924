"""The diagnosis budget: unbounded outside ``within``, nested budgets keep the shorter one, and
each thread (each diagnosis) sees only its own."""

from __future__ import annotations

import threading
import time

import pytest

from thinkfl_operator.core import deadline
from thinkfl_operator.core.errors import DeadlineExceeded


def test_without_a_budget_nothing_is_cut() -> None:
    assert deadline.ends() is None and deadline.remaining() is None
    assert deadline.timeout(10.0) == 10.0
    deadline.check("anything")  # never raises


def test_a_spent_budget_raises_naming_what_it_waited_for() -> None:
    with deadline.within(0.05):
        assert 0 < deadline.timeout(10.0) <= 0.05
        time.sleep(0.06)
        with pytest.raises(DeadlineExceeded, match=r"0\.05 s budget \(asking Jaeger\)"):
            deadline.check("asking Jaeger")
        assert deadline.timeout(10.0) == deadline.MIN_TIMEOUT_S
    deadline.check("after the block")


def test_no_request_begins_with_less_left_than_the_shortest_timeout() -> None:
    with deadline.within(deadline.MIN_TIMEOUT_S * 0.8), \
            pytest.raises(DeadlineExceeded, match=r"budget \(asking Loki\)"):
        deadline.check("asking Loki")


def test_an_inner_budget_cannot_outlast_the_outer_one() -> None:
    with deadline.within(1.0):
        outer = deadline.ends()
        with deadline.within(60.0):
            assert deadline.ends() == outer
        with deadline.within(0.1):
            assert (deadline.ends() or 0) < (outer or 0)


def test_sleep_is_cut_to_the_budget() -> None:
    slept: list[float] = []
    with deadline.within(0.2):
        deadline.sleep(8.0, slept.append)
    deadline.sleep(3.0, slept.append)
    assert 0 < slept[0] <= 0.2 and slept[1] == 3.0


def test_each_thread_has_its_own_budget() -> None:
    seen: list[float | None] = []
    with deadline.within(0.5):
        worker = threading.Thread(target=lambda: seen.append(deadline.remaining()))
        worker.start()
        worker.join()
    assert seen == [None]  # a plain thread does not inherit it (the operator copies the context)
