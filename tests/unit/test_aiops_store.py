"""AiopsStore over the RCLAgent-V2 sample and over small long-format metric folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.shared import shared_path
from thinkfl_operator.core.errors import DatasetError
from thinkfl_operator.core.models import Span
from thinkfl_operator.telemetry.aiops import AiopsStore, is_aiops_layout
from thinkfl_operator.telemetry.nezha import NezhaStore
from thinkfl_operator.telemetry.open import open_dataset

TRACE = "ae265c5b07acfe6cb3548eb855aa1357"
ROOT = "d1b3f238e544e3f0"
TRACE_HEADER = (
    "timestamp,cmdb_id,span_id,trace_id,duration,type,status_code,operation_name,parent_span\n"
)


def _sample() -> Path:
    return shared_path("datasets", "rclagent-v2-sample", "sample_data")


@pytest.mark.shared_data
def test_sample_trace_loads_with_root_and_ordered_children() -> None:
    store = open_dataset(_sample())
    assert isinstance(store, AiopsStore)
    trace = store.find_trace(TRACE)
    # The file holds 26 rows with 26 distinct span IDs (the dataset README says 25).
    assert len(trace) == 26
    root = trace.root()
    assert root is not None and root.span_id == ROOT and root.parent_span == ""
    assert (root.timestamp, root.duration, root.type) == (1647747340693, 13385835, "http")
    children = trace.children(ROOT)
    assert len(children) == 11
    starts = [c.timestamp for c in children]
    assert starts == sorted(starts) and starts[0] == 1647747340693
    assert {c.parent_span for c in children} == {ROOT}
    assert store.service_of("frontend-2") == "frontend"
    assert store.metric_pods() == []  # the sample ships no metrics


@pytest.mark.shared_data
def test_sample_keeps_status_and_kind_as_text() -> None:
    trace = open_dataset(_sample()).find_trace(TRACE)

    def span(span_id: str) -> Span:
        found = trace.span(span_id)
        assert found is not None
        return found

    assert span("6bd44260603f2742").status_code == "OK"
    assert span("f11f9febb3737f4e").status_code == "200"
    assert span("687bd3fd6f9ba94b").type == "db"
    assert span("af4c664b25ed29e3").type == ""  # an empty type stays empty, not "nan"
    assert span("b6d0fc6a971dfa53").service == "productcatalogservice"


def _write_layout(root: Path, metrics: str | None) -> Path:
    (root / "trace" / "all").mkdir(parents=True)
    (root / "trace" / "all" / "spans.csv").write_text(
        TRACE_HEADER
        + "1647747340693,frontend-2,0001,0000000000000001,1000,http,0,GET /,\n"
        + "1647747340700,cartservice2-0,0002,0000000000000001,200,rpc,0,GetCart,0001\n"
    )
    if metrics is not None:
        (root / "metric" / "all").mkdir(parents=True)
        (root / "metric" / "all" / "metrics.csv").write_text(metrics)
    return root


def test_numeric_looking_ids_stay_text(tmp_path: Path) -> None:
    store = AiopsStore(_write_layout(tmp_path, None))
    trace = store.find_trace("0000000000000001")
    assert len(trace) == 2
    root = trace.root()
    assert root is not None and root.span_id == "0001"
    child = trace.children("0001")[0]
    assert child.span_id == "0002" and child.service == "cartservice"
    assert store.metric_pods() == [] and store.node_of("frontend-2") == ""


def test_long_metrics_pivot_per_pod_and_give_pod_node(tmp_path: Path) -> None:
    metrics = (
        "timestamp,cmdb_id,kpi_name,value\n"
        "1647747400,node-6.cartservice-2,cpu,2.0\n"
        "1647747340,node-6.cartservice-2,cpu,1.0\n"
        "1647747340,node-6.cartservice-2,mem,50\n"
        "1647747340000,frontend-2,cpu,3.0\n"  # milliseconds
        "1647747340,node-6,node_cpu,70\n"
        "1647747400,node-6,node_cpu,NaN\n"
    )
    store = AiopsStore(_write_layout(tmp_path, metrics))
    assert store.metric_pods() == ["cartservice-2", "frontend-2"]
    assert store.metric_nodes() == ["node-6"]
    assert store.node_of("cartservice-2") == "node-6"
    assert store.node_of("frontend-2") == ""
    frames = store.metrics(["cartservice-2", "frontend-2", "node-6"], 1647747300, 1647747500)
    cart = frames["cartservice-2"].frame()
    assert cart.index.name == "ts" and cart.index.is_monotonic_increasing
    assert list(cart.index) == [1647747340.0, 1647747400.0]
    assert sorted(cart.columns) == ["cpu", "mem"]
    assert cart.loc[1647747400.0, "cpu"] == 2.0 and cart["mem"].isna().tolist() == [False, True]
    assert list(frames["frontend-2"].ts) == [1647747340.0]  # ms divided to s
    node = frames["node-6"].frame()
    assert node.loc[1647747340.0, "node_cpu"] == 70.0 and node["node_cpu"].isna().sum() == 1
    # Window selection uses the per-pod index.
    later = store.metrics(["cartservice-2"], 1647747390, 1647747500)["cartservice-2"]
    assert list(later.ts) == [1647747400.0]


def test_missing_metric_column_names_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"metrics\.csv.*kpi_name"):
        AiopsStore(_write_layout(tmp_path, "timestamp,cmdb_id,value\n1,a,2\n"))


def test_missing_trace_folder(tmp_path: Path) -> None:
    (tmp_path / "metric" / "all").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"no trace/ folder"):
        AiopsStore(tmp_path)
    assert not is_aiops_layout(tmp_path)


def test_missing_trace_column_names_file(tmp_path: Path) -> None:
    (tmp_path / "trace" / "all").mkdir(parents=True)
    bad = tmp_path / "trace" / "all" / "bad.csv"
    bad.write_text("timestamp,cmdb_id,span_id\n1,a,b\n")
    with pytest.raises(DatasetError, match=r"bad\.csv: missing column trace_id"):
        AiopsStore(tmp_path)


def test_open_dataset_dispatch(tmp_path: Path) -> None:
    assert isinstance(open_dataset(_write_layout(tmp_path / "a", None)), AiopsStore)
    (tmp_path / "2023-01-30" / "trace").mkdir(parents=True)
    assert isinstance(open_dataset(tmp_path / "2023-01-30"), NezhaStore)
    with pytest.raises(DatasetError, match="no such folder"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="not a dataset folder"):
        open_dataset(tmp_path / "empty")
