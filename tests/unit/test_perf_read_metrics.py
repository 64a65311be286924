"""The Nezha store's KPI blocks read all at once equal the blocks read one file at a time.

The old pieces are kept here as oracles: the column-by-column ``_old_kpi_values``, the
per-row zone offsets of ``_old_text_seconds`` and ``_old_block`` (one file: its own text
times, every row taken, sorted and de-duplicated by fancy indexing).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from thinkfl_operator.core.errors import DatasetError
from thinkfl_operator.telemetry import nezha
from thinkfl_operator.telemetry.csvio import read_table
from thinkfl_operator.telemetry.nezha import NezhaStore
from thinkfl_operator.telemetry.quality import DataQuality
from thinkfl_operator.telemetry.store import KpiBlock

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "nezha" / "rca_data"
DAYS = sorted(p.parent for p in SHARED.glob("*/metric")) if SHARED.is_dir() else []


def _old_kpi_values(table: pa.Table) -> tuple[tuple[str, ...], np.ndarray]:
    kpis = tuple(c for c in table.column_names if c not in nezha._NON_KPI)
    values = np.empty((table.num_rows, len(kpis)), dtype="float64")
    for i, kpi in enumerate(kpis):
        column = table.column(kpi)
        values[:, i] = column.to_numpy() if column.type == pa.float64() and not column.null_count \
            else nezha._floats(column)
    return kpis, values


def _old_text_seconds(text: pa.Array) -> np.ndarray:
    stamp = pc.strptime(pc.utf8_slice_codeunits(text, 0, 19), format="%Y-%m-%d %H:%M:%S", unit="s",
                        error_is_null=True)
    seconds = pc.cast(stamp, pa.int64()).to_numpy(zero_copy_only=False).astype("float64")
    seconds = np.where(pc.is_null(stamp).to_numpy(zero_copy_only=False), np.nan, seconds)
    offsets: np.ndarray | float = 0.0
    if pc.any(pc.match_substring_regex(text, nezha._ZONE_NOT_UTC)).as_py():
        zone = pc.extract_regex(text, r"^\S+ \S+ (?P<zone>[+-]\d{4})").field("zone")
        zone = pc.fill_null(zone, "+0000").to_numpy(zero_copy_only=False)
        offsets = np.array([nezha._offset_seconds(z) for z in zone])
    result: np.ndarray = seconds - offsets
    return result


def _old_block(path: Path, quality: DataQuality) -> KpiBlock:
    """The old ``NezhaStore._pod_frame`` of one file."""
    table = nezha._read_metric_file(path)
    if table is not None:
        kpis, values = _old_kpi_values(table)
        if nezha._negative_zero(values) or nezha._negative_zero(nezha._floats(table.column("TimeStamp"))):
            table = None
    if table is None:
        table = read_table(path, ("TimeStamp",), ("Time", "PodName"))
        kpis, values = _old_kpi_values(table)
    epoch = nezha._floats(table.column("TimeStamp"))
    times = epoch
    if "Time" in table.column_names:
        text_s = _old_text_seconds(table.column("Time").combine_chunks())
        disagree = ~np.isnan(text_s) & (np.isnan(epoch) | (np.abs(text_s - epoch) > nezha._EPOCH_TOLERANCE_S))
        if disagree.any():
            quality.add("metric rows whose epoch disagreed with their text time (text used)", int(disagree.sum()))
        times = np.where(np.isnan(text_s), epoch, text_s)
    keep = ~np.isnan(times)
    times, values = times[keep], values[keep]
    order = np.argsort(times, kind="stable")
    times, values = times[order], values[order]
    first = np.concatenate(([True], np.diff(times) > 0)) if len(times) else np.ones(0, bool)
    return KpiBlock(times[first], values[first], kpis)


def _assert_blocks_equal(new: KpiBlock, old: KpiBlock) -> None:
    assert new.kpis == old.kpis
    assert new.ts.dtype == old.ts.dtype and new.values.dtype == old.values.dtype
    assert new.values.shape == old.values.shape and new.values.flags.c_contiguous
    np.testing.assert_array_equal(new.ts, old.ts)
    np.testing.assert_array_equal(new.values, old.values)
    assert np.array_equal(np.signbit(new.values), np.signbit(old.values))


def _assert_store_equals_files(day: Path) -> None:
    store = NezhaStore(day)
    pods = store.metric_pods()
    blocks = store.metrics(pods, 0, 2**40)
    old_quality = DataQuality()
    for pod in pods:
        old = _old_block(store._metric_files[pod], old_quality)
        if len(old):
            _assert_blocks_equal(blocks[pod], old)
        else:
            assert pod not in blocks
    assert store.quality.skipped == old_quality.skipped
    single = NezhaStore(day)  # one pod at a time: the same blocks
    for pod in pods[:3]:
        _assert_blocks_equal(single.metrics([pod], 0, 2**40)[pod], blocks[pod])


@pytest.mark.parametrize("day", DAYS, ids=[d.name for d in DAYS])
def test_blocks_read_at_once_equal_the_old_blocks_on_shared_days(day: Path) -> None:
    _assert_store_equals_files(day)


@pytest.mark.parametrize("day", DAYS, ids=[d.name for d in DAYS])
def test_kpi_values_equal_the_old_ones_on_shared_days(day: Path) -> None:
    for path in sorted((day / "metric").glob("*_metric.csv"))[:10]:
        for table in (nezha._read_metric_file(path), read_table(path, ("TimeStamp",), ("Time", "PodName"))):
            if table is None:
                continue
            kpis, values = nezha._kpi_values(table)
            old_kpis, old_values = _old_kpi_values(table)
            assert kpis == old_kpis and values.flags.c_contiguous
            np.testing.assert_array_equal(values, old_values)


T0 = 1_675_079_460  # 2023-01-30 11:51:00 UTC
HEADER = "Time,TimeStamp,PodName,CpuUsageRate(%),MemoryUsage(Mi),SyscallRead\n"


def _text(epoch: int, zone: str = "+0000 UTC") -> str:
    return pd.Timestamp(epoch, unit="s").strftime("%Y-%m-%d %H:%M:%S") + f".71 {zone} m=+0.89"


FILES = {
    "sorted": "".join(f"{_text(T0 + 60 * i)},{T0 + 60 * i},p,1.5,{i},7\n" for i in range(5)),
    "out of order, repeated and missing times": (
        f"{_text(T0 + 60)},{T0 + 60},p,1,2,3\n{_text(T0)},{T0},p,4,5,6\n{_text(T0)},{T0},p,7,8,9\n"
        f"garbage,,p,1,1,1\n{_text(T0 + 30)},{T0 + 30},p,,NaN,2\n"),
    "other zones": (f"2023-01-30 19:51:00.5 +0800 CST m=+0.89,{T0},p,1,2,3\n"
                    f"2023-01-30 06:52:00 -0500 EST m=+1.2,{T0 + 60},p,1,2,3\n"
                    f"{_text(T0 + 120)},{T0 + 120},p,1,2,3\n2023-01-30 11:54:00 bad,{T0 + 180},p,1,2,3\n"),
    "an epoch far from its text": f"{_text(T0)},{T0 + 9999},p,1,2,3\n{_text(T0 + 60)},{T0 + 60},p,1,2,3\n",
    "integers, a minus zero": f"{_text(T0)},{T0},p,1,2,-0\n{_text(T0 + 60)},{T0 + 60},p,1,2,0\n",
    "a text KPI": f"{_text(T0)},{T0},p,1,lots,3\n{_text(T0 + 60)},{T0 + 60},p,1,2,3\n",
    "no rows": "",
}


def _day(tmp_path: Path, files: dict[str, tuple[str, str]]) -> Path:
    day = tmp_path / "2023-01-30"
    (day / "trace").mkdir(parents=True)
    (day / "metric").mkdir()
    for name, (header, rows) in files.items():
        (day / "metric" / f"{name}_metric.csv").write_text(header + rows)
    return day


def test_blocks_read_at_once_equal_the_old_blocks_on_defects(tmp_path: Path) -> None:
    files = {f"ts-pod{i}-service-1": (HEADER, rows) for i, rows in enumerate(FILES.values())}
    files["ts-notime-service-1"] = ("TimeStamp,CpuUsageRate(%)\n", f"{T0 + 60},1\n{T0},2\n{T0},3\n")
    _assert_store_equals_files(_day(tmp_path, files))


@pytest.mark.parametrize("name", sorted(FILES))
def test_text_seconds_equal_the_old_ones(name: str) -> None:
    text = pa.array([line.split(",")[0] for line in FILES[name].splitlines()] + ["", "x"], pa.string())
    for part in (text, text.slice(1)):
        np.testing.assert_array_equal(nezha._text_seconds(part), _old_text_seconds(part))
    np.testing.assert_array_equal(nezha._text_seconds(pa.array([], pa.string())),
                                  _old_text_seconds(pa.array([], pa.string())))


def test_the_first_bad_file_in_order_is_the_error(tmp_path: Path) -> None:
    day = _day(tmp_path, {"ts-a-service-1": (HEADER, FILES["sorted"]),
                          "ts-b-service-1": ("Time,CpuUsageRate(%)\n", "x,1\n"),
                          "ts-c-service-1": ("Time,TimeStamp\n", "x,1\n")})
    store = NezhaStore(day)
    with pytest.raises(DatasetError, match=r"ts-b-service-1_metric\.csv: missing column"):
        store.metrics(store.metric_pods(), 0, 2**40)
