"""The ``thinkfl`` command line: user errors are one stderr line and exit 2; demo works."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from thinkfl_operator.cli.main import main

DAY = "2023-01-30"
POD = "ts-basic-service-5dc8d4f9fd-llznp"
TRACE_HEADER = (
    "TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration\n"
)
T0_NS = 1_675_079_460 * 10**9  # 2023-01-30 11:51:00 UTC


def _nezha_day(tmp_path: Path, trace_text: str | None = None,
               label: str | None = None) -> Path:
    """A tiny Nezha day folder: one trace CSV, an empty metric folder, optional label file."""
    day = tmp_path / DAY
    (day / "trace").mkdir(parents=True)
    (day / "metric").mkdir()
    if trace_text is None:
        rows = [f"t{i},s{i},root,{POD},GET /x,{T0_NS + i * 10**9},{T0_NS + i * 10**9 + 10**6},1000"
                for i in range(5)]
        trace_text = TRACE_HEADER + "\n".join(rows) + "\n"
    (day / "trace" / "11_51_trace.csv").write_text(trace_text, encoding="utf-8")
    if label is not None:
        (day / f"{DAY}-fault_list.json").write_text(label, encoding="utf-8")
    return day


def _user_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run main in-process; assert exit 2, nothing on stdout's error path, ONE stderr line."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors leave through SystemExit
        code = exc.code  # type: ignore[assignment]
    out = capsys.readouterr()
    assert code == 2, out
    assert "Traceback" not in out.err and "Traceback" not in out.out
    lines = out.err.splitlines()
    assert len(lines) == 1, out.err
    # subcommand parsers name themselves ("thinkfl demo: error: ...")
    assert re.match(r"thinkfl( [a-z]+)?: error: ", lines[0]), lines[0]
    return lines[0]


# user errors ----------------------------------------------------------------------------------

def test_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    line = _user_error(capsys, ["diagnose", str(missing), "--time", "2023-01-30 11:51:46"])
    assert str(missing) in line and "no such folder" in line
    line = _user_error(capsys, ["evaluate", str(missing)])
    assert str(missing) in line


def test_folder_that_is_not_a_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "random").mkdir()
    line = _user_error(capsys, ["diagnose", str(tmp_path / "random"), "--time", "1675079506"])
    assert str(tmp_path / "random") in line and "not a dataset folder" in line


def test_file_instead_of_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "file.csv"
    path.write_text("x\n")
    line = _user_error(capsys, ["diagnose", str(path), "--time", "1675079506"])
    assert str(path) in line


def test_evaluate_day_without_label_file(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    day = _nezha_day(tmp_path)
    line = _user_error(capsys, ["evaluate", str(day)])
    assert str(day) in line and "label file" in line


def test_malformed_fault_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    day = _nezha_day(tmp_path, label='{"11": [\n')
    line = _user_error(capsys, ["evaluate", str(day)])
    assert f"{DAY}-fault_list.json" in line and "malformed JSON" in line


def test_fault_list_entry_without_pod(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    day = _nezha_day(tmp_path, label='{"11": [{"inject_time": "2023-01-30 11:51:46"}]}')
    line = _user_error(capsys, ["evaluate", str(day)])
    assert f"{DAY}-fault_list.json" in line and "inject_pod" in line


def test_trace_csv_missing_a_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "TraceID,SpanID,ParentID,PodName,OperationName\nt,s,root,p,GET\n"
    day = _nezha_day(tmp_path, trace_text=text)
    line = _user_error(capsys, ["diagnose", str(day), "--time", "2023-01-30 11:51:46"])
    assert "11_51_trace.csv" in line and "StartTimeUnixNano" in line


def test_bad_time_names_the_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    day = _nezha_day(tmp_path)
    line = _user_error(capsys, ["diagnose", str(day), "--time", "2023-13-01 00:00:00"])
    assert "2023-13-01 00:00:00" in line and "--time" in line


def test_diagnose_needs_time_or_trace_id(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    day = _nezha_day(tmp_path)
    line = _user_error(capsys, ["diagnose", str(day)])
    assert "--time" in line and "--trace-id" in line


def test_engine_thinkfl_without_an_endpoint_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("THINKFL_LLM__BASE_URL", raising=False)
    day = _nezha_day(tmp_path)
    line = _user_error(capsys, ["diagnose", str(day), "--time", "2023-01-30 11:51:46",
                                "--engine", "thinkfl"])
    assert "thinkfl" in line and "--llm-url" in line


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
        ([], "required: command"),
        (["diagnose"], "--time or --trace-id"),
        (["diagnose", "x", "--engine", "gpt"], "invalid choice: 'gpt'"),
        (["demo", "--seed", "seven"], "invalid int value: 'seven'"),
        (["evaluate", "x", "--jobs", "0"], "--jobs: expected a whole number of at least 1, got '0'"),
        (["bench", "x", "--jobs", "two"], "--jobs: expected a whole number of at least 1, got 'two'"),
    ],
)
def test_argparse_errors_are_one_line(argv: list[str], words: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    line = _user_error(capsys, argv)
    assert words in line


def test_demo_unknown_fault_is_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    line = _user_error(capsys, ["demo", "--fault", "meteor"])
    assert "meteor" in line


# subprocess: the real console script ----------------------------------------------------------

def _console_script() -> str:
    beside = Path(sys.executable).parent / "thinkfl"
    found = str(beside) if beside.exists() else shutil.which("thinkfl")
    assert found, "the thinkfl console script is not installed"
    return found


def test_console_script_user_error_has_no_traceback(tmp_path: Path) -> None:
    day = _nezha_day(tmp_path)
    proc = subprocess.run(
        [_console_script(), "diagnose", str(day), "--time", "2023-13-01 00:00:00"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    expected = ('thinkfl: error: --time "2023-13-01 00:00:00" is not a time like '
                "2023-01-30 11:51:46 (UTC) or an RFC 3339 time")
    assert proc.stderr.splitlines() == [expected]
    assert proc.stdout == ""


def test_console_script_unknown_command(tmp_path: Path) -> None:
    proc = subprocess.run([_console_script(), "frobnicate"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr


# demo ----------------------------------------------------------------------------------------

def _table_rows(out: str) -> list[list[str]]:
    """The Root Causes table rows (columns split on runs of two or more spaces)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["RANK", "SERVICE"])
    rows = []
    for line in lines[start + 1:]:
        cells = re.split(r"\s{2,}", line.strip())
        if not cells[0].isdigit():
            break
        rows.append(cells)
    return rows


