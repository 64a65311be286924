"""Training-format rendering: root-span table, child-span JSON, metric maps, and their caps."""

from __future__ import annotations

import json

import pytest

from tests.shared import shared_path
from thinkfl_operator.core.models import Fluctuation, Span
from thinkfl_operator.evidence import metrics as metric_tool
from thinkfl_operator.evidence.formatting import metrics_json, root_span_table, spans_json
from thinkfl_operator.telemetry.aiops import AiopsStore

SAMPLE_TRACE = "ae265c5b07acfe6cb3548eb855aa1357"

#: The first tool answer of the seed README's conversation, one item of it, byte for byte.
SEED_SPAN_TEXT = (
    '{"cmdb_id":"frontend-2","duration":17132774,"operation_name":'
    '"hipstershop.CartService/GetCart","parent_span":"a260c8c867cf4b1c",'
    '"span_id":"91486122a04fec40","status_code":"0","timestamp":1647758897795,'
    '"trace_id":"f25cf75421090eef9c6c14270f1eb385","type":"rpc"}'
)


def _seed_span(**changes: object) -> Span:
    fields: dict[str, object] = {
        "trace_id": "f25cf75421090eef9c6c14270f1eb385",
        "span_id": "91486122a04fec40",
        "parent_span": "a260c8c867cf4b1c",
        "cmdb_id": "frontend-2",
        "service": "frontend",
        "operation_name": "hipstershop.CartService/GetCart",
        "timestamp": 1647758897795,
        "duration": 17132774,
        "status_code": "0",
        "type": "rpc",
    }
    fields.update(changes)
    return Span(**fields)  # type: ignore[arg-type]


# root span table ------------------------------------------------------------------------------

@pytest.mark.shared_data
def test_root_span_table_matches_the_sample_error_trace_text() -> None:
    sample = shared_path("datasets", "rclagent-v2-sample", "sample_data")
    root = AiopsStore(sample).find_trace(SAMPLE_TRACE).root()
    assert root is not None
    expected = (sample / "error_traces.txt").read_text(encoding="utf-8").rstrip("\n")
    assert root_span_table(root) == expected


def test_root_span_table_has_header_then_one_indexed_row() -> None:
    text = root_span_table(_seed_span(parent_span=""), index=5159784)
    header, row = text.split("\n")
    assert header.split() == ["timestamp", "cmdb_id", "span_id", "trace_id", "duration", "type",
                              "status_code", "operation_name", "parent_span"]
    assert row.split()[0] == "5159784"
    assert row.split()[-1] == "NaN"  # a root span prints its missing parent as NaN


# child spans ---------------------------------------------------------------------------------

def test_spans_json_reproduces_the_seed_tool_answer_byte_for_byte() -> None:
    assert spans_json([_seed_span()], 6000) == "[" + SEED_SPAN_TEXT + "]"


def test_spans_json_keeps_slashes_and_non_ascii_unescaped() -> None:
    text = spans_json([_seed_span(operation_name="/café/GetCart")], 6000)
    assert '"operation_name":"/café/GetCart"' in text
    assert "\\/" not in text and "\\u" not in text


def test_spans_json_items_are_joined_like_the_seed_list() -> None:
    spans = [_seed_span(span_id=f"{i:016x}") for i in range(2)]
    text = spans_json(spans, 6000)
    assert text.startswith("[{") and text.endswith("}]")
    assert "}, {" in text
    assert [item["span_id"] for item in json.loads(text)] == ["0000000000000000",
                                                              "0000000000000001"]


def test_spans_json_cap_keeps_whole_items_and_counts_the_rest() -> None:
    spans = [_seed_span(span_id=f"{i:016x}") for i in range(10)]
    item_len = len(SEED_SPAN_TEXT)
    text = spans_json(spans, 2 + 3 * (item_len + 2))  # room for exactly three items
    body, note = text.split("\n")
    items = json.loads(body)  # the shown part is itself valid JSON: no item was cut
    assert len(items) == 3
    assert [it["span_id"] for it in items] == [f"{i:016x}" for i in range(3)]
    assert note == "(7 more spans not shown)"


def test_spans_json_shows_at_least_one_item_even_under_a_tiny_cap() -> None:
    text = spans_json([_seed_span(), _seed_span(span_id="x")], 10)
    body, note = text.split("\n")
    assert body == "[" + SEED_SPAN_TEXT + "]"
    assert note == "(1 more spans not shown)"


def test_spans_json_uncapped_has_no_note() -> None:
    assert "\n" not in spans_json([_seed_span()] * 3, 100_000)
    assert spans_json([], 100) == "[]"


# metrics ------------------------------------------------------------------------------------

def _fluct(key: str, pod: str, kpi: str, rm: float, rs: float, cm: float, cs: float) -> Fluctuation:
    return Fluctuation(key=key, pod=pod, kpi=kpi, regular_mean=rm, regular_std_dev=rs,
                       current_mean=cm, current_std_dev=cs)


def test_metrics_render_uses_seed_keys_and_two_decimals() -> None:
    found = [_fluct("node-6.cartservice-2.container_cpu_usage_seconds", "cartservice-2",
                    "container_cpu_usage_seconds", 0.49234, 0.031111, 0.54712, 0.0149)]
    text = metric_tool.render(found, 6000)
    assert text == (
        '{"node-6.cartservice-2.container_cpu_usage_seconds": {"regular_mean": 0.49, '
        '"regular_std_dev": 0.03, "current_mean": 0.55, "current_std_dev": 0.01}}'
    )
    parsed = json.loads(text)
    assert list(parsed["node-6.cartservice-2.container_cpu_usage_seconds"]) == [
        "regular_mean", "regular_std_dev", "current_mean", "current_std_dev"]


def test_metrics_render_keeps_order_and_caps_whole_entries() -> None:
    found = [_fluct(f"pod-{i}.kpi", f"pod-{i}", "kpi", 1.0, 0.1, 2.0, 0.2) for i in range(5)]
    full = metric_tool.render(found, 100_000)
    assert list(json.loads(full)) == [f"pod-{i}.kpi" for i in range(5)]
    one = len(metric_tool.render(found[:1], 100_000))
    capped = metric_tool.render(found, one + 10)
    body, note = capped.split("\n")
    assert list(json.loads(body)) == ["pod-0.kpi"]
    assert note == "(4 more metrics not shown)"


def test_metrics_json_empty_map() -> None:
    assert metrics_json({}, 100) == "{}"
