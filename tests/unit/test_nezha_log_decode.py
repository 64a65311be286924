"""Nezha log records decoded to lines: the fast reader (byte ranges of the usual record, the
first characters of the others) gives what the plain decoder (``_exact_lines``, the reader's
first form, kept here as ``_reference``) gives for every record, and the files merged in time
order give what a stable sort of all their lines gives."""

from __future__ import annotations

import csv
import json
import random
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from thinkfl_operator.telemetry.loglines import MAX_LINE_CHARS
from thinkfl_operator.telemetry.nezha_logs import (
    _DOCKER_LOG,
    _DOCKER_PREFIX,
    _DOCKER_SEPARATOR,
    _ESCAPES,
    _LINE_END,
    _WINDOW,
    NezhaLogs,
    _docker_lines,
    _exact_lines,
    _int_column,
)

T0 = 1_700_000_000.0
HEADER = ["Timestamp", "TimeUnixNano", "Node", "PodName", "Container", "TraceID", "SpanID", "Log"]
TAIL = '","stream":"stdout","time":"2023-01-29T09:03:00.123456789Z"}'


def _reference(records: Sequence[str | None]) -> tuple[list[str | None], int]:
    """The reader's first decoder, step by step on whole records (a copy of the column a step)."""
    column = pa.array(records, type=pa.string())
    docker = pc.starts_with(column, _DOCKER_PREFIX)
    head = pc.list_element(pc.split_pattern_regex(column, re.escape(_DOCKER_SEPARATOR), max_splits=1), 0)
    field = pc.utf8_slice_codeunits(head, len(_DOCKER_PREFIX))
    line = pc.if_else(pc.and_(docker, pc.not_equal(pc.binary_length(head), pc.binary_length(column))),
                      field, column)
    other = pc.and_(pc.invert(docker), pc.starts_with(pc.utf8_ltrim_whitespace(column), "{"))
    if pc.any(other).as_py():
        found = pc.struct_field(pc.extract_regex(column, _DOCKER_LOG), "line")
        line = pc.if_else(pc.and_(other, pc.is_valid(found)), found, line)
    line = pc.utf8_slice_codeunits(line, 0, MAX_LINE_CHARS + 64)
    for escaped, plain in _ESCAPES:
        line = pc.replace_substring(line, escaped, plain)
    line = pc.utf8_rtrim(line, characters="\r\n")
    long = pc.sum(pc.cast(pc.greater(pc.utf8_length(line), MAX_LINE_CHARS), pa.int64())).as_py() or 0
    return pc.utf8_slice_codeunits(line, 0, MAX_LINE_CHARS).to_pylist(), int(long)


def _docker(field: str, tail: str = TAIL) -> str:
    """A Docker record around an already escaped ``log`` field."""
    return _DOCKER_PREFIX + field + tail


def _decoded(records: Sequence[str | None], order: np.ndarray | None = None) -> tuple[list[str | None], int]:
    column = pa.array(records, type=pa.string())
    order = np.arange(len(records)) if order is None else order
    lines, long = _docker_lines(column, order)
    return lines.to_pylist(), long


def _same(records: Sequence[str | None]) -> None:
    expected, long = _reference(records)
    assert _decoded(records) == (expected, long)
    assert (_exact_lines(pa.array(records, type=pa.string()))[0].to_pylist(), long) == (expected, long)
    order = np.random.default_rng(len(records)).permutation(len(records))  # taken in any order
    assert _decoded(records, order) == ([expected[i] for i in order], long)