def _run_demo(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[str, str]:
    code = main(["demo", *extra])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "Traceback" not in out.err
    match = re.search(r"Injected: (\S+);", out.out)
    assert match, out.out
    return out.out, match.group(1)


def test_demo_prints_root_causes_and_steps(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "demo.json"
    out, injected = _run_demo(capsys, "--json", str(target))
    assert "Root Causes" in out and "Steps" in out
    rows = _table_rows(out)
    assert len(rows) >= 3
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0][1] == injected == "recommendationservice"

    payload = json.loads(target.read_text(encoding="utf-8"))
    assert {"root_causes", "engine", "steps", "traces", "usage"} <= set(payload)
    causes = payload["root_causes"]
    assert causes and causes[0]["service"] == injected
    for item in causes:
        assert {"rank", "service", "pod", "node", "reason", "score"} <= set(item)
        assert type(item["score"]) is int
    assert [c["rank"] for c in causes] == list(range(1, len(causes) + 1))
    assert payload["engine"] == "heuristic"
    assert payload["steps"] and payload["steps"][-1]["tool"] == "print_results"


@pytest.mark.parametrize("fault", ["cpu_contention", "return"])
def test_demo_other_faults_rank_the_injected_service_first(
        fault: str, capsys: pytest.CaptureFixture[str]) -> None:
    out, injected = _run_demo(capsys, "--fault", fault)
    assert f"{fault} injected into" in out
    assert _table_rows(out)[0][1] == injected


def test_demo_json_to_an_unwritable_path_is_a_user_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "no-such-dir" / "out.json"
    try:
        code = main(["demo", "--json", str(target)])
    except SystemExit as exc:  # pragma: no cover - would be a bug
        code = exc.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert code == 2
    expected = f"thinkfl: error: --json {target}: no such folder {target.parent}"
    assert err.splitlines() == [expected]
    assert "Synthetic" not in capsys.readouterr().out  # refused before any work


@pytest.mark.parametrize(("argv", "expected"), [
    (["--time", "2023-01-30 11:51:46", "--window", "-5"], "--window -5: give the seconds after --time"),
    (["--time", "2023-01-30 11:51:46", "--window", "0"], "--window 0: give the seconds after --time"),
    (["--time", "2023-01-30 11:51:46", "--window", "nan"], "--window nan: give the seconds after --time"),
    (["--trace-id", "zz-not-hex"], "--trace-id 'zz-not-hex': a trace ID is 1 to 32 hexadecimal digits"),
    (["--trace-id", "a" * 33], "a trace ID is 1 to 32 hexadecimal digits"),
])
def test_flags_are_checked_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           argv: list[str], expected: str) -> None:
    line = _user_error(capsys, ["diagnose", str(tmp_path / "not-read"), *argv])
    assert expected in line


