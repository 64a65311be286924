"""Loki's documented answers (tests/fixtures/loki, see its README) through our parsers, the LogQL
we build, the line mapping (services, trace IDs, cut and binary lines) and the read planning."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from thinkfl_operator.telemetry.http import error_message
from thinkfl_operator.telemetry.loglines import LINE_COLUMNS, MAX_LINE_CHARS, PATTERN_COLUMNS
from thinkfl_operator.telemetry.loki_plan import (
    MINUTE_NS,
    Bin,
    Volume,
    bins_from_counts,
    pages,
    plan_reads,
    settle_page,
)
from thinkfl_operator.telemetry.loki_shapes import (
    LokiShapeError,
    Stream,
    alternation,
    lines_frame,
    parse_matrix,
    parse_patterns,
    parse_streams,
    patterns_frame,
    pod_and_service,
    selector,
    volume_query,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "loki"
SERVICE_LABELS = ("service_name", "app", "container")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def stream(labels: dict[str, str], entries: list[tuple[int, str]],
           metadata: list[Mapping[str, str]] | None = None) -> Stream:
    meta: list[Mapping[str, str]] = metadata or [{} for _ in entries]
    return Stream(labels, np.array([t for t, _ in entries], dtype=np.int64),
                  [line for _, line in entries], meta)


# ---------------------------------------------------------------------------------- answers


def test_documented_streams_answer() -> None:
    (only,) = parse_streams(fixture("query_range_streams.json"))
    assert dict(only.labels) == {"filename": "/var/log/myproject.log", "job": "varlogs",
                                 "level": "info"}
    assert only.times.tolist() == [1569266497240578000, 1569266492548155000]
    assert only.lines == ["foo", "bar"] and only.metadata == [{}, {}]


def test_categorized_entries_carry_structured_metadata_and_parsed_labels() -> None:
    (only,) = parse_streams(fixture("query_range_streams_categorized.json"))
    assert dict(only.labels) == {"test": "test"}
    assert only.times.tolist() == [123456789012345, 123456789012346, 123456789012347]
    assert only.metadata == [{}, {"foo": "a", "bar": "b"},
                             {"foo": "a", "bar": "b", "msg": "text"}]


def test_documented_matrix_answers_keep_millisecond_times() -> None:
    series = parse_matrix(fixture("query_range_matrix.json"))
    assert [s[0] for s in series] == [{"level": "info"}, {"level": "warn"}]
    assert series[0][1].tolist() == [1588889221 * 10**9] * 3
    assert series[0][2].tolist() == [137.95, 467.115, 658.8516666666667]
    ms = parse_matrix(fixture("query_range_matrix_ms.json"))
    assert ms[1][1].tolist() == [1568404331324000000, 1568404331339000000]
    assert ms[1][2].tolist() == [3.45, 4.45]


def test_documented_patterns_answer_with_and_without_level() -> None:
    body = fixture("patterns.json")
    found = parse_patterns(body)
    assert [p for p, _ in found][1] == ("<_> caller=grpc_logging.go:66 <_> level=info "
                                        "method=/cortex.Ingester/Push <_> msg=gRPC")
    assert found[1][1] == [(1711839260.0, 105), (1711839270.0, 222), (1711839280.0, 196)]
    body["data"][0]["level"] = "error"  # Loki 3.3+ writes it
    assert parse_patterns(body)[0][1] == [(1711839260.0, 1), (1711839270.0, 2),
                                          (1711839280.0, 1)]
    assert parse_patterns({"status": "success", "data": []}) == []


@pytest.mark.parametrize(("body", "parser", "message"), [
    ({"status": "error", "data": None}, parse_streams, "got status 'error'"),
    ("<html>", parse_streams, "got status 'str'"),
    (fixture("query_range_matrix.json"), parse_streams, "expected resultType 'streams'"),
    (fixture("query_range_streams.json"), parse_matrix, "expected resultType 'matrix'"),
    ({"status": "success", "data": {"resultType": "streams", "result": [
        {"stream": {}, "values": [["not a number", "x"]]}]}}, parse_streams, "is not"),
    ({"status": "success", "data": {"a": 1}}, parse_patterns, "expected a list of patterns"),
    ({"status": "success", "data": [{"samples": []}]}, parse_patterns, "has no pattern"),
])
def test_other_shapes_are_shape_errors(body: Any, parser: Any, message: str) -> None:
    with pytest.raises(LokiShapeError, match=message):
        parser(body)


def test_loki_error_bodies_are_plain_text_messages_kept_whole() -> None:
    for name in ("error_parse.txt", "error_max_entries.txt"):
        text = (FIXTURES / name).read_text()
        assert error_message(text) == text
    assert error_message("") == ""  # Loki without the pattern ingester: 404, empty body


# ---------------------------------------------------------------------------------- LogQL


def test_selectors_and_the_volume_query() -> None:
    assert selector([("namespace", "=", 'a"b\\c')]) == '{namespace="a\\"b\\\\c"}'
    assert alternation(["b.x", "a", "a"]) == "a|b\\.x"
    query = volume_query('{namespace="tt"}', ["pod", "service_name", "pod"])
    assert query == 'sum by (pod, service_name) (count_over_time({namespace="tt"}[1m]))'


# ---------------------------------------------------------------------------------- lines


def test_service_from_the_first_service_label_else_from_the_pod() -> None:
    pod = "ts-basic-service-5dc8d4f9fd-llznp"
    assert pod_and_service({"pod": pod, "app": "basic", "container": "server"}, "pod",
                           SERVICE_LABELS) == (pod, "basic", "app")
    assert pod_and_service({"pod": pod}, "pod", SERVICE_LABELS) == (pod, "ts-basic-service",
                                                                    "pod")
    assert pod_and_service({}, "pod", SERVICE_LABELS) == ("", "", "pod")


def test_trace_and_span_ids_from_metadata_else_from_the_line() -> None:
    trace, span = "7e144dbe057e266f21f011a4f1759b39", "afa8f0a935da3865"
    entries = [
        (4, f"17:03:11.532 INFO  v.c.VerifyCodeController#54 TraceID: {trace} SpanID: {span} x"),
        (3, f"level=info trace_id={trace.upper()} span_id={span} msg=ok"),
        (2, json.dumps({"traceId": trace, "spanId": span, "msg": "ok"})),
        (1, "no ids here TraceID: xyz"),
        (5, "ids in metadata win"),
    ]
    meta: list[Mapping[str, str]] = [{}, {}, {}, {}, {"trace_id": "ab" * 16, "spanID": "cd" * 8}]
    frame, counts = lines_frame([stream({"pod": "web-0"}, entries, meta)], "pod",
                                SERVICE_LABELS)
    assert list(frame.columns) == list(LINE_COLUMNS)
    assert frame["time_ns"].tolist() == [1, 2, 3, 4, 5]  # sorted by time
    assert frame["trace_id"].tolist() == ["", trace, trace, trace, "ab" * 16]
    assert frame["span_id"].tolist() == ["", span, span, span, "cd" * 8]
    assert set(frame["service"]) == {"web"} and counts.cut == counts.binary == 0


def test_long_and_binary_lines_are_cut_cleaned_and_counted() -> None:
    entries = [(1, "x" * (1 << 20)), (2, "ok\x00\x01bin"), (3, "bad utf-8 \ufffd\ufffd"),
               (4, "tab\tand\nnewline kept\r\n")]
    frame, counts = lines_frame([stream({"pod": "a-0"}, entries)], "pod", SERVICE_LABELS)
    assert len(frame["line"][0]) == MAX_LINE_CHARS
    assert frame["line"][1] == "ok\ufffd\ufffdbin"
    assert frame["line"][3] == "tab\tand\nnewline kept"
    assert (counts.cut, counts.binary) == (1, 2)


def test_empty_streams_give_the_empty_frame_and_patterns_get_their_columns() -> None:
    frame, _counts = lines_frame([stream({"pod": "a-0"}, [])], "pod", SERVICE_LABELS)
    assert frame.empty and list(frame.columns) == list(LINE_COLUMNS)
    patterns = patterns_frame([(60.0, "b", "<_> ok", 3), (0.0, "a", "<_> x", 1)])
    assert list(patterns.columns) == list(PATTERN_COLUMNS)
    assert patterns["service"].tolist() == ["a", "b"] and patterns["count"].dtype == np.int64


# ---------------------------------------------------------------------------------- planning


def test_volume_samples_one_nanosecond_before_each_minute_edge_fill_their_minute() -> None:
    start = 1_700_000_000 * 10**9
    # Loki reports t = start + k·1m − 1 ns at millisecond precision (truncated)
    counts = {(start + k * MINUTE_NS - 1) // 10**6 * 10**6: 10.0 * k for k in (1, 2, 4)}
    bins = bins_from_counts(start, start + 3 * MINUTE_NS + 30 * 10**9, counts)
    assert [(b.lo_ns - start, b.hi_ns - start) for b in bins] == [
        (0, MINUTE_NS), (MINUTE_NS, 2 * MINUTE_NS), (2 * MINUTE_NS, 3 * MINUTE_NS),
        (3 * MINUTE_NS, 3 * MINUTE_NS + 30 * 10**9)]
    assert [b.lines for b in bins] == [10, 20, 0, 40]


def minutes(counts: list[int]) -> list[Bin]:
    return [Bin(i * MINUTE_NS, (i + 1) * MINUTE_NS, n) for i, n in enumerate(counts)]


def test_everything_is_read_when_it_fits() -> None:
    plan = plan_reads(minutes([1000] * 30 + [0, 3000, 3000]), 30 * MINUTE_NS,
                      max_lines=50_000, max_requests=40, entry_limit=5000)
    assert plan.window is not None and plan.window.lines == 6000
    assert (plan.window.lo_ns, plan.window.hi_ns) == (30 * MINUTE_NS, 33 * MINUTE_NS)
    assert plan.history_read == plan.history_minutes == 30
    assert sum(s.lines for s in plan.history) == 30_000 and len(plan.history) == 8  # 4 min each
    assert plan.history[0].hi_ns == 30 * MINUTE_NS  # newest first
    assert plan.empty == ((30 * MINUTE_NS, 31 * MINUTE_NS),)


def test_history_is_sampled_evenly_to_fit_the_line_budget() -> None:
    plan = plan_reads(minutes([2000] * 30 + [2000] * 3), 30 * MINUTE_NS,
                      max_lines=26_000, max_requests=40, entry_limit=5000)
    assert plan.history_read == 10 and plan.history_minutes == 30
    starts = sorted(s.lo_ns // MINUTE_NS for s in plan.history)
    assert starts == [1, 4, 7, 10, 13, 16, 19, 22, 25, 28]  # spread over the history


def test_history_is_sampled_to_fit_the_request_budget() -> None:
    plan = plan_reads(minutes([4000] * 30 + [100]), 30 * MINUTE_NS,
                      max_lines=1_000_000, max_requests=6, entry_limit=5000)
    assert len(plan.history) == plan.history_read == 5  # 1 request for the window


def test_a_window_above_the_budget_leaves_no_history() -> None:
    plan = plan_reads(minutes([10] * 30 + [30_000] * 3), 30 * MINUTE_NS,
                      max_lines=50_000, max_requests=40, entry_limit=5000)
    assert plan.window is not None and plan.history == () and plan.history_read == 0
    without = plan_reads(minutes([10] * 33), 30 * MINUTE_NS, max_lines=50_000,
                         max_requests=40, entry_limit=5000, history=False)
    assert without.history == () and without.history_minutes == 30


def test_pages_count_the_page_that_confirms_a_full_one() -> None:
    assert [pages(n, 5000) for n in (0, 4899, 4900, 12_000)] == [1, 1, 2, 3]


def test_volume_narrows_by_the_service_label_else_by_pods() -> None:
    volume = Volume("pod", SERVICE_LABELS)
    for labels in ({"pod": "a-1", "app": "a"}, {"pod": "a-2", "app": "a"},
                   {"pod": "b-1", "app": "b"}, {"pod": "ts-c-service-5dc8d4f9fd-llznp"}):
        volume.add(labels, [60 * 10**9], [5.0])
    by_app, matched = volume.narrowed(volume.of_services(["a"]))
    assert by_app == [("app", "=~", "a")] and len(matched) == 2
    by_pod, matched = volume.narrowed(volume.of_services(["ts-c-service", "b"]))
    assert by_pod == [("pod", "=~", "b\\-1|ts\\-c\\-service\\-5dc8d4f9fd\\-llznp")]
    assert len(matched) == 2 and volume.counts(matched) == {60 * 10**9: 10.0}
    assert volume.narrowed(volume.of_services([])) == ([], list(volume.groups))


def test_a_full_page_is_complete_only_before_its_edge_nanosecond() -> None:
    full = [stream({"pod": "a-0"}, [(10, "a"), (11, "b"), (12, "c1")]),
            stream({"pod": "b-0"}, [(12, "c2")])]
    kept, done, rest = settle_page(full, 10, 100, 4, "forward")
    assert [s.lines for s in kept] == [["a", "b"], []] and done == (10, 12) and rest == (12, 100)
    backward = [stream({"pod": "a-0"}, [(50, "z"), (40, "y1")]),
                stream({"pod": "b-0"}, [(40, "y2")])]
    kept, done, rest = settle_page(backward, 0, 60, 3, "backward")
    assert [s.lines for s in kept] == [["z"], []] and done == (41, 60) and rest == (0, 41)
    short = [stream({"pod": "a-0"}, [(5, "a")])]
    assert settle_page(short, 0, 60, 3, "forward") == (short, (0, 60), (60, 60))
    same = [stream({"pod": "a-0"}, [(7, "a"), (7, "b")])]
    assert settle_page(same, 7, 60, 2, "forward") == (same, None, (8, 60))
    assert settle_page(same, 0, 8, 2, "backward") == (same, None, (0, 7))
