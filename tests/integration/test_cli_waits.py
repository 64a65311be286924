"""``thinkfl diagnose`` against a Jaeger that keeps its first answer 3 s: on a terminal, stderr
says what it waits on; piped, stderr carries nothing but the command's own words."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.fakes.trace_api import Fault, TraceApiServer

DELAY_S = 3.0


def _argv(url: str) -> list[str]:
    script = Path(sys.executable).parent / "thinkfl"
    return [str(script), "diagnose", "--jaeger-url", url, "--time", "2023-01-30 11:51:46"]


def _env() -> dict[str, str]:
    return {**os.environ, "THINKFL_TRACES__RETRIES": "0", "THINKFL_LOG_LEVEL": "WARNING"}


def _slow_jaeger() -> TraceApiServer:
    return TraceApiServer(faults=[Fault(status=None, delay_s=DELAY_S, times=1)])


def _on_a_terminal(argv: list[str]) -> str:
    """stderr of ``argv`` when it is a pseudo-terminal (stdout piped), as the terminal got it."""
    leader, follower = pty.openpty()
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower,
                          env=_env()) as process:
        os.close(follower)
        received = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the process closed its end
                break
            if not chunk:
                break
            received += chunk
        process.communicate(timeout=120)
    os.close(leader)
    return received.decode("utf-8", "replace")


def test_a_terminal_is_told_which_backend_is_slow() -> None:
    with _slow_jaeger() as server:
        shown = _on_a_terminal(_argv(server.url))
    assert "\rwaiting on jaeger for 2 s…\r" in shown, repr(shown)
    drawn = shown.split("waiting on jaeger")[-1]
    assert "\r" + " " * len("waiting on jaeger for 2 s…") + "\r" in drawn, repr(shown)  # wiped


def test_piped_stderr_gets_no_wait_line() -> None:
    with _slow_jaeger() as server:
        done = subprocess.run(_argv(server.url), capture_output=True, text=True, timeout=120,
                              env=_env(), check=False)
        assert server.calls >= 1
    assert "waiting on" not in done.stderr and "\r" not in done.stderr, done.stderr
    assert "waiting on" not in done.stdout and "\r" not in done.stdout
