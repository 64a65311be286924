"""The Nezha ``log/`` folder: per-minute CSVs of Docker json-file records, as log lines.

``HH_MM_log.csv`` has ``Timestamp,TimeUnixNano,Node,PodName,Container,TraceID,SpanID,Log``;
``Log`` is the Docker record (``{"log": "<line>\\n", "stream": …, "time": …}``). The same rules
as for trace files hold: file names only hint at which files may hold a time range, lines are
picked by their own ``TimeUnixNano``, repeated lines of overlapping files are kept once, and
broken rows (a record spliced into another, a time that is not a number) are skipped and
counted, never fatal. A file covers the runs of its lines' times (a stray line hours away from
the rest does not make the file "cover" those hours), so rates are computed over real coverage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from thinkfl_operator.core.errors import DatasetError
from thinkfl_operator.telemetry.csvio import THREADS, header_names
from thinkfl_operator.telemetry.loglines import (
    MAX_LINE_CHARS,
    LogBatch,
    batch_between,
    empty_lines,
    merge_coverage,
)
from thinkfl_operator.telemetry.minutefiles import files_near, folder_day
from thinkfl_operator.telemetry.naming import service_of_pod
from thinkfl_operator.telemetry.quality import DataQuality

REQUIRED = ("TimeUnixNano", "PodName", "Log")
_TEXT = ("Timestamp", "Node", "PodName", "Container", "TraceID", "SpanID", "Log")
#: The columns a line is made of (the rest of a record is not read into memory).
_USED = ("TimeUnixNano", "PodName", "TraceID", "SpanID", "Log")
#: A minute file with more lines than this is a flood, left out whole (memory stays bounded).
MAX_FILE_LINES = 500_000
#: Lines further apart than this split a file's coverage into separate runs (seconds).
_RUN_GAP_S = 30.0
#: A run of fewer lines than this is a stray row, not coverage.
_MIN_RUN_LINES = 10
#: How Docker's json-file driver opens a record and ends its ``log`` field.
_DOCKER_PREFIX = '{"log":"'
_DOCKER_SEPARATOR = '","stream":"'
#: The ``log`` field of any JSON record (escapes kept, undone after).
_DOCKER_LOG = r'"log"\s*:\s*"(?P<line>(?:[^"\\]|\\.)*)"'
_ESCAPES = (("\\n", "\n"), ("\\t", "\t"), ('\\"', '"'), ("\\/", "/"), ("\\\\", "\\"))


def has_logs(day: Path) -> bool:
    return (day / "log").is_dir() and any((day / "log").glob("*.csv"))


class NezhaLogs:
    """A ``LogSource`` over one day's ``log/`` folder (files read lazily, then kept)."""

    name = "nezha logs"

    def __init__(self, folder: Path, quality: DataQuality | None = None,
                 max_file_lines: int = MAX_FILE_LINES) -> None:
        self.folder = folder
        self.max_file_lines = max_file_lines
        self.quality = quality if quality is not None else DataQuality()
        self._files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
        self._day = folder_day(folder.parent)
        self._loaded: set[Path] = set()
        self._table: pa.Table | None = None
        self._lines = empty_lines()
        self._coverage: tuple[tuple[float, float], ...] = ()

    def logs(self, start_s: float, end_s: float, services: Sequence[str] = ()) -> LogBatch:
        self._ensure_loaded(self._files_for(start_s, end_s))
        return batch_between(self._lines, self._coverage, start_s, end_s, services)

    # files -------------------------------------------------------------------------------
    def _files_for(self, start_s: float, end_s: float) -> list[Path]:
        return files_near(self._files, self._day, "_log.csv", start_s, end_s)

    def _ensure_loaded(self, paths: list[Path]) -> None:
        """Read the files not read yet and merge them into the kept lines, in Arrow (one take
        of the whole day: pandas' per-column filters and sorts of long text columns cost more
        than reading them); the pandas frame is made once from the result."""
        new = [p for p in paths if p not in self._loaded]
        if not new:
            return
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            read = list(pool.map(self._read, new))
        tables, runs = [] if self._table is None else [self._table], list(self._coverage)
        for table, quality in read:
            self.quality.merge(quality)
            if table is not None:
                runs += _runs(table.column("time_ns").to_numpy())
                tables.append(table)
        self._loaded.update(new)
        self._coverage = merge_coverage(runs)
        if not tables:
            return
        merged = pa.concat_tables(tables).combine_chunks()
        times = merged.column("time_ns").to_numpy()
        repeated = _repeated(times, merged)
        self.quality.add("repeated log lines", int(repeated.sum()))
        kept = np.flatnonzero(~repeated)
        self._table = merged.take(kept[np.argsort(times[kept], kind="stable")])
        self._lines = self._table.to_pandas()

    def _read(self, path: Path) -> tuple[pa.Table | None, DataQuality]:
        """One file's lines, and what was skipped in it (a tally of its own: files are read
        in parallel)."""
        quality = DataQuality()
        return self._lines_of(path, quality), quality

    def _lines_of(self, path: Path, quality: DataQuality) -> pa.Table | None:
        """The file's lines as a table of ``LINE_COLUMNS`` (None when the file is left out)."""
        table = _read_csv(path, quality, self.max_file_lines)
        if table is None:
            return None
        times = _int_column(table.column("TimeUnixNano"))
        line = _docker_lines(table.column("Log"))
        long = pc.sum(pc.cast(pc.greater(pc.utf8_length(line), MAX_LINE_CHARS), pa.int64())).as_py() or 0
        quality.add(f"characters past {MAX_LINE_CHARS} of long log lines (lines cut)", int(long))
        line = pc.utf8_slice_codeunits(line, 0, MAX_LINE_CHARS)
        keep = pc.and_(pc.is_valid(times), pc.is_valid(line))
        kept = pc.sum(pc.cast(keep, pa.int64())).as_py() or 0
        quality.add("log rows without a time", len(table) - int(kept))
        if times.null_count:
            # As the reader always did (through a float64 numpy column): a file with a row
            # without a time has its times rounded to float64 (up to 128 ns off), so its lines
            # never match the same lines of an overlapping file as repeats. Kept so that
            # answers stay the same; exact times change 2023-01-30's ranking (121 more repeats).
            times = pc.cast(pc.cast(times, pa.float64(), safe=False), pa.int64())
        pods = pc.dictionary_encode(_text(table, "PodName"))
        services = pa.array([service_of_pod(p) for p in pods.dictionary.to_pylist()], type=pa.string())
        return pa.table({
            "time_ns": pc.cast(times, pa.int64()),
            "pod": pods.dictionary.take(pods.indices),
            "service": services.take(pods.indices),
            "line": line,
            "trace_id": _text(table, "TraceID"),
            "span_id": _text(table, "SpanID"),
        }).filter(keep)