EDGE_CASES = [
    _docker("INFO plain line\\n"),
    _docker("no trailing newline"),
    _docker(""),
    _docker("\\n"),
    _docker("n"),  # one character before the separator: not an escaped newline
    _docker("x\\\\n"),  # an escaped backslash, then n
    _docker("quote \\\"q\\\" tab\\tslash \\/ back \\\\ end\\n"),
    _docker("escaped crlf\\r\\n"),
    _docker("raw cr\r\\n"),
    _docker("raw lf\n"),
    _docker("\\u003chtml\\u003e unicode é ü 中文\\n"),
    _docker("spliced", '","stream":"stdout","time":"x"}{"log":"second\\n' + TAIL),
    _docker("broken record without separator\\n"),
    _DOCKER_PREFIX,
    '{"log":","stream":"stdout"}',  # the separator starts in the opening
    _DOCKER_PREFIX + _DOCKER_SEPARATOR,
    "",
    "plain text, not Docker",
    "  plain text with a \\\"quote\\\" and \\n",
    '{"stream":"stdout","log":"other key order\\n","time":"x"}',
    '{ "log" : "spaces around\\ttab\\n", "stream": "stdout"}',
    '  {"log":"leading blanks\\n","stream":"stdout"}',
    '{"nolog": 1}',
    _docker("a" * (MAX_LINE_CHARS - 1) + "\\n"),
    _docker("a" * MAX_LINE_CHARS + "\\n"),
    _docker("a" * (MAX_LINE_CHARS + 1) + "\\n"),
    _docker("a" * (MAX_LINE_CHARS + 1)),
    _docker("\\\"" * (MAX_LINE_CHARS // 2 + 40) + "\\n"),  # long escaped, short unescaped
    _docker("é" * (MAX_LINE_CHARS + 100) + "\\n"),
    _docker("a" * 16_000 + "\\n"),
    _docker("b\\t" * 6_000 + "\\n"),
    _docker("中" * 9_000 + "\\n"),
    _docker("c" * 16_000, ""),  # no separator at all
    _docker("d" * 16_000, '","stream"'),  # a part of one only
    _docker("e" * (MAX_LINE_CHARS + 100) + "\r\r\r\\n"),
    _docker("f" * (MAX_LINE_CHARS - 2) + "\r\n\r\n\\n"),
    None,
]


@pytest.mark.parametrize("record", EDGE_CASES)
def test_each_edge_case_alone(record: str | None) -> None:
    _same([record])


def test_edge_cases_together() -> None:
    _same(EDGE_CASES)
    _same([r for r in EDGE_CASES if r is not None])  # no null: the fast path
    _same([r for r in EDGE_CASES if r is not None and r.startswith(_DOCKER_PREFIX)])


def test_a_separator_straddling_the_window_or_the_cut() -> None:
    """The separator starting at every character around ``_LINE_END`` and ``_WINDOW`` (where
    the first characters of a long record stop), after ASCII and after 2- and 4-byte
    characters, with and without a backslash before it, and with more record after it."""
    records = []
    for fill in ("a", "é", "😀", "a\\t"):
        for at in range(_LINE_END - 16, _WINDOW + 4):
            body = (fill * at)[: at - len(_DOCKER_PREFIX)]  # the separator starts at character `at`
            records.append(_DOCKER_PREFIX + body + TAIL)
            records.append(_DOCKER_PREFIX + body + TAIL + "x" * 300)
            records.append(_DOCKER_PREFIX + body[:-2] + "\\n" + TAIL)
    _same(records)


def test_random_records() -> None:
    """Records drawn from the pieces that matter (escapes, quotes, the separator, newlines,
    multi-byte characters), of every length up to twice the window."""
    pieces = ["a", "b", " ", "\\n", "\\t", '\\"', "\\/", "\\\\", "\\", '"', "n", "é", "中", "😀", "\r", "\n",
              _DOCKER_SEPARATOR, '","', "{", "}", "\\u003c"]
    rng = random.Random(7)
    records = []
    for i in range(3000):
        size = rng.choice([rng.randint(0, 40), rng.randint(0, 3 * MAX_LINE_CHARS)])
        body = "".join(rng.choice(pieces) if rng.random() < 0.3 else "x" for _ in range(size))
        kind = i % 5
        if kind == 0:
            records.append(body)
        elif kind == 1:
            records.append(_DOCKER_PREFIX + body)
        else:
            records.append(_docker(body + ("\\n" if kind == 2 else ""), rng.choice([TAIL, "", '","stream":"x'])))
    _same(records)


def test_times_read_as_the_plain_reader_reads_them() -> None:
    """Digits alone are cast at once; anything else (blanks, signs, too many digits, empty,
    null) through the check of the plain reader."""
    columns = [["1700000000000000000", "0", "007", "1234567890123456789"],
               ["1700000000000000000", " 5 ", "x", ""],
               ["-5", "5"], ["+5"], ["00000000000000000001"], [None, "1"], ["１２"], []]
    for values in columns:
        column = pa.chunked_array([pa.array(values, type=pa.string())])
        text = pc.utf8_trim_whitespace(column)
        expected = pc.cast(pc.if_else(pc.match_substring_regex(text, r"^\d{1,19}$"), text, None), pa.int64())
        assert _int_column(column).equals(expected), values


def _write(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)


def _row(t_ns: int | str, pod: str, record: str, trace: str = "") -> list[str]:
    return ["", str(t_ns), "n1", pod, "server", trace, "", record]


def _expected(files: list[list[list[str]]]) -> pd.DataFrame:
    """All the files' lines in file order, rows without a time dropped (a file with one has its
    times through float64), repeats of (time, pod, line) dropped, then a stable sort by time."""
    frames = []
    for rows in files:
        times = pd.to_numeric(pd.Series([r[1] for r in rows]), errors="coerce")
        if times.isna().any():
            times = times.astype("float64")
        lines, _ = _reference([r[7] for r in rows])
        frame = pd.DataFrame({"time_ns": times, "pod": [r[3] for r in rows], "line": lines,
                              "trace_id": [r[5] for r in rows]}).dropna(subset=["time_ns"])
        frames.append(frame.assign(time_ns=frame["time_ns"].astype("int64")))
    merged = pd.concat(frames, ignore_index=True)
    merged = merged[~merged.duplicated(["time_ns", "pod", "line"], keep="first")]
    return merged.sort_values("time_ns", kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("later_first", [False, True])
def test_files_merged_as_a_stable_sort_of_all_lines(tmp_path: Path, later_first: bool) -> None:
    """Unsorted rows, ties within and across files, a repeat of an overlapping file kept once
    (the first file's row, whose trace differs), a row without a time, long and escaped lines;
    the files read in one call (one concatenation) or later ones first (one take)."""
    folder = tmp_path / "day" / "log"
    folder.mkdir(parents=True)
    t = int(T0 * 1e9)
    first = [_row(t + 5, "a-1-x", _docker("five\\n")), _row(t + 1, "a-1-x", _docker("one \\\"q\\\"\\n")),
             _row(t + 5, "b-1-x", _docker("five b\\n")), _row(t + 3, "a-1-x", _docker("x" * 5000 + "\\n")),
             _row(t + 9, "a-1-x", _docker("nine\\n"), trace="first")]
    second = [_row(t + 12, "a-1-x", "plain"), _row(t + 10, "b-1-x", _docker("ten\\n")),
              _row("notatime", "a-1-x", _docker("no time\\n")), _row(t + 10, "a-1-x", _docker("ten a\\ttab\\n"))]
    third = [_row(t + 20, "a-1-x", _docker("twenty\\n")), _row(t + 15, "c-1-x", _docker("fifteen\\n")),
             _row(t + 9, "a-1-x", _docker("nine\\n"), trace="third")]
    for name, rows in (("09_01_log.csv", first), ("09_02_log.csv", second), ("09_03_log.csv", third)):
        _write(folder / name, rows)
    source = NezhaLogs(folder)
    files = sorted(folder.glob("*.csv"))
    if later_first:
        source._ensure_loaded(files[1:])
        source._ensure_loaded(files)
    else:
        source._ensure_loaded(files)
    expected = _expected([second, third, first] if later_first else [first, second, third])
    got = source._lines
    assert list(got.columns) == ["time_ns", "pod", "service", "line", "trace_id", "span_id"]
    assert got["time_ns"].tolist() == expected["time_ns"].tolist()
    assert got["line"].tolist() == expected["line"].tolist()
    assert got["pod"].tolist() == expected["pod"].tolist()
    assert got["trace_id"].tolist() == expected["trace_id"].tolist()
    assert source._table is not None and all(c.num_chunks == 1 for c in source._table.columns)
    skipped = dict(source.quality.skipped)
    assert skipped["repeated log lines"] == 1
    assert skipped["log rows without a time"] == 1
    assert skipped[f"characters past {MAX_LINE_CHARS} of long log lines (lines cut)"] == 1


def test_empty_files(tmp_path: Path) -> None:
    folder = tmp_path / "day" / "log"
    folder.mkdir(parents=True)
    _write(folder / "09_01_log.csv", [])
    (folder / "09_02_log.csv").write_text(",".join(HEADER) + "\n")
    source = NezhaLogs(folder)
    source._ensure_loaded(sorted(folder.glob("*.csv")))
    assert source._lines.empty and list(source._lines.columns)[:4] == ["time_ns", "pod", "service", "line"]


def test_a_record_in_json_is_one_line() -> None:
    record = json.dumps({"log": 'say "hi"\tthere\n', "stream": "stdout", "time": "x"})
    assert _decoded([record]) == (['say "hi"\tthere'], 0)
