"""NezhaStore on tiny day folders that carry one defect each: no crash, defect tallied."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from thinkfl_operator.core.errors import DatasetError
from thinkfl_operator.telemetry.nezha import NezhaStore

POD = "ts-foo-service-5dc8d4f9fd-llznp"
OTHER = "ts-bar-service-7c9f8d6b5-abcde"
T0 = 1_675_079_460  # 2023-01-30 11:51:00 UTC
TRACE_HEADER = (
    "TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration\n"
)
METRIC_HEADER = "Time,TimeStamp,PodName,CpuUsageRate(%),MemoryUsage(Mi),PodSuccessRate(%)\n"


def _span(trace: str, span: str, parent: str, start_s: float, dur_us: int = 1000,
          pod: str = POD) -> str:
    start_ns = int(start_s * 1e9)
    end_ns = start_ns + dur_us * 1000
    return f"{trace},{span},{parent},{pod},GET /foo,{start_ns},{end_ns},{dur_us}\n"


def _day(tmp_path: Path, traces: dict[str, str] | None = None,
         metrics: dict[str, str] | None = None) -> Path:
    day = tmp_path / "2023-01-30"
    (day / "trace").mkdir(parents=True)
    (day / "metric").mkdir()
    for name, rows in (traces or {}).items():
        (day / "trace" / name).write_text(TRACE_HEADER + rows)
    for pod, rows in (metrics or {}).items():
        (day / "metric" / f"{pod}_metric.csv").write_text(METRIC_HEADER + rows)
    return day


def _us(seconds: float) -> int:
    return int(seconds * 1_000_000)


def _noted(store: NezhaStore, words: str) -> bool:
    return any(words in note for note in store.quality.notes())


# spans ---------------------------------------------------------------------------------------

def _overlapping_day(tmp_path: Path) -> Path:
    shared = _span("t1", "s1", "root", T0 + 50) + _span("t1", "s2", "s1", T0 + 55, pod=OTHER)
    return _day(
        tmp_path,
        traces={
            "11_51_trace.csv": _span("t0", "s0", "root", T0 + 10) + shared,
            "11_52_trace.csv": shared + _span("t2", "s3", "root", T0 + 70),
        },
    )


def test_overlapping_minute_files_return_each_span_once(tmp_path: Path) -> None:
    store = NezhaStore(_overlapping_day(tmp_path))
    window = store.spans_between(_us(T0), _us(T0 + 120))
    assert len(window) == 4
    assert sorted(window.frame["span_id"]) == ["s0", "s1", "s2", "s3"]
    trace = store.find_trace("t1")
    assert len(trace) == 2
    assert [c.span_id for c in trace.children("s1")] == ["s2"]


def test_overlapping_minute_files_are_tallied(tmp_path: Path) -> None:
    store = NezhaStore(_overlapping_day(tmp_path))
    store.spans_between(_us(T0), _us(T0 + 120))
    assert _noted(store, "repeated")


def test_span_repeated_inside_one_file(tmp_path: Path) -> None:
    rows = _span("t1", "s1", "root", T0 + 5) + _span("t1", "s2", "s1", T0 + 6)
    rows += _span("t1", "s2", "s1", T0 + 6)
    store = NezhaStore(_day(tmp_path, traces={"11_51_trace.csv": rows}))
    window = store.spans_between(_us(T0), _us(T0 + 60))
    assert sorted(window.frame["span_id"]) == ["s1", "s2"]
    assert "skipped 1 repeated spans" in store.quality.notes()


def test_file_holding_a_later_minute_is_selected_by_span_time(tmp_path: Path) -> None:
    # 11_51_trace.csv holds spans of 11:54; 11_54_trace.csv holds 11:51.
    store = NezhaStore(
        _day(
            tmp_path,
            traces={
                "11_51_trace.csv": _span("late", "a1", "root", T0 + 185),
                "11_54_trace.csv": _span("early", "b1", "root", T0 + 5),
            },
        )
    )
    at_1154 = store.spans_between(_us(T0 + 180), _us(T0 + 240))
    assert at_1154.trace_ids() == ["late"]
    at_1151 = store.spans_between(_us(T0), _us(T0 + 60))
    assert at_1151.trace_ids() == ["early"]
    assert len(store.spans_between(_us(T0 + 60), _us(T0 + 180))) == 0


def test_corrupt_start_is_rebuilt_from_end_and_duration(tmp_path: Path) -> None:
    good_start_ns = (T0 + 20) * 1_000_000_000
    end_ns = good_start_ns + 2_000_000
    rows = _span("t1", "s1", "root", T0 + 10)
    rows += f"t1,s2,s1,{POD},GET /foo,42,{end_ns},2000\n"  # start 42 ns after 1970
    store = NezhaStore(_day(tmp_path, traces={"11_51_trace.csv": rows}))
    window = store.spans_between(_us(T0), _us(T0 + 60))
    assert sorted(window.frame["span_id"]) == ["s1", "s2"]
    s2 = window.span("s2")
    assert s2 is not None and s2.timestamp == (T0 + 20) * 1000 and s2.duration == 2000
    assert _noted(store, "span start times rebuilt from end − duration")


def test_corrupt_start_without_a_sane_end_is_dropped_and_tallied(tmp_path: Path) -> None:
    rows = _span("t1", "s1", "root", T0 + 10) + _span("t1", "s0", "root", T0 + 11)
    rows += f"t1,s2,s1,{POD},GET /foo,42,43,2000\n"
    store = NezhaStore(_day(tmp_path, traces={"11_51_trace.csv": rows}))
    assert sorted(store.spans_between(_us(T0), _us(T0 + 60)).frame["span_id"]) == ["s0", "s1"]
    assert _noted(store, "corrupt start time")


def test_trace_file_missing_column_names_file(tmp_path: Path) -> None:
    day = _day(tmp_path)
    (day / "trace" / "11_51_trace.csv").write_text("TraceID,SpanID,PodName\nt,s,p\n")
    store = NezhaStore(day)
    with pytest.raises(DatasetError, match=r"11_51_trace\.csv: missing column\(s\) ParentID"):
        store.spans_between(_us(T0), _us(T0 + 60))


def test_malformed_trace_csv_names_file(tmp_path: Path) -> None:
    rows = _span("t1", "s1", "root", T0 + 10) + "t1,s2,only-three-fields\n"
    store = NezhaStore(_day(tmp_path, traces={"11_51_trace.csv": rows}))
    with pytest.raises(DatasetError, match=r"11_51_trace\.csv: malformed CSV"):
        store.find_trace("t1")


# metrics -------------------------------------------------------------------------------------

def _metric_row(epoch: float, text_epoch: float | None = None, cpu: str = "1.5",
                mem: str = "400") -> str:
    from datetime import UTC, datetime

    text = datetime.fromtimestamp(epoch if text_epoch is None else text_epoch, UTC)
    time = text.strftime("%Y-%m-%d %H:%M:%S") + ".123456789 +0000 UTC m=+0.5"
    return f"{time},{int(epoch)},{POD},{cpu},{mem},0\n"


def test_nan_values_and_constant_zero_column_load(tmp_path: Path) -> None:
    rows = _metric_row(T0) + _metric_row(T0 + 60, cpu="NaN") + _metric_row(T0 + 120, mem="")
    store = NezhaStore(_day(tmp_path, metrics={POD: rows}))
    assert store.metric_pods() == [POD]
    frame = store.metrics([POD], T0 - 1, T0 + 200)[POD].frame()
    assert list(frame.index) == [float(T0), T0 + 60.0, T0 + 120.0]
    assert frame.index.name == "ts"
    assert math.isnan(frame.loc[T0 + 60.0, "CpuUsageRate(%)"])
    assert math.isnan(frame.loc[T0 + 120.0, "MemoryUsage(Mi)"])
    assert frame.loc[float(T0), "CpuUsageRate(%)"] == 1.5
    assert (frame["PodSuccessRate(%)"] == 0.0).all()
    assert "PodName" not in frame.columns and "Time" not in frame.columns


def test_corrupt_epoch_is_placed_by_text_time(tmp_path: Path) -> None:
    rows = _metric_row(T0) + _metric_row(99, text_epoch=T0 + 60) + _metric_row(T0 + 120)
    store = NezhaStore(_day(tmp_path, metrics={POD: rows}))
    frame = store.metrics([POD], T0 - 1, T0 + 200)[POD].frame()
    assert list(frame.index) == [float(T0), T0 + 60.0, T0 + 120.0]
    assert store.metrics([POD], 0, 1000) == {}
    assert _noted(store, "epoch disagreed with their text time")


def test_metric_file_missing_timestamp_names_file(tmp_path: Path) -> None:
    day = _day(tmp_path)
    (day / "metric" / f"{POD}_metric.csv").write_text("Time,PodName,Cpu\nx,y,1\n")
    store = NezhaStore(day)
    with pytest.raises(DatasetError, match=rf"{POD}_metric\.csv: missing column\(s\) TimeStamp"):
        store.metrics([POD], T0, T0 + 60)


def test_files_read_in_separate_batches_are_joined_once(tmp_path: Path) -> None:
    # The 11:51 file and the 13:30 file are far apart, so two queries read them separately;
    # the later file repeats one span of the first (an overlap found only when joining).
    early = _span("t1", "s1", "root", T0 + 10) + _span("t1", "s2", "s1", T0 + 11, pod=OTHER)
    late = _span("t1", "s2", "s1", T0 + 11, pod=OTHER) + _span("t9", "s9", "root", T0 + 5900)
    store = NezhaStore(_day(tmp_path, traces={"11_51_trace.csv": early, "13_30_trace.csv": late}))
    assert len(store.spans_between(_us(T0), _us(T0 + 60))) == 2
    both = store.spans_between(_us(T0), _us(T0 + 6000))
    assert sorted(both.frame["span_id"]) == ["s1", "s2", "s9"]
    assert list(both.frame["start_us"]) == sorted(both.frame["start_us"])
    assert both.pods() == {POD: "ts-foo-service", OTHER: "ts-bar-service"}
    assert [c.span_id for c in both.children("s1")] == ["s2"]
    assert _noted(store, "repeated spans")