def _repeated(times: np.ndarray, lines: pa.Table) -> np.ndarray:
    """Which lines repeat an earlier one of the same time, pod and text (pandas'
    ``duplicated(keep="first")``), compared only among the lines that share their time with
    another (the others cannot repeat): overlapping files repeat a few thousand lines a day."""
    order = np.argsort(times, kind="stable")
    same = times[order][1:] == times[order][:-1]
    shared = np.zeros(len(times), dtype=bool)
    shared[order] = np.r_[same, False] | np.r_[False, same]
    rows = np.flatnonzero(shared)
    repeated = np.zeros(len(times), dtype=bool)
    if len(rows):
        part = pd.DataFrame({"time_ns": times[rows],
                             "pod": np.asarray(lines.column("pod").take(rows).to_pylist(), dtype=object),
                             "line": np.asarray(lines.column("line").take(rows).to_pylist(), dtype=object)})
        repeated[rows] = part.duplicated(keep="first").to_numpy()
    return repeated


def _read_csv(path: Path, quality: DataQuality, max_lines: int) -> pa.Table | None:
    """The file streamed in blocks with broken rows (wrong column count) skipped and counted;
    None (and a note) when it holds more than ``max_lines`` rows: a flood is left out whole,
    since a part of it would fake the rates, and reading it whole would cost unbounded memory."""
    names = header_names(path, REQUIRED)
    broken = 0

    def skip(_row: pacsv.InvalidRow) -> str:
        nonlocal broken
        broken += 1
        return "skip"

    types = {c: pa.string() for c in names}
    # only the columns lines are made of are converted (the parser still checks every row's fields)
    used = [c for c in _USED if c in names]
    batches, rows = [], 0
    try:
        reader = pacsv.open_csv(path, parse_options=pacsv.ParseOptions(invalid_row_handler=skip),
                                convert_options=pacsv.ConvertOptions(column_types=types, include_columns=used),
                                read_options=pacsv.ReadOptions(block_size=1 << 22))
        for batch in reader:
            rows += batch.num_rows
            if rows > max_lines:
                reader.close()
                quality.add(f"log files with more than {max_lines} lines (left out: {path.name})")
                return None
            batches.append(batch)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DatasetError(path, f"malformed CSV: {str(exc).splitlines()[0]}") from None
    quality.add("broken log rows (wrong number of fields)", broken)
    return pa.Table.from_batches(batches, schema=reader.schema)


