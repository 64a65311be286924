"""The AIOps-2022 layout (as in the RCLAgent-V2 sample): ``trace/all/*.csv``, ``metric/all/*.csv``.

Traces: ``timestamp(ms),cmdb_id,span_id,trace_id,duration(µs),type,status_code,operation_name,
parent_span`` (the unit suffixes are optional; an empty ``parent_span`` marks the root).
Metrics (optional): the long format ``timestamp,cmdb_id,kpi_name,value`` where ``cmdb_id`` is a
pod (``frontend-2``), ``node.pod`` (``node-6.cartservice-2``) or a node (``node-6``). Pod KPIs
become per-pod frames, node KPIs a frame keyed by the node name, and ``node.pod`` IDs give the
pod → node map. Everything is read once, eagerly: the layout holds one incident's worth of data.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from thinkfl_operator.core.errors import DatasetError
from thinkfl_operator.telemetry.csvio import read_csv
from thinkfl_operator.telemetry.memory import MemoryStore
from thinkfl_operator.telemetry.naming import service_of_aiops_pod

#: pod (or node) → KPI frame indexed by epoch seconds.
FrameMap = dict[str, pd.DataFrame]

#: Accepted spellings of each trace column (first found wins).
_TRACE_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp(ms)", "timestamp"),
    "cmdb_id": ("cmdb_id",),
    "span_id": ("span_id",),
    "trace_id": ("trace_id",),
    "duration": ("duration(µs)", "duration(us)", "duration"),
    "type": ("type",),
    "status_code": ("status_code",),
    "operation_name": ("operation_name",),
    "parent_span": ("parent_span",),
}
_TRACE_TEXT = ("cmdb_id", "span_id", "trace_id", "type", "status_code", "operation_name",
               "parent_span")
_METRIC_COLUMNS = ("timestamp", "cmdb_id", "kpi_name", "value")
#: Timestamps above this are milliseconds, below it seconds.
_MS_THRESHOLD = 1e11
_NODE_NAME = re.compile(r"^node-\d+$")


def is_aiops_layout(path: Path) -> bool:
    return (path / "trace" / "all").is_dir()


class AiopsStore(MemoryStore):
    """One AIOps-2022 style folder (``trace/all``, optional ``metric/all``)."""

    name = "aiops"

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise DatasetError(root, "no such folder")
        trace_dir = root / "trace" / "all"
        if not trace_dir.is_dir():
            missing = "trace/" if not (root / "trace").is_dir() else "trace/all/"
            raise DatasetError(root, f"no {missing} folder (expected trace/all/*.csv traces)")
        trace_files = sorted(trace_dir.glob("*.csv"))
        if not trace_files:
            raise DatasetError(trace_dir, "no *.csv trace files")
        self.root = root
        metric_dir = root / "metric" / "all"
        metric_files = sorted(metric_dir.glob("*.csv")) if metric_dir.is_dir() else []
        metrics, node_metrics, nodes = _read_metrics(metric_files)
        spans = pd.concat([_read_trace_file(p) for p in trace_files], ignore_index=True)
        spans["node"] = spans["pod"].map(lambda pod: nodes.get(pod, ""))
        super().__init__(
            spans=spans,
            metrics={**node_metrics, **metrics},
            nodes=nodes,
            service_of=service_of_aiops_pod,
        )
        self._pod_names = sorted(metrics)
        self._node_names = sorted(node_metrics)

    def metric_pods(self) -> list[str]:
        """Pods with KPI series (node frames are left out; see ``metric_nodes``)."""
        return list(self._pod_names)

    def metric_nodes(self) -> list[str]:
        """Nodes with KPI series (their frames are in ``metrics`` under the node name)."""
        return list(self._node_names)


def _read_trace_file(path: Path) -> pd.DataFrame:
    header = _header(path)
    names: dict[str, str] = {}
    for key, aliases in _TRACE_ALIASES.items():
        found = next((a for a in aliases if a in header), None)
        if found is None:
            raise DatasetError(
                path, f"missing column {aliases[0]}; header is {','.join(header)[:200]!r}"
            )
        names[key] = found
    raw = read_csv(path, tuple(names.values()), tuple(names[c] for c in _TRACE_TEXT))
    pods = raw[names["cmdb_id"]].fillna("").astype(str)
    start_ms = pd.to_numeric(raw[names["timestamp"]], errors="coerce")
    return pd.DataFrame(
        {
            "trace_id": raw[names["trace_id"]],
            "span_id": raw[names["span_id"]],
            "parent_id": raw[names["parent_span"]].fillna("").astype(str),
            "pod": pods,
            "service": pods.map(service_of_aiops_pod),
            "node": "",
            "operation": raw[names["operation_name"]],
            "start_us": start_ms * 1000,
            "duration_us": pd.to_numeric(raw[names["duration"]], errors="coerce"),
            "status": raw[names["status_code"]].fillna("").astype(str),
            "kind": raw[names["type"]].fillna("").astype(str),
        }
    )


def _header(path: Path) -> list[str]:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            line = fh.readline()
    except OSError as exc:
        raise DatasetError(path, f"cannot read: {exc.strerror or exc}") from None
    return [h.strip().lstrip("\ufeff") for h in line.strip().split(",")]


def _read_metrics(files: list[Path]) -> tuple[FrameMap, FrameMap, dict[str, str]]:
    """(pod frames, node frames, pod → node) from long-format metric CSVs."""
    if not files:
        return {}, {}, {}
    parts = []
    for path in files:
        raw = read_csv(path, _METRIC_COLUMNS, ("cmdb_id", "kpi_name"))
        parts.append(raw[list(_METRIC_COLUMNS)])
    long = pd.concat(parts, ignore_index=True)
    ts = pd.to_numeric(long["timestamp"], errors="coerce").astype("float64")
    long = long.assign(
        ts=np.where(ts > _MS_THRESHOLD, ts / 1000.0, ts),
        value=pd.to_numeric(long["value"], errors="coerce").astype("float64"),
        cmdb_id=long["cmdb_id"].fillna("").astype(str).str.strip(),
        kpi_name=long["kpi_name"].fillna("").astype(str).str.strip(),
    )
    long = long[long["ts"].notna() & (long["cmdb_id"] != "") & (long["kpi_name"] != "")]
    split = long["cmdb_id"].str.split(".", n=2, expand=True)
    first = split[0]
    second = split[1] if 1 in split else pd.Series(None, index=long.index, dtype=object)
    extra = split[2] if 2 in split else pd.Series(None, index=long.index, dtype=object)
    has_pod_part = second.notna() & (second != "")
    known_nodes = set(first[has_pod_part]) | {n for n in first if _NODE_NAME.match(n)}
    is_node = ~has_pod_part & first.isin(known_nodes)
    owner = first.where(~has_pod_part, second)
    # Longer IDs (node.pod.more, e.g. istio edges) keep the rest in the KPI name.
    kpi = long["kpi_name"].where(extra.isna(), long["kpi_name"] + "." + extra.fillna(""))
    long = long.assign(owner=owner, kpi=kpi, is_node=is_node)
    nodes = dict(zip(second[has_pod_part], first[has_pod_part], strict=True))
    pods = _pivot(long[~long["is_node"]])
    node_frames = _pivot(long[long["is_node"]])
    return pods, node_frames, nodes


def _pivot(long: pd.DataFrame) -> FrameMap:
    out: FrameMap = {}
    for owner, rows in long.groupby("owner", sort=True):
        frame = rows.pivot_table(index="ts", columns="kpi", values="value", aggfunc="mean",
                                 dropna=False)
        frame = frame.sort_index().astype("float64")
        frame.index = pd.Index(frame.index.astype("float64"), name="ts")
        frame.columns = pd.Index([str(c) for c in frame.columns])
        out[str(owner)] = frame
    return out
