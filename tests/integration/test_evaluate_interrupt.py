"""Ctrl-C during an evaluation in forked workers: one line, exit code 130, no process left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.shared import NEZHA_TT_DAY, shared_path

_AS_A_TERMINAL_RUNS_IT = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                          "from thinkfl_operator.cli.main import main; sys.exit(main(sys.argv[1:]))")


def _gone(group: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_while_workers_diagnose_ends_with_one_line_and_no_process_left() -> None:
    day = shared_path(*NEZHA_TT_DAY)
    # as a terminal's foreground job: Python's SIGINT handler set (a background job of a script
    # inherits SIGINT ignored), in a process group of its own to signal as a terminal does
    process = subprocess.Popen(
        [sys.executable, "-c", _AS_A_TERMINAL_RUNS_IT, "evaluate", str(day), "--jobs", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert process.stdout is not None
        header = process.stdout.readline()
        first_row = process.stdout.readline()  # the workers are diagnosing now
        assert header and first_row
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == "thinkfl: interrupted"
    assert "Traceback" not in err
    assert _gone(process.pid, within_s=10), "a forked worker outlived the evaluation"
