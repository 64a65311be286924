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

import itertools
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
#: The separator as bytes.
_SEPARATOR = np.frombuffer(_DOCKER_SEPARATOR.encode(), dtype=np.uint8)
#: Where a line is cut in its record (characters) before it is unescaped: escapes shrink.
_LINE_END = len(_DOCKER_PREFIX) + MAX_LINE_CHARS + 64
#: A Docker record's first characters that decide its line (a separator found in them starts
#: before ``_LINE_END``; one straddling their end starts at or past it).
_WINDOW = _LINE_END + len(_DOCKER_SEPARATOR) - 1
#: The last bytes of a long record where its separator is looked for first.
_TAIL_BYTES = 256
_STRING = pa.string()
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
        self._services: dict[str, str] = {}

    def logs(self, start_s: float, end_s: float, services: Sequence[str] = ()) -> LogBatch:
        self._ensure_loaded(self._files_for(start_s, end_s))
        return batch_between(self._lines, self._coverage, start_s, end_s, services)

    # files -------------------------------------------------------------------------------
    def _files_for(self, start_s: float, end_s: float) -> list[Path]:
        return files_near(self._files, self._day, "_log.csv", start_s, end_s)

    def _ensure_loaded(self, paths: list[Path]) -> None:
        """Read the files not read yet and merge them into the kept lines, in Arrow; the pandas
        frame is made once from the result. Each file's lines come sorted by time, so when the
        files follow each other in time (minute files do) the merge is one concatenation of
        the lines not repeated; else one take in time order (both what a stable sort of all
        the lines gives)."""
        new = [p for p in paths if p not in self._loaded]
        if not new:
            return
        # two runs of files a thread (one that ends early leaves less of the rest to the other)
        groups = _groups(new, 2 * THREADS if THREADS > 1 else 1)
        if len(groups) == 1:
            read = [self._read_group(groups[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(THREADS, len(groups))) as pool:
                read = list(pool.map(self._read_group, groups))
        tables = [] if self._table is None else [self._table.drop_columns(["service"])]
        runs = list(self._coverage)
        for table, sizes, quality in read:
            self.quality.merge(quality)
            if table is not None:
                runs += _file_runs(table.column("time_ns").to_numpy(), sizes)
                tables.append(table)
        del read
        self._loaded.update(new)
        self._coverage = merge_coverage(runs)
        if not tables:
            return
        tables = _same_pods(tables)
        merged = pa.concat_tables(tables)
        times = merged.column("time_ns").to_numpy()
        repeated = _repeated(times, merged)
        self.quality.add("repeated log lines", int(repeated.sum()))
        kept = np.flatnonzero(~repeated)
        order = kept[np.argsort(times[kept], kind="stable")]
        del merged
        if np.all(order[1:] > order[:-1]):  # already in time order: the kept rows, one copy
            parts, start = [], 0
            for table in tables:
                keep = ~repeated[start:start + len(table)]
                parts.append(table if keep.all() else table.filter(pa.array(keep)))
                start += len(table)
            tables = parts
            table = _one_chunk(pa.concat_tables(tables))
        else:
            table = _one_chunk(pa.concat_tables(tables).take(pa.array(order)))
        del tables
        self._table = self._with_services(table)
        self._lines = self._table.to_pandas()

    def _with_services(self, table: pa.Table) -> pa.Table:
        """The lines (one chunk a column) with their pods' dictionary cut to the pods they
        name and each line's service (``service_of_pod``) beside its pod: both dictionary
        columns whose values are the distinct ones, sorted, so pandas makes each the
        categorical ``astype("category")`` makes of its text (same categories, same codes)."""
        pod = table.column("pod").chunk(0)
        codes = pod.indices.to_numpy(zero_copy_only=False)
        used = np.flatnonzero(np.bincount(codes, minlength=len(pod.dictionary)))
        rank = np.zeros(len(pod.dictionary), dtype=np.int32)
        rank[used] = np.arange(len(used), dtype=np.int32)
        names = pod.dictionary.take(pa.array(used, type=pa.int64()))
        services = [self._service(name) for name in names.to_pylist()]
        distinct = sorted(set(services))
        number = {service: i for i, service in enumerate(distinct)}
        pod_codes = rank[codes]
        service_codes = np.array([number[s] for s in services], dtype=np.int32)[pod_codes]
        columns = {name: table.column(name) for name in table.column_names}
        columns["pod"] = pa.chunked_array([pa.DictionaryArray.from_arrays(pa.array(pod_codes), names)])
        columns["service"] = pa.chunked_array([pa.DictionaryArray.from_arrays(
            pa.array(service_codes), pa.array(distinct, type=pa.string()))])
        return pa.table({name: columns[name] for name in ("time_ns", "pod", "service", "line", "trace_id", "span_id")})

    def _read_group(self, paths: list[Path]) -> tuple[pa.Table | None, list[int], DataQuality]:
        """The lines of some files, each file's in time order (a stable sort: lines of the
        same time stay in file order), one file's after the other's, as one table of
        ``LINE_COLUMNS`` but ``service`` (added when the lines are merged), the pods a
        dictionary column; how many lines each file read gave (a file left out: none, and no
        entry); and what was skipped (a tally of the group's own: groups are read in
        parallel). None when every file is left out.

        Each file is parsed and its lines chosen and ordered alone; their records are decoded
        together (``_docker_lines`` once, not once a file: its cost is mostly per call). That
        is what decoding each file gives: a record's line depends on that record alone (the
        scans and cuts stop at its end, and a pass skipped for all the records changes none of
        them), so the lines of the joined records are the files' lines, joined."""
        quality = DataQuality()
        parts: list[_FileRows] = []
        for path in paths:
            table = _read_csv(path, quality, self.max_file_lines)
            if table is not None:
                parts.append(_file_rows(table, quality))
        if not parts:
            return None, [], quality
        tables = [self._lines_of(batch, quality) for batch in _batches(parts)]
        return (tables[0] if len(tables) == 1 else pa.concat_tables(tables)), [len(p.order) for p in parts], quality

    def _lines_of(self, parts: list[_FileRows], quality: DataQuality) -> pa.Table:
        """The lines of ``parts`` (files' chosen rows, in their order), one file's after the
        other's: each column joined over the files, then taken at the chosen rows."""
        records = _joined([p.records for p in parts])
        starts = np.cumsum([0, *(len(p.records) for p in parts)])
        order = np.concatenate([p.order + start for p, start in zip(parts, starts, strict=False)])
        line, long = _docker_lines(records, order)
        quality.add(f"characters past {MAX_LINE_CHARS} of long log lines (lines cut)", long)
        pods = pc.dictionary_encode(_joined([_text(p.table, "PodName") for p in parts]))
        index = pa.array(order)
        return pa.table({
            "time_ns": pa.array(np.concatenate([p.stamps[p.order] for p in parts])),
            "pod": pa.DictionaryArray.from_arrays(pods.indices.take(index), pods.dictionary),
            "line": line,
            "trace_id": _joined([_text(p.table, "TraceID") for p in parts]).take(index),
            "span_id": _joined([_text(p.table, "SpanID") for p in parts]).take(index),
        })

    def _service(self, pod: str) -> str:
        """``service_of_pod``, worked out once per pod (each minute file names the same pods)."""
        service = self._services.get(pod)
        if service is None:
            service = self._services[pod] = service_of_pod(pod)
        return service


@dataclass(frozen=True)
class _FileRows:
    """One file's parsed columns and which of its rows are lines, in what order."""

    table: pa.Table
    records: pa.Array  # the Log column in one chunk
    stamps: np.ndarray  # each row's time (0 where it has none)
    order: np.ndarray  # the rows kept (a time and a record), by time, stably


def _file_rows(table: pa.Table, quality: DataQuality) -> _FileRows:
    """Which rows of a parsed file are lines (a time and a record) and their time order (a
    stable sort: lines of the same time stay in file order)."""
    times = _int_column(table.column("TimeUnixNano"))
    log = table.column("Log")
    records = log.chunk(0) if log.num_chunks == 1 else log.combine_chunks()
    keep = np.asarray(pc.and_(pc.is_valid(times), pc.is_valid(records)).to_numpy(zero_copy_only=False))
    if times.null_count:
        # As the reader always did (through a float64 numpy column): a file with a row
        # without a time has its times rounded to float64 (up to 128 ns off), so its lines
        # never match the same lines of an overlapping file as repeats. Kept so that
        # answers stay the same; exact times change 2023-01-30's ranking (121 more repeats).
        times = pc.cast(pc.cast(times, pa.float64(), safe=False), pa.int64())
    stamps = pc.fill_null(times, 0).to_numpy()
    rows = np.flatnonzero(keep)
    quality.add("log rows without a time", len(table) - len(rows))
    return _FileRows(table, records, stamps, rows[np.argsort(stamps[rows], kind="stable")])


def _groups(paths: list[Path], n: int) -> list[list[Path]]:
    """``paths`` cut into at most ``n`` runs of about the same bytes (files in order)."""
    if n <= 1 or len(paths) <= 1:
        return [paths]
    sizes = np.cumsum([_size(p) for p in paths])
    cuts = np.searchsorted(sizes, sizes[-1] * np.arange(1, n) / n, side="right")
    bounds = sorted({0, *cuts.tolist(), len(paths)})
    return [paths[lo:hi] for lo, hi in itertools.pairwise(bounds) if hi > lo]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


#: Most bytes of records decoded at once (a joined text column's offsets are 32-bit).
_BATCH_BYTES = 1 << 30


def _batches(parts: list[_FileRows]) -> list[list[_FileRows]]:
    """``parts`` in runs (in order) whose records, and texts, fit one text column each."""
    out: list[list[_FileRows]] = []
    total = 0
    for part in parts:
        size = part.table.nbytes  # the records' bytes and more
        if not out or total + size > _BATCH_BYTES:
            out.append([])
            total = 0
        out[-1].append(part)
        total += size
    return out


def _joined(arrays: list[pa.Array]) -> pa.Array:
    """The arrays one after the other (the one itself when alone: no copy)."""
    return arrays[0] if len(arrays) == 1 else pa.concat_arrays(arrays)


def _same_pods(tables: list[pa.Table]) -> list[pa.Table]:
    """The tables with their pod columns over one dictionary (every pod any of them names,
    sorted): the codes of equal pods are equal, in every chunk."""
    chunks = [chunk for table in tables for chunk in table.column("pod").chunks]
    names = sorted({name for chunk in chunks for name in chunk.dictionary.to_pylist()})
    dictionary = pa.array(names, type=pa.string())
    number = {name: i for i, name in enumerate(names)}
    out = []
    for table in tables:
        column = pa.chunked_array([pa.DictionaryArray.from_arrays(
            pa.array(np.array([number[v] for v in chunk.dictionary.to_pylist()], dtype=np.int32)[
                chunk.indices.to_numpy(zero_copy_only=False)]), dictionary) for chunk in table.column("pod").chunks],
            type=pa.dictionary(pa.int32(), pa.string()))
        out.append(table.set_column(table.column_names.index("pod"), "pod", column))
    return out


def _one_chunk(table: pa.Table) -> pa.Table:
    """The table with each column in one chunk (a column already so is not copied)."""
    return pa.table({name: column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
                     for name, column in zip(table.column_names, table.columns)})


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
        # the texts as the codes of their distinct values (equal texts, equal codes; a null its own)
        pods, texts = (pc.dictionary_encode(_taken(lines.column(c), rows), null_encoding="encode").indices
                       for c in ("pod", "line"))
        part = pd.DataFrame({"time_ns": times[rows], "pod": pods.to_numpy(zero_copy_only=False),
                             "line": texts.to_numpy(zero_copy_only=False)})
        repeated[rows] = part.duplicated(keep="first").to_numpy()
    return repeated


def _taken(column: pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    """``column[rows]`` (rows ascending) taken chunk by chunk: a take of a chunked column joins
    its chunks first, a copy of the whole column."""
    parts, start = [], 0
    for chunk in column.chunks:
        mine = rows[(rows >= start) & (rows < start + len(chunk))] - start
        if len(mine):
            parts.append(chunk.take(pa.array(mine)))
        start += len(chunk)
    return pa.concat_arrays(parts) if parts else pa.array([], type=column.type)


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
    """Text to int64, null where it is not a whole number (up to 19 digits, blanks around it
    allowed). Digits alone, the usual column, are cast at once."""
    if len(column) and not column.null_count and _longest(column) <= 19 and not any(
            chunk.buffers()[2] is None or (np.frombuffer(chunk.buffers()[2], dtype=np.uint8) == ord("-")).any()
            for chunk in column.chunks):
        try:  # every value parses, with no sign: each is 1 to 19 digits (the parser takes no blank)
            return pc.cast(column, pa.int64())
        except pa.ArrowInvalid:
            pass
    text = pc.utf8_trim_whitespace(column)
    ok = pc.match_substring_regex(text, r"^\d{1,19}$")
    return pc.cast(pc.if_else(ok, text, None), pa.int64())


def _docker_lines(records: pa.Array, order: np.ndarray) -> tuple[pa.Array, int]:
    """The line of the records at ``order`` (in that order), and how many of all the records
    have a line longer than ``MAX_LINE_CHARS`` (cut). ``_exact_lines`` says what a record's
    line is; this is it without its cost for the usual record: a Docker record whose line
    holds no escape but the trailing ``\\n`` and fits ``MAX_LINE_CHARS`` is that line as it
    lies in the record, found by two scans (the line's first backslash and first quote, each
    one byte RE2 skips to with memchr) and copied once, in order. The other records (escapes,
    long lines, no separator, not Docker) go through ``_exact_lines``'s steps on their first
    ``_WINDOW`` characters only (``_slow_lines``) and are put in place."""
    n = len(records)
    data_buf = records.buffers()[2] if n and pa.types.is_string(records.type) else None
    if records.null_count or data_buf is None or data_buf.size == 0:
        lines, long = _exact_lines(records)
        return lines.take(pa.array(order)), long
    offsets = _offsets(records)
    data = np.frombuffer(data_buf, dtype=np.uint8)
    begin, end = offsets[:-1], offsets[1:]
    docker = pc.starts_with(records, _DOCKER_PREFIX).to_numpy(zero_copy_only=False)
    body = np.where(docker, begin + len(_DOCKER_PREFIX), begin)
    # every record from its line on, up to the next record's line (a view, no copy); a find
    # past the record's end is not in the record
    rest = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(np.append(body, end[-1]).astype(np.int32)),
                                                  data_buf])
    slash = body + pc.find_substring_regex(rest, r"\\").to_numpy()
    quote = body + pc.find_substring_regex(rest, '"').to_numpy()
    # a Docker line ends at its first unescaped quote, where the separator starts; it holds no
    # backslash before that quote but that of an escaped newline just before it
    found = np.flatnonzero(docker & (quote >= body))
    sep = np.zeros(n, dtype=bool)
    sep[found] = _separated(data, quote[found]) & (quote[found] + len(_SEPARATOR) <= end[found])
    newline = ((slash >= body) & (slash == quote - 2)
               & (data[np.minimum(slash + 1, len(data) - 1)] == ord("n")))
    stop = np.where(newline, slash, quote)
    last = data[np.maximum(stop - 1, 0)]
    fast = (sep & (newline | (slash < body) | (slash > quote)) & (stop - body <= MAX_LINE_CHARS)
            & ((stop == body) | ((last != ord("\n")) & (last != ord("\r")))))
    lines = _ranges(data_buf, np.where(fast, body, begin), np.where(fast, stop, begin), order)
    slow = np.flatnonzero(~fast)
    if not len(slow):
        return lines, 0
    done, long = _slow_lines(records, slow, docker, sep)
    hole = ~fast[order]
    if hole.any():
        lines = pc.replace_with_mask(lines, pa.array(hole), done.take(pa.array(np.searchsorted(slow, order[hole]))))
    return lines, long


def _separated(data: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Whether ``_DOCKER_SEPARATOR`` lies in ``data`` at each position (False where it would
    run past the end), read as three 4-byte words (a view of ``data`` with a word at each
    byte)."""
    ok = at <= len(data) - len(_SEPARATOR)
    if len(data) < len(_SEPARATOR):
        return ok
    words = np.ndarray((len(data) - 3,), dtype=np.uint32, buffer=data, strides=(1,))
    at = np.where(ok, at, 0)
    for j, word in enumerate(_SEPARATOR.view(np.uint32)):
        ok &= words[at + 4 * j] == word
    return ok


def _slow_lines(records: pa.Array, rows: np.ndarray, docker: np.ndarray, sep: np.ndarray) -> tuple[pa.Array, int]:
    """``_exact_lines`` of ``rows`` (ascending), and how many are long. A Docker record's line
    depends only on its first ``_WINDOW`` characters and on whether it holds a separator at
    all (``sep``: known to), so a long record is not copied whole: see ``_cut_lines``."""
    plain, dock = rows[~docker[rows]], rows[docker[rows]]
    parts, order, long = [], [], 0
    if len(plain):
        lines, cut = _exact_lines(records.take(pa.array(plain)))
        parts.append(lines)
        order.append(plain)
        long += cut
    if len(dock):
        lines, cut = _finish(_cut_lines(records, dock, sep[dock]))
        parts.append(lines)
        order.append(dock)
        long += cut
    if len(parts) == 1:
        return parts[0], long
    return pa.concat_arrays(parts).take(pa.array(np.argsort(np.concatenate(order), kind="stable"))), long


def _cut_lines(records: pa.Array, rows: np.ndarray, later: np.ndarray) -> pa.Array:
    """The escaped line of the Docker records at ``rows`` (cut at ``_LINE_END``), as
    ``_exact_lines`` finds it in the whole record, from the record's first ``_WINDOW``
    characters (its window) and whether it holds a separator (``later``: known to; else
    looked for). A separator found in the window is the record's first one and starts before
    ``_LINE_END``: the line ends there. None found: the first one starts at or after
    ``_LINE_END`` (one straddling the window's end starts past it), so the line is cut at
    ``_LINE_END``; with no separator at all, the record itself is the line (cut after)."""
    data_buf = records.buffers()[2]
    data = np.frombuffer(data_buf, dtype=np.uint8)
    offsets = _offsets(records)
    begin, end = offsets[rows], offsets[rows + 1]
    # _WINDOW bytes (back to a character's start) are _WINDOW characters when they are ASCII
    stop = _char_start(data, np.minimum(end, begin + _WINDOW), end)
    whole = stop == end
    window = _ranges(data_buf, begin, stop)
    at = pc.find_substring_regex(window, re.escape(_DOCKER_SEPARATOR)).to_numpy()
    ask = np.flatnonzero(~whole & (at < 0) & ~later)
    if len(ask):  # Docker ends a record with its stream and time: a separator is in its last bytes
        tail = np.maximum(end[ask] - _TAIL_BYTES, stop[ask] - len(_DOCKER_SEPARATOR) + 1)
        hit = pc.match_substring(_ranges(data_buf, tail, end[ask], kind=pa.binary()),
                                 _DOCKER_SEPARATOR).to_numpy(zero_copy_only=False)
        rest = ask[~hit]
        if len(rest):
            hit[~hit] = pc.match_substring(
                _ranges(data_buf, stop[rest] - len(_DOCKER_SEPARATOR) + 1, end[rest], kind=pa.binary()),
                _DOCKER_SEPARATOR).to_numpy(zero_copy_only=False)
        later = later.copy()
        later[ask] = hit
    start = np.where((at >= 0) | (~whole & later), len(_DOCKER_PREFIX), 0)
    cut = np.where(later, _LINE_END, _LINE_END - len(_DOCKER_PREFIX))
    length = np.where(at >= 0, np.maximum(at, len(_DOCKER_PREFIX)), np.where(whole, stop - begin, cut))
    wide = np.flatnonzero((at < 0) & ~whole & ~pc.string_is_ascii(window).to_numpy(zero_copy_only=False))
    lines = _ranges(data_buf, begin + start, begin + length)
    if not len(wide):
        return lines
    # a window of fewer than _WINDOW characters: the window of 4 bytes a character, cut
    stop = _char_start(data, np.minimum(end[wide], begin[wide] + 4 * _WINDOW + 3), end[wide])
    window = pc.utf8_slice_codeunits(_ranges(data_buf, begin[wide], stop), 0, _WINDOW)
    head = pc.list_element(pc.split_pattern_regex(window, re.escape(_DOCKER_SEPARATOR), max_splits=1), 0)
    split = pc.not_equal(pc.binary_length(head), pc.binary_length(window))
    line = pc.if_else(pc.or_(split, pa.array(later[wide])),
                      pc.utf8_slice_codeunits(head, len(_DOCKER_PREFIX), _LINE_END), head)
    mask = np.zeros(len(rows), dtype=bool)
    mask[wide] = True
    return pc.replace_with_mask(lines, pa.array(mask), line)


def _exact_lines(column: pa.Array) -> tuple[pa.Array, int]:
    """The ``log`` field of each Docker record, unescaped, without its trailing newline, cut at
    ``MAX_LINE_CHARS``; a value that is not a Docker record is taken as the line itself. Also
    how many lines were longer than ``MAX_LINE_CHARS``. What every record's line is; done this
    way only for the records ``_docker_lines`` leaves (each step is a copy of the column).

    Docker writes ``{"log":"…","stream":"…","time":"…"}`` with ``log`` first, so the field is
    what lies between the opening ``{"log":"`` and the first ``","stream":"`` (a quote inside
    the line is escaped, so that separator cannot occur in it): a split at a literal."""
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
    return _finish(line)


def _finish(line: pa.Array) -> tuple[pa.Array, int]:
    """Escaped lines cut at ``_LINE_END`` characters of their record (escapes shrink when
    undone), unescaped, without trailing newlines, cut at ``MAX_LINE_CHARS``; and how many
    were longer than that. A cut of lines that all fit (in bytes) is skipped."""
    if _longest(line) > _LINE_END - len(_DOCKER_PREFIX):
        line = pc.utf8_slice_codeunits(line, 0, _LINE_END - len(_DOCKER_PREFIX))
    found = _escapes_in(line)
    for escaped, plain in _ESCAPES:
        if escaped in found:
            line = pc.replace_substring(line, escaped, plain)
    line = pc.utf8_rtrim(line, characters="\r\n")
    if _longest(line) <= MAX_LINE_CHARS:
        return line, 0
    if line.null_count:
        long = pc.sum(pc.cast(pc.greater(pc.utf8_length(line), MAX_LINE_CHARS), pa.int64())).as_py() or 0
        return pc.utf8_slice_codeunits(line, 0, MAX_LINE_CHARS), int(long)
    return _cut(line)


def _cut(line: pa.Array) -> tuple[pa.Array, int]:
    """``utf8_slice_codeunits(line, 0, MAX_LINE_CHARS)`` of lines without a null, and how many
    have more characters than that, mostly from byte lengths: a line of at most
    ``MAX_LINE_CHARS`` bytes is whole (so many bytes are at most so many characters); a longer
    one whose first ``MAX_LINE_CHARS`` bytes are ASCII is those bytes (a character each) and
    is long (a character follows them). The others (a character of several bytes in their
    first ``MAX_LINE_CHARS`` bytes) are sliced and counted as characters."""
    offsets = _offsets(line)
    begin, end = offsets[:-1], offsets[1:]
    cut = _ranges(line.buffers()[2], begin, np.minimum(end, begin + MAX_LINE_CHARS))
    over = end - begin > MAX_LINE_CHARS
    wide = np.flatnonzero(over & ~np.asarray(pc.string_is_ascii(cut).to_numpy(zero_copy_only=False)))
    long = int(over.sum()) - len(wide)
    if len(wide):
        some = line.take(pa.array(wide))
        long += int(pc.sum(pc.cast(pc.greater(pc.utf8_length(some), MAX_LINE_CHARS), pa.int64())).as_py() or 0)
        mask = np.zeros(len(line), dtype=bool)
        mask[wide] = True
        cut = pc.replace_with_mask(cut, pa.array(mask), pc.utf8_slice_codeunits(some, 0, MAX_LINE_CHARS))
    return cut, long


def _escapes_in(text: pa.Array) -> set[str]:
    """The escapes of ``_ESCAPES`` that may occur in ``text``: those whose two bytes follow
    each other somewhere in its data buffer (which holds every text's bytes). ``_finish``
    skips the others' passes, which would change nothing: a pass replaces a backslash and the
    character after it by one character that is no backslash and no later escape's second
    character (``\\n`` by a newline, then ``\\t`` by a tab, ``\\"`` by ``"``, ``\\/`` by
    ``/``), so it makes no occurrence of a later escape that was not in the text."""
    data = np.frombuffer(text.buffers()[2] or b"", dtype=np.uint8)
    follow = set(np.unique(data[np.flatnonzero(data[:-1] == ord("\\")) + 1]).tolist())
    return {escaped for escaped, _ in _ESCAPES if ord(escaped[1]) in follow}


def _longest(text: pa.Array | pa.ChunkedArray) -> int:
    """The byte length of the longest text (0 when none)."""
    return int(pc.max(pc.binary_length(text)).as_py() or 0)


def _offsets(text: pa.Array) -> np.ndarray:
    """A string array's offsets into its data buffer (n + 1 of them), as int64."""
    return np.frombuffer(text.buffers()[1], dtype=np.int32, count=len(text) + 1,
                         offset=4 * text.offset).astype(np.int64)


def _ranges(data: pa.Buffer, starts: np.ndarray, stops: np.ndarray, order: np.ndarray | None = None,
            kind: pa.DataType = _STRING) -> pa.Array:
    """The byte ranges [start, stop) of ``data`` (each after the one before, inside its own
    record) taken at ``order`` (all, in order, when None) as an array of ``kind``: one copy.
    They are every other element of a view of ``data`` (the ranges and what lies between)."""
    n = len(starts)
    offsets = np.empty(2 * n + 1, dtype=np.int32)
    offsets[0:2 * n:2], offsets[1:2 * n:2], offsets[2 * n] = starts, stops, stops[-1] if n else 0
    both = pa.Array.from_buffers(kind, 2 * n, [None, pa.py_buffer(offsets), data])
    return both.take(pa.array(2 * (np.arange(n) if order is None else order)))


def _char_start(data: np.ndarray, stop: np.ndarray, end: np.ndarray) -> np.ndarray:
    """``stop`` moved back to the start of the UTF-8 character it falls in (a byte 10xxxxxx is
    inside a character), unless it is the record's ``end``."""
    for _ in range(3):
        inside = (stop < end) & ((data[np.minimum(stop, len(data) - 1)] & 0xC0) == 0x80)
        stop = np.where(inside, stop - 1, stop)
    return stop


def _text(table: pa.Table, name: str) -> pa.Array:
    """A text column, "" where missing (and for every row when the file has no such column)."""
    if name not in table.column_names:
        return pa.array([""] * len(table), type=pa.string())
    column = table.column(name)
    if column.null_count:
        column = pc.fill_null(column, "")
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _file_runs(times_ns: np.ndarray, sizes: list[int]) -> list[tuple[float, float]]:
    """``_runs`` of each file's lines (``sizes``: how many lines each file has, one file's after
    the other's), one file's runs after the other's, at once when each file's times are in
    order (the reader's are: then sorting changes nothing); else file by file."""
    bounds = np.cumsum([0, *sizes])
    t = times_ns.astype("float64") / 1e9
    step = np.diff(t)
    inside = np.ones(len(step), dtype=bool)
    inside[bounds[1:-1][(bounds[1:-1] > 0) & (bounds[1:-1] < len(t))] - 1] = False  # steps across files
    if (step[inside] < 0).any():
        return [run for lo, hi in itertools.pairwise(bounds) for run in _runs(times_ns[lo:hi])]
    # a run starts at each file's start and after each gap; it ends where the next one starts
    starts = np.union1d(bounds[:-1], np.flatnonzero(inside & (step > _RUN_GAP_S)) + 1)
    ends = np.union1d(starts, bounds)[1:]
    starts = starts[starts < len(t)]
    ends = ends[np.searchsorted(ends, starts, side="right")]
    keep = ends - starts >= _MIN_RUN_LINES
    return list(zip(t[starts[keep]].tolist(), t[ends[keep] - 1].tolist(), strict=True))


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