def test_an_unknown_log_level_is_one_line_naming_the_variable(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THINKFL_LOG_LEVEL", "verbose")
    line = _user_error(capsys, ["demo"])
    assert line == ("thinkfl: error: invalid settings: THINKFL_LOG_LEVEL='verbose': Value error, "
                    "choose one of DEBUG, INFO, WARNING, ERROR, CRITICAL")


def test_a_time_the_command_printed_can_be_given_back() -> None:
    from thinkfl_operator.cli.timeparse import iso, parse_time

    assert parse_time(iso(1_675_079_506.0)) == 1_675_079_506.0
    assert parse_time("2023-01-30 11:51:46 utc") == 1_675_079_506.0


# evaluate: a row as each fault is diagnosed ------------------------------------------------------

class _Terminal(io.StringIO):
    """stdout that notes, at every line written, how many requests the model has had so far."""

    def __init__(self, calls: Callable[[], int]) -> None:
        super().__init__()
        self.calls = calls
        self.seen: list[tuple[str, int]] = []
        self.partial = ""

    def write(self, text: str) -> int:
        written = super().write(text)
        *complete, self.partial = (self.partial + text).split("\n")
        self.seen += [(line, self.calls()) for line in complete]
        return written


def test_evaluate_prints_each_row_as_its_fault_is_diagnosed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One model request per fault (it fails, the deterministic engine answers): row i is on
    stdout after fault i's request and before fault i+1's; the summary stays at the end."""
    from tests.fakes.openai_replay import ReplayServer

    times = [f"2023-01-30 11:51:0{i}" for i in range(3)]
    label = json.dumps({"11": [{"inject_time": t, "inject_pod": POD, "inject_type": "cpu_contention"}
                               for t in times]})
    day = _nezha_day(tmp_path, label=label)
    monkeypatch.setenv("THINKFL_LLM__RETRIES", "0")
    with ReplayServer() as server:  # no script: every request is answered 500
        out = _Terminal(lambda: server.calls)
        monkeypatch.setattr(sys, "stdout", out)
        code = main(["evaluate", str(day), "--engine", "auto", "--llm-url", server.base_url])
    assert code == 0
    header, *rows = [(line, calls) for line, calls in out.seen if not line.startswith("faults scored")]
    assert header == (header[0], 0) and header[0].split("  ")[0] == "TIME (UTC)"
    rows = rows[:3]
    assert [(line[:19], calls) for line, calls in rows] == [(t, i + 1) for i, t in enumerate(times)]
    for line, _ in rows:  # aligned under the header: the widths were fixed before the first row
        assert re.split(r"\s{2,}", line)[1:3] == ["cpu_contention", "ts-basic-service"]
        assert _column_starts(line) == _column_starts(header[0])
    assert out.seen[-1][0].startswith(("faults scored", "pod level"))


def _column_starts(line: str) -> list[int]:
    """Where each column begins (columns are separated by two or more spaces)."""
    return [match.start() for match in re.finditer(r"(?:^|(?<=\s\s))\S", line)]


def test_bench_prints_the_floor_the_evaluation_and_their_cpu(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    label = json.dumps({"11": [{"inject_time": f"2023-01-30 11:51:0{i}", "inject_pod": POD,
                                "inject_type": "cpu_contention"} for i in range(3)]})
    day = _nezha_day(tmp_path, label=label)
    assert main(["bench", str(day), "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^parse CSVs \(pyarrow\): +\d+\.\d\d s for 1 files$", out, re.MULTILINE), out
    assert re.search(r"^evaluate \(cold\): +\d+\.\d\d s \(median of 3 after a warm-up: .*; 2 processes\)$", out, re.MULTILINE), out
    assert re.search(r"^CPU, all processes: +evaluate \d+\.\d\d s, parse \d+\.\d\d s$", out, re.MULTILINE), out


def test_cpu_seconds_counts_forked_workers() -> None:
    """A worker's CPU counts once it is reaped (a parallel evaluation is bounded by the sum)."""
    import multiprocessing
    import time

    from thinkfl_operator.evaluation.bench import cpu_seconds

    def burn() -> None:
        end = time.process_time() + 0.3
        while time.process_time() < end:
            pass

    before = cpu_seconds()
    worker = multiprocessing.get_context("fork").Process(target=burn)
    worker.start()
    worker.join()
    assert cpu_seconds() - before >= 0.25


#: Runs ``thinkfl`` in a fresh interpreter and prints what MIMALLOC_PURGE_DELAY was when
#: pyarrow was first imported (mimalloc reads it then), and the exit code.
ALLOCATOR_PROBE = """
import os, sys
seen = []
class Probe:
    def find_spec(self, name, path=None, target=None):
        if name == "pyarrow" and not seen:
            seen.append(os.environ.get("MIMALLOC_PURGE_DELAY", "unset"))
sys.meta_path.insert(0, Probe())
from thinkfl_operator.cli.main import main
code = main(sys.argv[1:])
print(seen[0] if seen else "pyarrow never imported", code)
"""


@pytest.mark.parametrize(("given", "seen"), [(None, "5000"), ("10", "10")])
def test_the_allocator_keeps_freed_pages_from_before_pyarrow_loads(given: str | None, seen: str,
                                                                   tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MIMALLOC_PURGE_DELAY"}
    if given is not None:
        env["MIMALLOC_PURGE_DELAY"] = given  # the user's own setting wins
    done = subprocess.run([sys.executable, "-c", ALLOCATOR_PROBE, "evaluate", str(tmp_path / "missing")],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.stdout.split() == [seen, "2"], done.stdout + done.stderr


def test_the_operator_gives_memory_back_as_mimalloc_does() -> None:
    from thinkfl_operator.cli.commands import COMMANDS
    from thinkfl_operator.cli.main import DELAYED_PURGE

    assert DELAYED_PURGE < set(COMMANDS) and "run" not in DELAYED_PURGE
