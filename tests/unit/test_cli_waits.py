"""The wait line of a live diagnosis on a terminal: what it says, when, and that it is wiped."""

from __future__ import annotations

import io
import time
from contextlib import ExitStack

from thinkfl_operator.cli.waits import WaitLine, is_terminal, shown_waits
from thinkfl_operator.observability.progress import oldest_wait, waiting_on


class _Tty(io.StringIO):
    """A terminal as far as the wait line can tell: it says it is one, and keeps what it got."""

    def isatty(self) -> bool:
        return True


class _Clock:
    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


def test_the_line_appears_after_two_seconds_counts_up_and_is_wiped() -> None:
    out, clock = _Tty(), _Clock()
    line = WaitLine(out, clock=clock)
    with waiting_on("jaeger"):
        wait = oldest_wait()
        assert wait is not None
        clock.now = wait.since + 1.9
        line.refresh()
        assert out.getvalue() == ""  # a quick answer shows nothing
        clock.now = wait.since + 3.4
        line.refresh()
        assert out.getvalue() == "\rwaiting on jaeger for 3 s…\r"
        clock.now = wait.since + 3.9
        line.refresh()
        assert out.getvalue() == "\rwaiting on jaeger for 3 s…\r"  # the same words: not redrawn
        clock.now = wait.since + 12.0
        line.refresh()
        assert out.getvalue().endswith("\r\rwaiting on jaeger for 12 s…\r")
    shown = len("waiting on jaeger for 12 s…")
    before = out.getvalue()
    line.refresh()  # the answer came: the line is wiped, the cursor back at column 0
    assert out.getvalue() == before + "\r" + " " * shown + "\r"
    line.refresh()
    line.clear()
    assert out.getvalue() == before + "\r" + " " * shown + "\r"  # nothing left to wipe


def test_the_oldest_wait_is_named_and_a_shorter_line_covers_a_longer_one() -> None:
    out, clock = _Tty(), _Clock()
    line = WaitLine(out, clock=clock)
    with ExitStack() as prometheus:
        prometheus.enter_context(waiting_on("prometheus"))
        first = oldest_wait()
        assert first is not None
        with waiting_on("llm"):
            clock.now = first.since + 5.5
            line.refresh()
            assert out.getvalue() == "\rwaiting on prometheus for 5 s…\r"
            prometheus.close()  # the older request answered; the model is still thinking
            line.refresh()
            longer = len("waiting on prometheus for 5 s…")
            assert out.getvalue().endswith("\r" + "waiting on llm for 5 s…".ljust(longer) + "\r")
    line.clear()
    assert out.getvalue().endswith("\r" + " " * len("waiting on llm for 5 s…") + "\r")


def test_on_a_terminal_the_line_is_drawn_while_waiting_and_wiped_at_the_end() -> None:
    out = _Tty()
    with shown_waits(out, interval_s=0.01, after_s=0.0), waiting_on("tempo"):
        deadline = time.monotonic() + 10
        while "waiting on tempo for 0 s…" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "\rwaiting on tempo for " in out.getvalue()
    text = out.getvalue()
    last = text.rstrip("\r").rsplit("\r", 1)[-1]
    assert text.endswith("\r") and last.strip() == "", repr(text[-80:])


def test_only_a_terminal_counts() -> None:
    assert is_terminal(_Tty())
    assert not is_terminal(io.StringIO())
    closed = io.StringIO()
    closed.close()  # isatty raises on a closed stream
    assert not is_terminal(closed)
