"""The Nezha layout (``rca_data/<day>``): per-minute trace CSVs, per-pod metric CSVs and, where
the day has them, per-minute log CSVs (``telemetry.nezha_logs``).

Files are read lazily and cached. File names (``HH_MM_trace.csv``) are only a hint for which
files may hold a time range: spans and samples are always selected by their own timestamps,
because on some days files are cut at odd seconds, overlap, or cover several minutes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from thinkfl_operator.core.errors import DatasetError
from thinkfl_operator.telemetry.csvio import THREADS, read_table
from thinkfl_operator.telemetry.memory import MemoryStore
from thinkfl_operator.telemetry.minutefiles import files_near, folder_day
from thinkfl_operator.telemetry.naming import service_of_pod
from thinkfl_operator.telemetry.nezha_logs import NezhaLogs, has_logs
from thinkfl_operator.telemetry.quality import DataQuality
from thinkfl_operator.telemetry.spans import (
    categorical,
    clean_spans,
    concat_spans,
    constant,
    empty_frame,
    text_column,
    unique_sorted,
)
from thinkfl_operator.telemetry.store import KpiBlock, MetricFrames

TRACE_COLUMNS = ("TraceID", "SpanID", "ParentID", "PodName", "OperationName", "StartTimeUnixNano")
_TRACE_TEXT = ("TraceID", "SpanID", "ParentID", "PodName", "OperationName")
_METRIC_SUFFIX = "_metric.csv"
#: Metric columns that are not KPIs.
_NON_KPI = {"Time", "TimeStamp", "PodName", "ServiceName"}
#: A text time and an epoch further apart than this mean the epoch is corrupt (seconds).
_EPOCH_TOLERANCE_S = 300.0


def is_nezha_day(path: Path) -> bool:
    return (path / "trace").is_dir() or (path / "metric").is_dir()


class NezhaStore(MemoryStore):
    """One Nezha day folder."""

    name = "nezha"

    def __init__(self, root: Path) -> None:
        super().__init__(service_of=service_of_pod)
        self.root = root
        if not root.is_dir():
            raise DatasetError(root, "no such folder")
        if not is_nezha_day(root):
            raise DatasetError(root, "not a Nezha day folder (expected trace/ and metric/ inside)")
        self._day = folder_day(root)
        self._trace_files = sorted((root / "trace").glob("*.csv")) if (root / "trace").is_dir() else []
        metric_dir = root / "metric"
        self._metric_files = {
            p.name[: -len(_METRIC_SUFFIX)]: p
            for p in (sorted(metric_dir.glob(f"*{_METRIC_SUFFIX}")) if metric_dir.is_dir() else [])
        }
        self._loaded: set[Path] = set()
        self._metric_cache: dict[str, KpiBlock] = {}
        self.logs = NezhaLogs(root / "log", self.quality) if has_logs(root) else None

    # spans -------------------------------------------------------------------------------
    def _files_for(self, start_us: int, end_us: int) -> list[Path]:
        return files_near(self._trace_files, self._day, "_trace.csv", start_us / 1e6, end_us / 1e6)

    def _ensure_loaded(self, paths: list[Path]) -> None:
        """Read the files not read yet, as one batch, into the de-duplicated span frame."""
        new = [p for p in paths if p not in self._loaded]
        if not new:
            return
        # One file after another: pyarrow already parses each file on all cores.
        tables = [read_table(path, TRACE_COLUMNS, _TRACE_TEXT) for path in new]
        self._loaded.update(new)
        batch = self._normalize(_concat(tables))
        if not self._spans.empty:
            batch = unique_sorted(concat_spans([self._spans, batch]), self.quality)
        self._spans = batch

    def _normalize(self, raw: pd.DataFrame) -> pd.DataFrame:
        start_ns = pd.to_numeric(raw["StartTimeUnixNano"], errors="coerce")
        end_ns = pd.to_numeric(raw.get("EndTimeUnixNano"), errors="coerce") if "EndTimeUnixNano" in raw else None
        duration = pd.to_numeric(raw["Duration"], errors="coerce") if "Duration" in raw else None
        if duration is None and end_ns is not None:
            duration = (end_ns - start_ns) / 1000
        elif duration is not None and end_ns is not None:
            duration = duration.fillna((end_ns - start_ns) / 1000)
        if end_ns is not None and duration is not None:
            # A corrupt start next to a sane end: rebuild the start from end − duration.
            rebuilt = end_ns - duration * 1000
            median = float(np.nanmedian(end_ns.to_numpy(dtype="float64"))) if len(end_ns) else 0.0
            corrupt = start_ns.isna() | ((start_ns - median).abs() > 86_400e9)
            fixable = corrupt & ((rebuilt - median).abs() <= 86_400e9)
            if fixable.any():
                self.quality.add("span start times rebuilt from end − duration", int(fixable.sum()))
                start_ns = start_ns.where(~fixable, rebuilt)
        pods = categorical(text_column(raw["PodName"]))
        names = [_cached_service(p) for p in pods.cat.categories]
        if len(set(names)) == len(names):
            services = pods.cat.rename_categories(names)
        else:  # several pods of one service
            services = categorical(pd.Series(np.array(names, dtype=object)[pods.cat.codes], index=pods.index))
        parent = text_column(raw["ParentID"])
        frame = pd.DataFrame(
            {
                "trace_id": raw["TraceID"],
                "span_id": raw["SpanID"],
                "parent_id": parent.where(~parent.isin(("root", "Root", "ROOT")), ""),
                "pod": pods,
                "service": services,
                "node": constant("", pods.index),
                "operation": categorical(text_column(raw["OperationName"])),
                "start_us": start_ns // 1000,
                "duration_us": duration if duration is not None else np.nan,
                "status": constant("0", pods.index),
                "kind": constant("", pods.index),
            }
        )
        nan_duration = frame["duration_us"].isna() & frame["start_us"].notna()
        return clean_spans(frame, self.quality) if not nan_duration.all() else empty_frame()

    def _frame_between(self, start_us: int, end_us: int) -> pd.DataFrame:
        self._ensure_loaded(self._files_for(start_us, end_us))
        return super()._frame_between(start_us, end_us)

    def _all_spans(self) -> pd.DataFrame:
        self._ensure_loaded(self._trace_files)
        return self._spans

    # metrics -----------------------------------------------------------------------------
    def metric_pods(self) -> list[str]:
        return sorted(self._metric_files)

    def metrics(self, pods: list[str], start_s: float, end_s: float) -> MetricFrames:
        missing = [p for p in pods if p not in self._metric_cache and p in self._metric_files]
        if len(missing) > 1:
            with ThreadPoolExecutor(max_workers=THREADS) as pool:
                list(pool.map(self._pod_frame, missing))
        return super().metrics(pods, start_s, end_s)

    def _pod_frame(self, pod: str) -> KpiBlock | None:
        if pod in self._metric_cache:
            return self._metric_cache[pod]
        path = self._metric_files.get(pod)
        if path is None:
            return None
        block = self._metric_block(read_table(path, ("TimeStamp",), ("Time", "PodName")))
        self._metric_cache[pod] = block
        return block

    def _metric_block(self, table: pa.Table) -> KpiBlock:
        """KPI samples by their own time; rows without a time dropped, repeated times once."""
        times = _sample_times(table, self.quality)
        kpis = tuple(c for c in table.column_names if c not in _NON_KPI)
        values = np.column_stack([_floats(table.column(c)) for c in kpis]) if kpis else np.empty((len(times), 0))
        keep = ~np.isnan(times)
        times, values = times[keep], values[keep]
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
        first = np.concatenate(([True], np.diff(times) > 0)) if len(times) else np.ones(0, bool)
        return KpiBlock(times[first], values[first], kpis)


def _concat(tables: list[pa.Table]) -> pd.DataFrame:
    """One frame from several files' tables; files whose columns were typed differently (a
    corrupt value turns a number column into text) are joined through pandas."""
    try:
        return pa.concat_tables(tables, promote_options="permissive").to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.concat([t.to_pandas() for t in tables], ignore_index=True)


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    """A column as float64, NaN where missing or not a number."""
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype="float64")
    floats: np.ndarray = pd.to_numeric(pd.Series(column.to_pandas()), errors="coerce").to_numpy(dtype="float64")
    return floats


def _sample_times(table: pa.Table, quality: DataQuality) -> np.ndarray:
    """Sample time in epoch seconds: the text ``Time`` when it parses, else ``TimeStamp``."""
    epoch = _floats(table.column("TimeStamp"))
    if "Time" not in table.column_names:
        return epoch
    text_s = _text_seconds(table.column("Time").combine_chunks())
    disagree = ~np.isnan(text_s) & (np.isnan(epoch) | (np.abs(text_s - epoch) > _EPOCH_TOLERANCE_S))
    if disagree.any():
        quality.add("metric rows whose epoch disagreed with their text time (text used)", int(disagree.sum()))
    chosen: np.ndarray = np.where(np.isnan(text_s), epoch, text_s)
    return chosen


def _text_seconds(text: pa.Array) -> np.ndarray:
    """Epoch seconds of Go time strings ("2023-01-30 11:39:53.71 +0000 UTC m=+0.89"); NaN if not."""
    stamp = pc.strptime(pc.utf8_slice_codeunits(text, 0, 19), format="%Y-%m-%d %H:%M:%S", unit="s",
                        error_is_null=True)
    seconds = pc.cast(stamp, pa.int64()).to_numpy(zero_copy_only=False).astype("float64")
    seconds = np.where(pc.is_null(stamp).to_numpy(zero_copy_only=False), np.nan, seconds)
    zone = pc.extract_regex(text, r"^\S+ \S+ (?P<zone>[+-]\d{4})").field("zone")
    zone = pc.fill_null(zone, "+0000").to_numpy(zero_copy_only=False)
    offsets = np.array([_offset_seconds(z) for z in zone]) if (zone != "+0000").any() else 0.0
    result: np.ndarray = seconds - offsets
    return result


def _offset_seconds(zone: str) -> float:
    if len(zone) < 5:  # no zone in an unparsable text time
        return 0.0
    sign = -1.0 if zone.startswith("-") else 1.0
    return sign * (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60)


_SERVICE_CACHE: dict[str, str] = {}


def _cached_service(pod: str) -> str:
    svc = _SERVICE_CACHE.get(pod)
    if svc is None:
        svc = _SERVICE_CACHE[pod] = service_of_pod(pod)
    return svc