def _int_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Text to int64, null where it is not a whole number."""
    text = pc.utf8_trim_whitespace(column)
    ok = pc.match_substring_regex(text, r"^\d{1,19}$")
    return pc.cast(pc.if_else(ok, text, None), pa.int64())


def _docker_lines(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The ``log`` field of each Docker record, unescaped, without its trailing newline; a
    value that is not a Docker record is taken as the line itself.

    Docker writes ``{"log":"…","stream":"…","time":"…"}`` with ``log`` first, so the field is
    what lies between the opening ``{"log":"`` and the first ``","stream":"`` (a quote inside
    the line is escaped, so that separator cannot occur in it): a split at a literal."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    docker = pc.starts_with(column, _DOCKER_PREFIX)
    # split_pattern_regex with a literal: measured 15x faster than pyarrow 26's split_pattern here
    head = pc.list_element(pc.split_pattern_regex(column, re.escape(_DOCKER_SEPARATOR), max_splits=1), 0)
    field = pc.utf8_slice_codeunits(head, len(_DOCKER_PREFIX))
    # head is a prefix of the record: a split happened when their byte lengths differ (free
    # from the offsets; utf8_length walks every character)
    line = pc.if_else(pc.and_(docker, pc.not_equal(pc.binary_length(head), pc.binary_length(column))),
                      field, column)
    other = pc.and_(pc.invert(docker), pc.starts_with(pc.utf8_ltrim_whitespace(column), "{"))
    if pc.any(other).as_py():  # JSON written with spaces or other key order: the slow path
        found = pc.struct_field(pc.extract_regex(column, _DOCKER_LOG), "line")
        line = pc.if_else(pc.and_(other, pc.is_valid(found)), found, line)
    line = pc.utf8_slice_codeunits(line, 0, MAX_LINE_CHARS + 64)  # escapes shrink when undone
    for escaped, plain in _ESCAPES:
        line = pc.replace_substring(line, escaped, plain)
    return pc.utf8_rtrim(line, characters="\r\n")


def _text(table: pa.Table, name: str) -> pa.Array:
    """A text column, "" where missing (and for every row when the file has no such column)."""
    if name not in table.column_names:
        return pa.array([""] * len(table), type=pa.string())
    return pc.fill_null(table.column(name), "").combine_chunks()


def _runs(times_ns: np.ndarray) -> list[tuple[float, float]]:
    """The time runs a file covers: its sorted line times split at gaps, stray lines dropped."""
    if len(times_ns) == 0:
        return []
    t = np.sort(times_ns.astype("float64") / 1e9)
    cuts = np.flatnonzero(np.diff(t) > _RUN_GAP_S) + 1
    out = []
    for part in np.split(t, cuts):
        if len(part) >= _MIN_RUN_LINES:
            out.append((float(part[0]), float(part[-1])))
    return out
