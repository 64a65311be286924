"""Nezha log files read in groups (parsed one by one, their records decoded together) give
what reading each file alone gave: the reader's per-file decoding (``_old_lines_of``, kept
here, and the plain merge of its text tables, ``_old_frame``: pods and services are the
categoricals of that text) on files with the cases that matter (rows without a time, missing ID columns, empty
and header-only files, a flood left out, broken rows, long and escaped records, repeats of
an overlapping file, files out of time order), however the files are grouped and batched."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from thinkfl_operator.telemetry import nezha_logs
from thinkfl_operator.telemetry.loglines import MAX_LINE_CHARS
from thinkfl_operator.telemetry.nezha_logs import (
    _DOCKER_PREFIX,
    NezhaLogs,
    _docker_lines,
    _groups,
    _int_column,
    _read_csv,
    _text,
)
from thinkfl_operator.telemetry.quality import DataQuality

HEADER = ["Timestamp", "TimeUnixNano", "Node", "PodName", "Container", "TraceID", "SpanID", "Log"]
TAIL = '","stream":"stdout","time":"2023-01-29T09:03:00.123456789Z"}'
T0 = 1_700_000_000_000_000_000


def _old_lines_of(source: NezhaLogs, path: Path, quality: DataQuality) -> pa.Table | None:
    """The reader's per-file decoding (before files were decoded together)."""
    table = _read_csv(path, quality, source.max_file_lines)
    if table is None:
        return None
    times = _int_column(table.column("TimeUnixNano"))
    log = table.column("Log")
    records = log.chunk(0) if log.num_chunks == 1 else log.combine_chunks()
    keep = np.asarray(pc.and_(pc.is_valid(times), pc.is_valid(records)).to_numpy(zero_copy_only=False))
    if times.null_count:
        times = pc.cast(pc.cast(times, pa.float64(), safe=False), pa.int64())
    stamps = pc.fill_null(times, 0).to_numpy()
    rows = np.flatnonzero(keep)
    order = rows[np.argsort(stamps[rows], kind="stable")]
    line, long = _docker_lines(records, order)
    quality.add(f"characters past {MAX_LINE_CHARS} of long log lines (lines cut)", long)
    quality.add("log rows without a time", len(table) - len(rows))
    pods = pc.dictionary_encode(_text(table, "PodName"))
    services = pa.array([source._service(p) for p in pods.dictionary.to_pylist()], type=pa.string())
    index = pa.array(order)
    codes = pods.indices.take(index)
    return pa.table({
        "time_ns": pa.array(stamps[order]), "pod": pods.dictionary.take(codes),
        "service": services.take(codes), "line": line,
        "trace_id": _text(table, "TraceID").take(index), "span_id": _text(table, "SpanID").take(index),
    })


def _old_group(source: NezhaLogs, paths: list[Path]) -> tuple[pa.Table | None, list[int], DataQuality]:
    """Each file decoded alone, the tables joined: what the group reader must give (its pods
    as a dictionary column, their services made when the lines are merged)."""
    quality = DataQuality()
    tables = [t for t in (_old_lines_of(source, p, quality) for p in paths) if t is not None]
    if not tables:
        return None, [], quality
    joined = pa.concat_tables(tables).combine_chunks()
    joined = joined.set_column(1, "pod", pc.dictionary_encode(joined.column("pod"))).drop_columns(["service"])
    return joined, [len(t) for t in tables], quality


def _old_frame(source: NezhaLogs, paths: list[Path]) -> pd.DataFrame:
    """The files' lines as text, merged the plain way: each file decoded alone, joined in
    reading order, repeats of (time, pod, line) dropped, a stable sort by time."""
    tables = [t for t in (_old_lines_of(source, p, DataQuality()) for p in paths) if t is not None]
    frame = pa.concat_tables(tables).to_pandas()
    frame = frame[~frame.duplicated(["time_ns", "pod", "line"], keep="first")]
    return frame.sort_values("time_ns", kind="stable").reset_index(drop=True)


def _record(rng: random.Random) -> str:
    kind = rng.randrange(8)
    if kind == 0:
        return _DOCKER_PREFIX + "x" * rng.randint(MAX_LINE_CHARS - 5, 3 * MAX_LINE_CHARS) + "\\n" + TAIL
    if kind == 1:
        return _DOCKER_PREFIX + 'say \\"hi\\"\\ttab é 中\\n' + TAIL
    if kind == 2:
        return "plain, not Docker"
    if kind == 3:
        return _DOCKER_PREFIX + "no separator " * rng.randint(1, 300)
    return _DOCKER_PREFIX + f"INFO line {rng.randint(0, 5)}\\n" + TAIL


def _write(path: Path, header: list[str], rows: list[list[str]], broken: int = 0) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
        for _ in range(broken):
            writer.writerow(["too", "many", "fields"] * 4)


