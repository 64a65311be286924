"""The Nezha layout (``rca_data/<day>``): per-minute trace CSVs, per-pod metric CSVs and, where
the day has them, per-minute log CSVs (``telemetry.nezha_logs``).

Files are read lazily and cached. File names (``HH_MM_trace.csv``) are only a hint for which
files may hold a time range: spans and samples are always selected by their own timestamps,
because on some days files are cut at odd seconds, overlap, or cover several minutes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from thinkfl_operator.core.errors import DatasetError
from thinkfl_operator.telemetry.csvio import THREADS, header_names, read_table
from thinkfl_operator.telemetry.memory import MemoryStore
from thinkfl_operator.telemetry.minutefiles import files_near, folder_day
from thinkfl_operator.telemetry.naming import service_of_pod
from thinkfl_operator.telemetry.nezha_logs import NezhaLogs, has_logs
from thinkfl_operator.telemetry.quality import DataQuality
from thinkfl_operator.telemetry.spans import (
    arrow_codes,
    categorical,
    clean_columns,
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
_INT_COLUMNS = ("StartTimeUnixNano", "EndTimeUnixNano", "Duration")
#: The columns of a well-formed trace file and their types.
_TRACE_TYPES = {**{c: pa.string() for c in _TRACE_TEXT}, **{c: pa.int64() for c in _INT_COLUMNS}}
_ROOTS = pa.array(["root", "Root", "ROOT"])
_METRIC_SUFFIX = "_metric.csv"
#: Metric columns that are not KPIs.
_NON_KPI = {"Time", "TimeStamp", "PodName", "ServiceName"}
#: A Go time text whose zone is not +0000 (the zone is the third word).
_ZONE_NOT_UTC = r"^\S+ \S+ (?:-\d{4}|\+(?:[1-9]\d{3}|0[1-9]\d{2}|00[1-9]\d|000[1-9]))"
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
        typed = _read_typed(new)
        batch = _clean_batch(typed, self.quality) if typed is not None else None
        if batch is None:  # a file with text in a number column, a gap, a missing column
            tables = [read_table(path, TRACE_COLUMNS, _TRACE_TEXT) for path in new]
            batch = self._normalize(_concat(tables))
        self._loaded.update(new)
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
        if len(missing) > 1:  # parsed at once (without the GIL), the rest done for all at once
            with ThreadPoolExecutor(max_workers=THREADS) as pool:
                read = list(pool.map(_try_read_metric_file, [self._metric_files[p] for p in missing]))
            self._read_blocks(missing, read)
        return super().metrics(pods, start_s, end_s)

    def _pod_frame(self, pod: str) -> KpiBlock | None:
        if pod in self._metric_cache:
            return self._metric_cache[pod]
        path = self._metric_files.get(pod)
        if path is None:
            return None
        self._read_blocks([pod], [_read_metric_file(path)])
        return self._metric_cache[pod]

    def _read_blocks(self, pods: list[str], read: list[pa.Table | None | Exception]) -> None:
        """The KPI blocks of these pods' metric files, cached, from what ``_read_metric_file``
        made of each (None: the file is read with the types inferred, as ever; an error is
        raised in the pods' order): the text times of all the files parsed at once."""
        tables: list[tuple[pa.Table, tuple[str, ...], np.ndarray]] = []
        for pod, table in zip(pods, read, strict=True):
            if isinstance(table, Exception):
                raise table
            if table is not None:
                kpis, values = _kpi_values(table)
                if _negative_zero(values) or _negative_zero(_floats(table.column("TimeStamp"))):
                    table = None  # a -0 where the types inferred may have read an integer, +0
            if table is None:  # types inferred, as ever
                table = read_table(self._metric_files[pod], ("TimeStamp",), ("Time", "PodName"))
                kpis, values = _kpi_values(table)
            tables.append((table, kpis, values))
        text_times = _text_seconds_of([t for t, _, _ in tables])
        for pod, (table, kpis, values), text_s in zip(pods, tables, text_times, strict=True):
            self._metric_cache[pod] = self._metric_block(table, kpis, values, text_s)

    def _metric_block(self, table: pa.Table, kpis: tuple[str, ...], values: np.ndarray,
                      text_s: np.ndarray | None = None) -> KpiBlock:
        """KPI samples (``_kpi_values`` of ``table``) by their own time; rows without a time
        dropped, repeated times once (``text_s``: the text times, when parsed already). Rows
        taken only where some are dropped or out of order."""
        times = _sample_times(table, self.quality, text_s)
        keep = ~np.isnan(times)
        if not keep.all():
            times, values = times[keep], values[keep]
        if len(times) > 1 and (np.diff(times) < 0).any():
            order = np.argsort(times, kind="stable")
            times, values = times[order], values[order]
        first = np.concatenate(([True], np.diff(times) > 0)) if len(times) else np.ones(0, bool)
        if not first.all():
            times, values = times[first], values[first]
        return KpiBlock(times, values, kpis)


def _read_typed(paths: list[Path]) -> pa.Table | None:
    """The trace files as one table with the types of a well-formed file (IDs and names as
    text, times and durations as int64): one parse per file, no type inference, several files
    at once (pyarrow parses a file smaller than its block size, 1 MB, on one core: minute files
    are). None when a file does not parse so (``read_table`` then reads the batch as before, and
    says which file is malformed)."""
    tables = []
    # each file on one core when there are several (pyarrow's own threads on top cost more)
    options = pacsv.ReadOptions(use_threads=len(paths) == 1)
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        # in order: the first bad file decides
        for table in pool.map(partial(_read_trace_file, options=options), paths):
            if table is None:
                return None
            tables.append(table)
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _read_trace_file(path: Path, options: pacsv.ReadOptions) -> pa.Table | None:
    names = header_names(path, TRACE_COLUMNS)
    wanted = [c for c in _TRACE_TYPES if c in names]
    # UTF-8 checked once per column below, not cell by cell while parsing (~15% of the parse)
    convert = pacsv.ConvertOptions(column_types={c: _TRACE_TYPES[c] for c in wanted},
                                   include_columns=wanted, strings_can_be_null=True, check_utf8=False)
    try:
        table = pacsv.read_csv(path, read_options=options, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError):
        return None
    return table if all(_valid_utf8(table.column(c)) for c in _TRACE_TEXT if c in wanted) else None


def _valid_utf8(column: pa.ChunkedArray) -> bool:
    """Whether a text column read without the parser's UTF-8 check is valid UTF-8 (as that
    check would have found): ASCII bytes are, else Arrow's full validation says."""
    for chunk in column.chunks:
        data = chunk.buffers()[2]
        if data is None or not data.size or int(np.frombuffer(data, dtype=np.uint8).max()) < 0x80:
            continue
        try:
            chunk.validate(full=True)
        except pa.ArrowInvalid:
            return False
    return True


def _clean_batch(table: pa.Table, quality: DataQuality) -> pd.DataFrame | None:
    """``clean_spans(self._normalize(table))`` in Arrow and numpy, the frame built once, for a
    batch whose starts and durations (and ends, if any) are all whole numbers, as on every
    well-formed day; None, nothing tallied, for any other (``_normalize`` then reads it)."""
    names = table.column_names
    if table.num_rows == 0 or any(c not in names for c in (*_TRACE_TEXT, "StartTimeUnixNano", "Duration")):
        return None
    if any(table.column(c).type != pa.int64() or table.column(c).null_count for c in _INT_COLUMNS if c in names):
        return None
    start_ns = table.column("StartTimeUnixNano").to_numpy()
    duration = table.column("Duration").to_numpy()
    if "EndTimeUnixNano" in names:  # as ``_normalize``: a corrupt start next to a sane end
        end_ns = table.column("EndTimeUnixNano").to_numpy()
        rebuilt = end_ns - duration * 1000
        median = float(np.median(end_ns.astype("float64")))
        fixable = (np.abs(start_ns - median) > 86_400e9) & (np.abs(rebuilt - median) <= 86_400e9)
        if fixable.any():
            quality.add("span start times rebuilt from end − duration", int(fixable.sum()))
            start_ns = np.where(fixable, rebuilt, start_ns)
    text = {c: _filled(table.column(c)) for c in _TRACE_TEXT}
    parent = pc.if_else(pc.is_in(text["ParentID"], value_set=_ROOTS), "", text["ParentID"])
    pod_codes, pods = arrow_codes(text["PodName"])
    return clean_columns(
        {"trace_id": text["TraceID"], "span_id": text["SpanID"], "parent_id": parent},
        {"pod": (pod_codes, pods), "service": _services(pod_codes, pods),
         "operation": arrow_codes(text["OperationName"])},
        start_ns // 1000, duration, quality)


def _filled(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A text column, "" where missing (``text_column``); its chunks (a file's each) kept:
    the rows are taken once, at the end (no copy of the whole text before)."""
    return pc.fill_null(column, "") if column.null_count else column


def _services(pod_codes: np.ndarray, pods: list[str]) -> tuple[np.ndarray, list[str]]:
    """The service of each row from its pod's code: the codes and categories ``_normalize``
    gives (services in order of first appearance)."""
    names = [_cached_service(p) for p in pods]
    if len(set(names)) == len(names):
        return pod_codes, names
    services = list(dict.fromkeys(names))
    of_pod = np.array([services.index(n) for n in names], dtype="int64")
    return of_pod[pod_codes], services


def _kpi_values(table: pa.Table) -> tuple[tuple[str, ...], np.ndarray]:
    """The KPI columns of a metric table and their values as float64 (rows × KPIs)."""
    names = table.column_names
    kpis = tuple(c for c in names if c not in _NON_KPI)
    columns = [i for i, c in enumerate(names) if c not in _NON_KPI]
    if kpis and table.num_rows and all(table.schema.field(i).type == pa.float64() for i in columns):
        batches = table.select(columns).to_batches()
        if len(batches) == 1:  # float columns, one copy (their nulls are NaN)
            return kpis, np.asarray(batches[0].to_tensor(null_to_nan=True, row_major=True))
    values = np.empty((table.num_rows, len(kpis)), dtype="float64")
    for i, kpi in enumerate(kpis):
        column = table.column(kpi)
        # a float column as it is (its nulls are NaN), any other through ``_floats``
        values[:, i] = column.to_numpy() if column.type == pa.float64() and not column.null_count \
            else _floats(column)
    return kpis, values


def _negative_zero(values: np.ndarray) -> bool:
    return bool((np.signbit(values) & (values == 0)).any())


def _read_metric_file(path: Path) -> pa.Table | None:
    """A metric CSV with every KPI and the epoch parsed straight as float64 (what
    ``_kpi_values`` and ``_sample_times`` make of them), the text time as text, the names left
    out: no type inference. None when a column does not parse so (``read_table`` then infers
    the types, as before)."""
    names = header_names(path, ("TimeStamp",))
    wanted = [n for n in names if n not in ("PodName", "ServiceName")]
    if len(set(names)) < len(names):
        return None
    types = {n: pa.string() if n == "Time" else pa.float64() for n in wanted}
    convert = pacsv.ConvertOptions(column_types=types, include_columns=wanted, strings_can_be_null=True)
    try:
        table = pacsv.read_csv(path, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError):
        return None
    if table.schema.names != wanted or any(table.schema.field(n).type != types[n] for n in wanted):
        return None
    return table


def _try_read_metric_file(path: Path) -> pa.Table | None | Exception:
    """``_read_metric_file``, an error returned (to be raised in the files' order)."""
    try:
        return _read_metric_file(path)
    except Exception as exc:  # noqa: BLE001 (raised by ``_read_blocks``)
        return exc


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


def _sample_times(table: pa.Table, quality: DataQuality, text_s: np.ndarray | None = None) -> np.ndarray:
    """Sample time in epoch seconds: the text ``Time`` when it parses (``text_s``: parsed
    already), else ``TimeStamp``."""
    epoch = _floats(table.column("TimeStamp"))
    if "Time" not in table.column_names:
        return epoch
    if text_s is None:
        text_s = _text_seconds(table.column("Time").combine_chunks())
    disagree = ~np.isnan(text_s) & (np.isnan(epoch) | (np.abs(text_s - epoch) > _EPOCH_TOLERANCE_S))
    if disagree.any():
        quality.add("metric rows whose epoch disagreed with their text time (text used)", int(disagree.sum()))
    chosen: np.ndarray = np.where(np.isnan(text_s), epoch, text_s)
    return chosen


def _text_seconds_of(tables: list[pa.Table]) -> list[np.ndarray | None]:
    """``_text_seconds`` of each table's text ``Time`` column, all parsed at once (None: a
    table without one)."""
    texts = [t.column("Time") if "Time" in t.column_names and t.schema.field("Time").type == pa.string()
             else None for t in tables]
    chunks = [chunk for text in texts if text is not None for chunk in text.chunks]
    try:
        seconds = _text_seconds(pa.concat_arrays(chunks) if chunks else pa.array([], pa.string()))
    except (pa.ArrowInvalid, pa.ArrowCapacityError):  # too much text for one array: apart
        return [None if text is None else _text_seconds(text.combine_chunks()) for text in texts]
    out: list[np.ndarray | None] = []
    at = 0
    for text in texts:
        if text is None:
            out.append(None)
        else:
            out.append(seconds[at:at + len(text)])
            at += len(text)
    return out


def _text_seconds(text: pa.Array) -> np.ndarray:
    """Epoch seconds of Go time strings ("2023-01-30 11:39:53.71 +0000 UTC m=+0.89"); NaN if not."""
    stamp = pc.strptime(pc.utf8_slice_codeunits(text, 0, 19), format="%Y-%m-%d %H:%M:%S", unit="s",
                        error_is_null=True)
    seconds = pc.cast(stamp, pa.int64()).to_numpy(zero_copy_only=False).astype("float64")
    seconds = np.where(pc.is_null(stamp).to_numpy(zero_copy_only=False), np.nan, seconds)
    offsets: np.ndarray | float = 0.0
    if pc.any(pc.match_substring_regex(text, _ZONE_NOT_UTC)).as_py():  # (no capture: cheaper)
        zone = pc.extract_regex(text, r"^\S+ \S+ (?P<zone>[+-]\d{4})").field("zone")
        zones = pc.dictionary_encode(pc.fill_null(zone, "+0000"))  # each zone's offset once
        of_zone = np.array([_offset_seconds(z) for z in zones.dictionary.to_pylist()], dtype="float64")
        offsets = of_zone[zones.indices.to_numpy(zero_copy_only=False)]
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
