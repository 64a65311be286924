"""The line a person at a terminal sees while a diagnosis waits on a backend.

``waiting on jaeger for 3 s…`` on stderr, once a request has been in flight ``AFTER_S``
seconds (``observability.progress.oldest_wait``), rewritten in place every ``INTERVAL_S`` and
wiped when the wait or the diagnosis ends. Only when stderr is a terminal: a pipe, a file or a
log collector never gets a byte of it, and stdout and ``--json`` never do.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from thinkfl_operator.observability.progress import oldest_wait

AFTER_S = 2.0
INTERVAL_S = 0.25


class WaitLine:
    """The wait line on ``stream``, redrawn by ``refresh`` and wiped by ``clear``.

    Each draw ends with a carriage return, so a log line written meanwhile starts at column 0
    over it instead of after it; ``clock`` is ``time.monotonic`` (a test passes its own).
    """

    def __init__(self, stream: TextIO, after_s: float = AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stream, self._after_s, self._clock = stream, after_s, clock
        self._drawn = ""  # the line now on the terminal (drawn again only when it changes)

    def text(self) -> str:
        """What the line says now: empty unless a request has waited ``after_s`` or longer."""
        wait = oldest_wait()
        if wait is None:
            return ""
        seconds = wait.seconds(self._clock())
        return f"waiting on {wait.backend} for {int(seconds)} s…" if seconds >= self._after_s else ""

    def refresh(self) -> None:
        text = self.text()
        if text != self._drawn:
            self._draw(text)

    def clear(self) -> None:
        if self._drawn:
            self._draw("")

    def _draw(self, text: str) -> None:
        self._stream.write("\r" + text.ljust(len(self._drawn)) + "\r")
        self._stream.flush()
        self._drawn = text


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


@contextmanager
def shown_waits(stream: TextIO | None = None, interval_s: float = INTERVAL_S,
                after_s: float = AFTER_S) -> Iterator[None]:
    """While the block runs, the wait line on ``stream`` (default stderr) if it is a terminal;
    nothing at all otherwise. The line is wiped before the block's caller prints anything."""
    stream = sys.stderr if stream is None else stream
    if not is_terminal(stream):
        yield
        return
    line = WaitLine(stream, after_s)
    stop = threading.Event()

    def redraw() -> None:
        while not stop.wait(interval_s):
            line.refresh()

    thread = threading.Thread(target=redraw, name="thinkfl-wait-line", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        line.clear()
