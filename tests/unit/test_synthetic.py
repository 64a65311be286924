"""The synthetic OnlineBoutique-like incident generator."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from thinkfl_operator.demo.synthetic import (
    FAULT_S,
    FAULTS,
    KPIS,
    SERVICES,
    SyntheticIncident,
    generate,
)
from thinkfl_operator.telemetry.naming import service_of_pod
from thinkfl_operator.telemetry.spans import COLUMNS

TEXT = ("trace_id", "span_id", "parent_id", "pod", "service", "node", "operation", "status", "kind")


@cache
def incident(fault: str = "network_delay", seed: int = 7) -> SyntheticIncident:
    return generate(seed=seed, fault=fault)


@cache
def small(seed: int) -> SyntheticIncident:
    return generate(seed=seed, minutes=10, traces_per_minute=10)


def in_window(inc: SyntheticIncident, start_us: pd.Series) -> pd.Series:
    lo, hi = inc.time_s * 1e6, (inc.time_s + FAULT_S) * 1e6
    return (start_us >= lo) & (start_us < hi)


def calls_into(inc: SyntheticIncident, pod: str) -> pd.DataFrame:
    """Client spans whose server span runs in ``pod``, with both durations."""
    spans = inc.spans
    server = spans[(spans["pod"] == pod) & spans["operation"].str.startswith("/")]
    joined = server.merge(
        spans, left_on=["trace_id", "parent_id"], right_on=["trace_id", "span_id"],
        suffixes=("_server", "_client"),
    )
    return joined.rename(columns={"start_us_client": "start_us"})


def test_same_seed_gives_identical_frames() -> None:
    a, b = small(3), generate(seed=3, minutes=10, traces_per_minute=10)
    pd.testing.assert_frame_equal(a.spans, b.spans)
    assert a.metrics.keys() == b.metrics.keys()
    for pod, frame in a.metrics.items():
        pd.testing.assert_frame_equal(frame, b.metrics[pod])
    assert (a.nodes, a.faulty_pod, a.time_s) == (b.nodes, b.faulty_pod, b.time_s)


def test_different_seed_gives_different_frames() -> None:
    a, b = small(3), small(4)
    assert set(a.nodes) != set(b.nodes)
    assert not set(a.spans["trace_id"]) & set(b.spans["trace_id"])
    assert not a.spans["duration_us"].equals(b.spans["duration_us"])


def test_span_columns_and_dtypes() -> None:
    inc = small(3)
    spans = inc.spans
    assert tuple(spans.columns) == COLUMNS
    assert spans["start_us"].dtype == np.int64
    assert spans["duration_us"].dtype == np.int64
    for col in TEXT:
        assert pd.api.types.is_string_dtype(spans[col]), col
    assert spans["trace_id"].str.fullmatch(r"[0-9a-f]{32}").all()
    assert spans["span_id"].str.fullmatch(r"[0-9a-f]{16}").all()
    assert spans["span_id"].is_unique
    assert (spans["duration_us"] > 0).all()
    assert set(spans["status"]) == {"0"}
    assert spans["start_us"].is_monotonic_increasing
    roots = spans[spans["parent_id"] == ""]
    assert len(roots) == spans["trace_id"].nunique() == 10 * 10
    assert set(roots["operation"]) == {"hipstershop.Frontend/Recv."}
    assert set(roots["service"]) == {"frontend"}


def test_every_parent_exists_in_its_trace() -> None:
    spans = small(3).spans
    children = spans[spans["parent_id"] != ""]
    known = set(zip(spans["trace_id"], spans["span_id"], strict=True))
    assert all(pair in known for pair in zip(children["trace_id"], children["parent_id"], strict=True))


def test_server_span_is_the_only_child_of_its_client_span() -> None:
    spans = small(3).spans
    clients = spans[spans["parent_id"] != ""]
    clients = clients[~clients["operation"].str.startswith("/")]
    kids = spans[spans["parent_id"].isin(set(clients["span_id"]))]
    assert len(kids) == len(clients)
    assert kids["operation"].str.startswith("/").all()


def test_pods_map_back_to_services_and_nodes() -> None:
    inc = small(3)
    pairs = inc.spans[["pod", "service"]].drop_duplicates()
    assert all(service_of_pod(p) == s for p, s in zip(pairs["pod"], pairs["service"], strict=True))
    assert all(service_of_pod(p) in SERVICES for p in inc.nodes)
    per_service = pd.Series([service_of_pod(p) for p in inc.nodes]).value_counts()
    assert set(per_service.index) == set(SERVICES)
    assert per_service.between(1, 2).all()
    assert set(inc.nodes.values()) <= {"node-1", "node-2", "node-3"}
    assert (inc.spans["node"] == inc.spans["pod"].map(inc.nodes)).all()
    assert service_of_pod(inc.faulty_pod) == inc.faulty_service == "recommendationservice"


def test_metric_frames() -> None:
    inc = small(3)
    assert set(inc.metrics) == set(inc.nodes)
    for frame in inc.metrics.values():
        assert tuple(frame.columns) == KPIS
        assert frame.index.name == "ts"
        assert frame.index.dtype == np.float64
        assert frame.index.is_monotonic_increasing
        assert np.allclose(np.diff(frame.index.to_numpy()), 60.0)
        assert frame.index[-1] == inc.time_s + FAULT_S


def test_network_delay_shows_in_the_callers_client_span() -> None:
    inc = incident("network_delay")
    calls = calls_into(inc, inc.faulty_pod)
    gap = calls["duration_us_client"] - calls["duration_us_server"]
    inside = in_window(inc, calls["start_us"])
    assert inside.sum() > 20
    assert gap[inside].median() > 100_000
    assert gap[~inside].median() < 5_000
    assert gap[inside].min() >= 200_000
    assert gap[~inside].between(300, 1_000).all()
    own = calls["duration_us_server"]
    assert own[inside].median() < 3 * own[~inside].median()


def test_cpu_contention_raises_the_cpu_kpi() -> None:
    inc = incident("cpu_contention")
    cpu = inc.metrics[inc.faulty_pod]["CpuUsageRate(%)"]
    ts = cpu.index
    base = cpu[ts < inc.time_s]
    window = cpu[(ts >= inc.time_s) & (ts <= inc.time_s + FAULT_S)]
    assert window.mean() > base.mean() + 3 * base.std()


def test_return_fault_cuts_server_spans_short() -> None:
    inc = incident("return")
    spans = inc.spans
    server = spans[(spans["pod"] == inc.faulty_pod) & spans["operation"].str.startswith("/")]
    inside = in_window(inc, server["start_us"])
    assert inside.sum() > 20
    assert not spans["parent_id"].isin(set(server.loc[inside, "span_id"])).any()
    assert spans["parent_id"].isin(set(server.loc[~inside, "span_id"])).any()


def test_store_returns_spans_by_time() -> None:
    inc = incident()
    store = inc.store()
    lo, hi = round(inc.time_s * 1e6), round((inc.time_s + 60) * 1e6)
    table = store.spans_between(lo, hi)
    expected = inc.spans[(inc.spans["start_us"] >= lo) & (inc.spans["start_us"] < hi)]
    assert len(table) == len(expected) > 0
    assert table.frame["start_us"].between(lo, hi - 1).all()
    assert store.node_of(inc.faulty_pod) == inc.nodes[inc.faulty_pod]
    assert store.service_of(inc.faulty_pod) == inc.faulty_service
    assert inc.faulty_pod in store.metrics([inc.faulty_pod], inc.time_s, inc.time_s + FAULT_S)


@pytest.mark.parametrize(
    ("kwargs", "allowed"),
    [({"fault": "disk_full"}, FAULTS[0]), ({"service": "nosuchservice"}, SERVICES[0])],
)
def test_bad_arguments_raise(kwargs: dict[str, str], allowed: str) -> None:
    with pytest.raises(ValueError, match=allowed):
        generate(**kwargs)  # type: ignore[arg-type]
