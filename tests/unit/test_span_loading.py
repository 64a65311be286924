"""The Nezha store's fast readers give what the pandas readers they stand in for give.

Spans of a batch whose numbers are all whole are read typed and cleaned in Arrow
(``nezha._read_typed`` and ``nezha._clean_batch``); KPI files whose values are all numbers are
read as float64 (``nezha._read_metric_file``). Anything else is read as before;
either way the frame, its dtypes and categories, the keys and the tallies are the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from thinkfl_operator.core.errors import DatasetError
from thinkfl_operator.telemetry import nezha
from thinkfl_operator.telemetry.csvio import read_table
from thinkfl_operator.telemetry.nezha import NezhaStore
from thinkfl_operator.telemetry.quality import DataQuality

T0 = 1_675_079_460  # 2023-01-30 11:51:00 UTC
HEADER = "TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration\n"
FOO_A, FOO_B, BAR = ("ts-foo-service-5dc8d4f9fd-llznp", "ts-foo-service-5dc8d4f9fd-zzzzz",
                     "ts-bar-service-7c9f8d6b5-abcde")


def _row(trace: str, span: str, parent: str, offset_s: float, dur_us: int = 1000, pod: str = FOO_A,
         op: str = "GET /foo", start_ns: int | None = None, end_ns: int | None = None) -> str:
    start = int((T0 + offset_s) * 1e9) if start_ns is None else start_ns
    end = start + dur_us * 1000 if end_ns is None else end_ns
    return f"{trace},{span},{parent},{pod},{op},{start},{end},{dur_us}\n"


def _day(tmp_path: Path, files: dict[str, str], header: str = HEADER) -> Path:
    day = tmp_path / "2023-01-30"
    (day / "trace").mkdir(parents=True)
    (day / "metric").mkdir()
    for name, rows in files.items():
        (day / "trace" / name).write_text(header + rows)
    return day


def _pandas_way(store: NezhaStore, paths: list[Path]) -> pd.DataFrame:
    tables = [read_table(p, nezha.TRACE_COLUMNS, nezha._TRACE_TEXT) for p in paths]
    return store._normalize(nezha._concat(tables))


def _assert_same(fast: pd.DataFrame, slow: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    for column in fast.columns:
        assert type(fast[column].array) is type(slow[column].array), column
        if isinstance(fast[column].dtype, pd.CategoricalDtype):
            assert fast[column].cat.categories.tolist() == slow[column].cat.categories.tolist(), column
            assert fast[column].cat.codes.dtype == slow[column].cat.codes.dtype, column


def _both_ways(day: Path) -> tuple[pd.DataFrame | None, DataQuality, pd.DataFrame, DataQuality]:
    paths = sorted((day / "trace").glob("*.csv"))
    fast_store, slow_store = NezhaStore(day), NezhaStore(day)
    typed = nezha._read_typed(paths)
    fast = nezha._clean_batch(typed, fast_store.quality) if typed is not None else None
    return fast, fast_store.quality, _pandas_way(slow_store, paths), slow_store.quality


DEFECTS = {
    "clean": _row("t1", "s1", "root", 1) + _row("t1", "s2", "s1", 2, pod=BAR),
    "root spellings and two pods of one service": (
        _row("t1", "s1", "Root", 5, pod=FOO_B) + _row("t2", "s2", "ROOT", 1, pod=BAR)
        + _row("t2", "s3", "s2", 3, pod=FOO_A) + _row("t3", "s4", "root", 2, pod=FOO_A)),
    "repeated spans, out of order": (
        _row("t1", "s1", "root", 9) + _row("t1", "s2", "s1", 3) + _row("t1", "s2", "s1", 3)
        + _row("t2", "s2", "root", 1)),
    "missing IDs, pods and operations": (
        _row("t1", "", "root", 1) + _row("", "s2", "root", 2) + _row("t3", "s3", "", 3, pod="")
        + _row("t4", "s4", "root", 4, op="") + _row("t5", "s5", "s4", 5)),
    "negative duration": _row("t1", "s1", "root", 1, dur_us=-5) + _row("t2", "s2", "root", 2),
    "corrupt start rebuilt from the end": (
        _row("t1", "s1", "root", 1, start_ns=12345, end_ns=int((T0 + 1) * 1e9))
        + _row("t2", "s2", "root", 2) + _row("t3", "s3", "root", 3)),
    "corrupt start and end": (
        _row("t1", "s1", "root", 1, start_ns=12345, end_ns=67890)
        + _row("t2", "s2", "root", 2) + _row("t3", "s3", "root", 3)),
}


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_typed_batch_equals_the_pandas_way(tmp_path: Path, defect: str) -> None:
    rows = DEFECTS[defect]
    half = rows.count("\n") // 2
    lines = rows.splitlines(keepends=True)
    day = _day(tmp_path, {"11_51_trace.csv": "".join(lines[:half]), "11_52_trace.csv": "".join(lines[half:])})
    fast, fast_quality, slow, slow_quality = _both_ways(day)
    assert fast is not None  # whole numbers: the typed way
    _assert_same(fast, slow)
    assert fast_quality.skipped == slow_quality.skipped


@pytest.mark.parametrize("rows", [
    _row("t1", "s1", "root", 1) + "t2,s2,root,pod,op,abc,1,1\n",  # text in a number column
    _row("t1", "s1", "root", 1) + f"t2,s2,root,{FOO_A},op,{int(T0 * 1e9)},,1000\n",  # a gap
    _row("t1", "s1", "root", 1) + f"t2,s2,root,{FOO_A},op,{int(T0 * 1e9)},1,12.5\n",  # a fraction
])
def test_other_numbers_go_the_pandas_way(tmp_path: Path, rows: str) -> None:
    day = _day(tmp_path, {"11_51_trace.csv": rows})
    fast, _, slow, slow_quality = _both_ways(day)
    assert fast is None
    store = NezhaStore(day)
    _assert_same(store.spans_between(0, 2**62).frame, slow)
    assert store.quality.skipped == slow_quality.skipped


def test_a_file_without_durations_goes_the_pandas_way(tmp_path: Path) -> None:
    day = _day(tmp_path, {"11_51_trace.csv": _row("t1", "s1", "root", 1)})
    (day / "trace" / "11_52_trace.csv").write_text(
        "TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano\n"
        f"t2,s2,root,{FOO_A},op,{int((T0 + 60) * 1e9)},{int((T0 + 60) * 1e9) + 2_500_500}\n")
    fast, _, slow, _ = _both_ways(day)
    assert fast is None
    store = NezhaStore(day)
    _assert_same(store.spans_between(0, 2**62).frame, slow)
    assert store.spans_between(0, 2**62).frame["duration_us"].tolist() == [1000, 2500]


def test_the_frame_keeps_its_dtypes(tmp_path: Path) -> None:
    day = _day(tmp_path, {"11_51_trace.csv": DEFECTS["root spellings and two pods of one service"]})
    frame = NezhaStore(day).spans_between(0, 2**62).frame
    text = pd.Series(["x"]).dtype  # pandas' own text dtype (str, or object before pandas 3)
    assert [str(t) for t in frame.dtypes] == [str(text)] * 3 + ["category"] * 4 + ["int64"] * 2 + [
        "category"] * 2 + ["int64"] * 2
    assert isinstance(frame.index, pd.RangeIndex)
    assert frame["service"].cat.categories.tolist() == ["ts-foo-service", "ts-bar-service"]
    assert frame["parent_id"].tolist() == ["", "", "s2", ""]
    assert frame["start_us"].tolist() == sorted(frame["start_us"])


def test_files_read_at_once_keep_the_first_bad_file_error(tmp_path: Path) -> None:
    day = _day(tmp_path, {"11_51_trace.csv": _row("t1", "s1", "root", 1),
                          "11_52_trace.csv": _row("t2", "s2", "root", 61) + "a,b\n"})
    (day / "trace" / "11_53_trace.csv").write_text(HEADER.replace("PodName,", "") + "t,s,root,op,1,2,1\n")
    with pytest.raises(DatasetError, match=r"11_52_trace\.csv: malformed CSV"):
        NezhaStore(day).spans_between(0, 2**62)


def test_batches_loaded_apart_equal_one_batch(tmp_path: Path) -> None:
    day = _day(tmp_path, {
        "11_51_trace.csv": _row("t1", "s1", "root", 10) + _row("t1", "s2", "s1", 11, pod=BAR),
        "12_51_trace.csv": _row("t1", "s2", "s1", 11, pod=BAR) + _row("t2", "s3", "root", 3601),
    })
    apart = NezhaStore(day)
    apart.spans_between(int(T0 * 1e6), int((T0 + 60) * 1e6))
    whole = apart.spans_between(0, 2**62).frame
    assert whole["span_id"].tolist() == ["s1", "s2", "s3"]
    assert apart.quality.skipped == {"repeated spans": 1}
    np.testing.assert_array_equal(whole["parent_key"].to_numpy()[1], whole["span_key"].to_numpy()[0])


# metrics -------------------------------------------------------------------------------------

METRIC_HEADER = "Time,TimeStamp,PodName,CpuUsageRate(%),MemoryUsage(Mi),SyscallRead\n"


def _metric_day(tmp_path: Path, rows: str) -> tuple[NezhaStore, Path]:
    day = _day(tmp_path, {})
    path = day / "metric" / f"{FOO_A}_metric.csv"
    path.write_text(METRIC_HEADER + rows)
    return NezhaStore(day), path


def _metric_row(epoch: int, text: str | None = None, cpu: str = "1.5", mem: str = "200", calls: str = "7") -> str:
    text = text if text is not None else pd.Timestamp(epoch, unit="s").strftime("%Y-%m-%d %H:%M:%S") + \
        ".71 +0000 UTC m=+0.89"
    return f"{text},{epoch},{FOO_A},{cpu},{mem},{calls}\n"


def _blocks_alike(store: NezhaStore, path: Path) -> None:
    typed = nezha._read_metric_file(path)
    assert typed is not None
    inferred = read_table(path, ("TimeStamp",), ("Time", "PodName"))
    fast = store._metric_block(typed, *nezha._kpi_values(typed))
    slow = store._metric_block(inferred, *nezha._kpi_values(inferred))
    assert fast.kpis == slow.kpis
    np.testing.assert_array_equal(fast.ts, slow.ts)
    np.testing.assert_array_equal(fast.values, slow.values)
    assert np.array_equal(np.signbit(fast.values), np.signbit(slow.values))


def test_kpis_read_as_float_equal_the_inferred_read(tmp_path: Path) -> None:
    rows = (_metric_row(T0 + 60) + _metric_row(T0, cpu="", calls="0") + _metric_row(T0 + 60, mem="NaN")
            + _metric_row(T0 + 120, text="garbage") + _metric_row(T0 + 180, cpu="-1.25e2"))
    store, path = _metric_day(tmp_path, rows)
    _blocks_alike(store, path)


def test_a_minus_zero_kpi_is_read_the_inferred_way(tmp_path: Path) -> None:
    store, _ = _metric_day(tmp_path, _metric_row(T0) + _metric_row(T0 + 60, calls="-0"))
    block = store.metrics([FOO_A], 0, 2**40)[FOO_A]
    assert not np.signbit(block.values).any()  # an integer column: -0 is 0


def test_a_text_kpi_is_read_the_inferred_way(tmp_path: Path) -> None:
    store, path = _metric_day(tmp_path, _metric_row(T0) + _metric_row(T0 + 60, mem="lots"))
    assert nezha._read_metric_file(path) is None
    block = store.metrics([FOO_A], 0, 2**40)[FOO_A]
    assert np.isnan(block.values[1, 1]) and block.values[0, 1] == 200


def test_text_times_in_other_zones_are_placed_in_utc(tmp_path: Path) -> None:
    rows = (_metric_row(T0, text="2023-01-30 19:51:00.5 +0800 CST m=+0.89")
            + _metric_row(T0 + 60, text="2023-01-30 06:52:00 -0500 EST m=+1.2")
            + _metric_row(T0 + 120))
    store, path = _metric_day(tmp_path, rows)
    block = store.metrics([FOO_A], 0, 2**40)[FOO_A]
    assert block.ts.tolist() == [T0, T0 + 60, T0 + 120]
    utc = nezha._text_seconds(read_table(path, ("TimeStamp",), ("Time",)).column("Time").combine_chunks())
    assert utc.tolist() == [T0, T0 + 60, T0 + 120]
