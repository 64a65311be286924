"""The three tools over a MemoryStore built from a tiny hand-written spans frame."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from thinkfl_operator.core.models import Candidate
from thinkfl_operator.evidence.toolbox import TOOL_NAMES, Toolbox, tool_call_text
from thinkfl_operator.telemetry.memory import MemoryStore
from thinkfl_operator.telemetry.spans import COLUMNS

T_MS = 1_647_758_897_785
T_S = T_MS // 1000
TRACE = "f25cf75421090eef9c6c14270f1eb385"
CART = "cartservice-7f8d9c6b5d-abcde"


def _span(span: str, parent: str, pod: str, service: str, op: str, start_ms: int, dur_us: int,
          status: str = "0", kind: str = "rpc") -> dict[str, object]:
    return {"trace_id": TRACE, "span_id": span, "parent_id": parent, "pod": pod,
            "service": service, "node": "node-6" if pod == CART else "", "operation": op,
            "start_us": start_ms * 1000, "duration_us": dur_us, "status": status, "kind": kind}


def _spans() -> pd.DataFrame:
    rows = [
        _span("a260c8c867cf4b1c", "", "frontend-2", "frontend", "hipstershop.Frontend/Recv.",
              T_MS, 17_244_804, kind="http"),
        # children of the root, written out of start order
        _span("c3", "a260c8c867cf4b1c", "frontend-2", "frontend",
              "hipstershop.AdService/GetAds", T_MS + 30, 4_000),
        _span("91486122a04fec40", "a260c8c867cf4b1c", "frontend-2", "frontend",
              "hipstershop.CartService/GetCart", T_MS + 10, 17_132_774),
        _span("c2", "a260c8c867cf4b1c", "frontend-2", "frontend",
              "hipstershop.CurrencyService/Convert", T_MS + 20, 2_000, status="2"),
        _span("d55ed143102a3146", "91486122a04fec40", CART, "cartservice",
              "/hipstershop.CartService/GetCart", T_MS + 1049, 16_177_000, status="200",
              kind="http"),
    ]
    frame = pd.DataFrame(rows)
    assert tuple(frame.columns) == COLUMNS
    return frame


def _metrics() -> dict[str, pd.DataFrame]:
    ts = float(T_S) + 60.0 * np.arange(-30, 31, dtype=np.float64)
    cpu = 0.49 + np.random.default_rng(1).normal(0.0, 0.005, len(ts))
    cpu[31] += 0.5  # one minute after T
    frame = pd.DataFrame({"container_cpu_usage_seconds": cpu, "flat": np.ones(len(ts))},
                         index=pd.Index(ts, name="ts"))
    return {CART: frame}


@pytest.fixture
def tools() -> Toolbox:
    store = MemoryStore(_spans(), _metrics(), nodes={CART: "node-6"})
    table = store.spans_between(0, 2**62)
    assert len(table) == 5
    return Toolbox(store, table)


def test_search_traces_returns_children_by_start_time_in_training_format(tools: Toolbox) -> None:
    children, text = tools.search_traces("a260c8c867cf4b1c")
    assert [c.span_id for c in children] == ["91486122a04fec40", "c2", "c3"]
    items = json.loads(text)
    assert [it["span_id"] for it in items] == ["91486122a04fec40", "c2", "c3"]
    assert text.startswith(
        '[{"cmdb_id":"frontend-2","duration":17132774,"operation_name":'
        '"hipstershop.CartService/GetCart","parent_span":"a260c8c867cf4b1c",'
        '"span_id":"91486122a04fec40","status_code":"0","timestamp":1647758897795,'
        '"trace_id":"f25cf75421090eef9c6c14270f1eb385","type":"rpc"}, {'
    )
    assert all(list(it) == sorted(it) and len(it) == 9 for it in items)


def test_search_traces_records_a_one_line_step(tools: Toolbox) -> None:
    _, text = tools.search_traces("a260c8c867cf4b1c")
    assert len(tools.steps) == 1
    step = tools.steps[0]
    assert step.tool == "search_traces"
    assert step.arguments == {"parent_span_id": "a260c8c867cf4b1c"}
    assert step.output == text
    assert "\n" not in step.summary
    assert "3 child span(s)" in step.summary
    assert "hipstershop.CartService/GetCart" in step.summary  # the slowest child
    assert "1 with error status" in step.summary


def test_search_traces_keeps_status_and_type_of_a_deeper_span(tools: Toolbox) -> None:
    _, text = tools.search_traces("91486122a04fec40")
    assert json.loads(text) == [{
        "cmdb_id": CART, "duration": 16177000, "operation_name": "/hipstershop.CartService/GetCart",
        "parent_span": "91486122a04fec40", "span_id": "d55ed143102a3146", "status_code": "200",
        "timestamp": T_MS + 1049, "trace_id": TRACE, "type": "http"}]
    assert "error" not in tools.steps[-1].summary


def test_unknown_parent_gives_an_empty_list_and_says_so(tools: Toolbox) -> None:
    children, text = tools.search_traces("ffffffffffffffff")
    assert children == [] and text == "[]"
    assert tools.steps[-1].summary == "no child spans under ffffffffffffffff"
    _, leaf = tools.search_traces("d55ed143102a3146")
    assert leaf == "[]"
    assert len(tools.steps) == 2


def test_fluctuating_metrics_finds_the_spike_with_node_key(tools: Toolbox) -> None:
    found, text = tools.search_fluctuating_metrics("cartservice", str(T_MS))
    assert [f.key for f in found] == [f"node-6.{CART}.container_cpu_usage_seconds"]
    parsed = json.loads(text)
    assert list(parsed) == [f"node-6.{CART}.container_cpu_usage_seconds"]
    step = tools.steps[-1]
    assert step.tool == "search_fluctuating_metrics"
    assert step.arguments == {"service_name": "cartservice", "timestamp": str(T_MS)}
    assert step.summary.startswith("1 fluctuating metric(s) for cartservice")


def test_fluctuating_metrics_of_a_service_without_series(tools: Toolbox) -> None:
    found, text = tools.search_fluctuating_metrics("frontend", T_S)
    assert found == [] and text == "{}"
    assert tools.steps[-1].summary == "no fluctuating metrics for frontend"


def test_bad_timestamp_is_an_error_text_and_a_step_not_an_exception(tools: Toolbox) -> None:
    found, text = tools.search_fluctuating_metrics("cartservice", "yesterday")
    assert found == []
    assert text.startswith("Error: ") and "yesterday" in text
    step = tools.steps[-1]
    assert step.tool == "search_fluctuating_metrics"
    assert step.arguments == {"service_name": "cartservice", "timestamp": "yesterday"}
    assert step.output == text


def test_print_results_records_the_final_step(tools: Toolbox) -> None:
    tools.search_traces("a260c8c867cf4b1c")
    answer = [Candidate(service="cartservice"), Candidate(pod=CART), Candidate(node="node-6")]
    assert tools.print_results(answer) == "Results printed."
    step = tools.steps[-1]
    assert [s.tool for s in tools.steps] == ["search_traces", "print_results"]
    assert step.arguments == {"root_causes": [{"service": "cartservice"}, {"pod": CART},
                                              {"node": "node-6"}]}
    assert step.summary == f"final answer: cartservice, {CART}, node-6"
    assert set(TOOL_NAMES) >= {s.tool for s in tools.steps}


def test_tool_call_text_matches_the_seed_reply_format() -> None:
    assert tool_call_text("search_traces", {"parent_span_id": "a260c8c867cf4b1c"}) == (
        '<tool_call>{"name": "search_traces", "arguments": '
        '"{\\"parent_span_id\\": \\"a260c8c867cf4b1c\\"}"}</tool_call>'
    )


def test_trace_is_the_span_tables_trace_made_once(tools: Toolbox) -> None:
    for trace_id in dict.fromkeys(tools.spans.frame["trace_id"]):
        table = tools.trace(trace_id)
        assert tools.trace(trace_id) is table
        pd.testing.assert_frame_equal(table.frame, tools.spans.trace(trace_id).frame)
        assert table.root() == tools.spans.trace(trace_id).root()


def test_pods_of_are_the_pods_whose_service_it_is(tools: Toolbox) -> None:
    pods = tools.store.metric_pods()
    names = {*pods, *(tools.store.service_of(p) for p in pods), "unknown", ""}
    for name in sorted(names):
        expected = [name] if name in pods else [p for p in pods if tools.store.service_of(p) == name]
        assert tools.pods_of(name) == expected
        tools.pods_of(name).append("changed")  # a copy each time
        assert tools.pods_of(name) == expected