def _day(folder: Path, seed: int) -> None:
    """Minute files with every case (file names in time order; some times overlap)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    repeated: list[list[str]] = []
    for minute in range(12):
        n = rng.choice([0, 1, 5, 12, 25]) if minute != 3 else 10
        rows = []
        for _ in range(n):
            t = T0 + (minute * 60 + rng.randint(0, 90)) * 10**9 + rng.randint(0, 3)
            rows.append(["", str(t), "n1", rng.choice(["ts-a-1-x", "ts-b-2-y", "", "ts-c-3-z"]), "server",
                         rng.choice(["", "t1", "t2"]), rng.choice(["", "s1"]), _record(rng)])
        if minute in (2, 4):  # stray lines hours away: too few in either file to be coverage
            rows += [["", str(T0 + (7200 + minute + i) * 10**9), "n1", "ts-a-1-x", "server", "", "", _record(rng)]
                     for i in range(minute * 2)]
        if minute == 3 and rows:
            rows[0][1] = "not a time"  # the file's times go through float64
        if minute == 5:
            rows += repeated  # an overlapping file repeats earlier lines
        repeated = rows[:3]
        header = HEADER
        if minute == 7:  # no ID columns
            header = [h for h in HEADER if h not in ("TraceID", "SpanID")]
            rows = [[v for h, v in zip(HEADER, r, strict=True) if h in header] for r in rows]
        if minute == 9:
            rows = [["", str(T0 + i), "n1", "ts-a-1-x", "server", "", "", _record(rng)] for i in range(60)]  # flood
        rng.shuffle(rows)
        _write(folder / f"09_{minute:02d}_log.csv", header, rows, broken=minute % 4 == 1)
    (folder / "09_59_log.csv").write_text(",".join(HEADER) + "\n")  # header only


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("batch_bytes", [1 << 30, 2_000])
def test_groups_give_what_each_file_alone_gave(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int,
                                               threads: int, batch_bytes: int) -> None:
    folder = tmp_path / "day" / "log"
    _day(folder, seed)
    files = sorted(folder.glob("*.csv"))
    monkeypatch.setattr(nezha_logs, "THREADS", threads)
    monkeypatch.setattr(nezha_logs, "_BATCH_BYTES", batch_bytes)
    for split in (0, 4):  # read at once, or later files first (the merge takes then)
        new, old = NezhaLogs(folder, max_file_lines=40), NezhaLogs(folder, max_file_lines=40)
        old._read_group = lambda paths, source=old: _old_group(source, paths)  # type: ignore[method-assign]
        for source in (new, old):
            source._ensure_loaded(files[split:])
            source._ensure_loaded(files)
        assert new._table is not None and old._table is not None
        assert new._table.equals(old._table)
        assert new._lines.equals(old._lines)
        assert new._coverage == old._coverage
        assert all(hi < T0 / 1e9 + 7000 for _, hi in new._coverage)
        assert new.quality.skipped == old.quality.skipped
        plain = _old_frame(new, files[split:] + files[:split])
        got = new._lines
        for column in ("pod", "service"):
            assert got[column].dtype == plain[column].astype("category").dtype
            assert (got[column].cat.codes.to_numpy() == plain[column].astype("category").cat.codes.to_numpy()).all()
        assert got.astype({"pod": "str", "service": "str"}).equals(plain)
        assert new.quality.skipped["log rows without a time"] >= 1
        assert any("left out" in reason for reason in new.quality.skipped)


def test_groups_are_runs_of_the_files_in_order(tmp_path: Path) -> None:
    paths = []
    for i, size in enumerate([10, 0, 500, 30, 30, 30, 2000, 1]):
        path = tmp_path / f"{i:02d}.csv"
        path.write_bytes(b"x" * size)
        paths.append(path)
    for n in range(1, 10):
        groups = _groups(paths, n)
        assert [p for g in groups for p in g] == paths
        assert 1 <= len(groups) <= n and all(groups)
    assert _groups([], 4) == [[]] and _groups(paths[:1], 4) == [paths[:1]]
    assert _groups([tmp_path / "missing.csv", *paths], 2)[0][0] == tmp_path / "missing.csv"


def test_the_cache_makes_the_categoricals_of_the_text(tmp_path: Path) -> None:
    """LogCache's pods and services of a period (the reader's categoricals, cut to the pods of
    the period) are what ``astype("category")`` made of their text."""
    from thinkfl_operator.engines.heuristic.logevidence import _categories

    folder = tmp_path / "day" / "log"
    _day(folder, 5)
    source = NezhaLogs(folder, max_file_lines=40)
    source._ensure_loaded(sorted(folder.glob("*.csv")))
    lines = source._lines
    assert isinstance(lines["pod"].dtype, pd.CategoricalDtype)
    for lo, hi in ((0, len(lines)), (0, 7), (len(lines) // 3, len(lines) // 2), (5, 5)):
        for column in ("pod", "service"):
            part = lines[column].iloc[lo:hi]
            got, old = _categories(part), part.astype("str").astype("category")
            assert got.dtype == old.dtype and (got.cat.codes.to_numpy() == old.cat.codes.to_numpy()).all()
    text = pd.Series(["b", "a", "b"])
    assert _categories(text).dtype == text.astype("category").dtype
