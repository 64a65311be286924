"""The columnar rewrites of joins the engine runs once per day or per trace: what they answer
on small frames whose answer is known (ties, mismatched services, missing spans, orphans)."""

from __future__ import annotations

import pandas as pd

from thinkfl_operator.engines.heuristic.traffic import template_operations
from thinkfl_operator.telemetry.spans import SpanTable, empty_frame


def _spans(rows: list[tuple[str, str, str, str, int, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["trace_id", "span_id", "parent_id", "service", "start_us", "duration_us"])
    frame["pod"] = frame["service"] + "-pod"
    frame["operation"] = frame["span_id"].str.upper()
    for column in ("node", "status", "kind"):
        frame[column] = ""
    return frame[list(empty_frame().columns)]


def test_each_template_takes_the_operation_most_of_its_lines_have() -> None:
    spans = _spans([("t", "s1", "", "a", 0, 5), ("t", "s2", "s1", "a", 1, 2), ("t", "s3", "s1", "b", 2, 1)])
    spans["operation"] = ["op1", "op2", "op3"]
    lines = pd.DataFrame({
        "service": ["a", "a", "a", "a", "b", "a", "b"],
        "template": ["x", "x", "x", "y", "x", "y", "z"],
        "span_id": ["s1", "s2", "s2", "s1", "s3", "s2", "s1"],  # the last: b's line on a's span
    })
    got = template_operations(spans, lines).astype(str).reset_index(drop=True)
    # most lines first, then (service, template, operation) order: y's tie goes to op1
    want = pd.DataFrame({"service": ["a", "a", "b"], "template": ["x", "y", "x"],
                         "operation": ["op2", "op1", "op3"]})
    assert got.to_dict("records") == want.to_dict("records")


def test_lines_without_a_known_span_own_no_operation() -> None:
    spans = _spans([("t", "s1", "", "a", 0, 5)])
    lines = pd.DataFrame({"service": ["a", "a"], "template": ["x", "y"], "span_id": ["", "nope"]})
    assert template_operations(spans, lines).empty


def test_the_root_is_the_earliest_orphan_the_longest_of_equals() -> None:
    table = SpanTable(_spans([("t", "c", "r", "b", 3, 1), ("t", "r", "gone", "a", 2, 4),
                              ("t", "q", "gone", "a", 2, 9), ("t", "e", "", "a", 1, 1)]))
    root = table.root()
    assert root is not None and root.span_id == "e"
    table = SpanTable(table.frame.iloc[:3])
    root = table.root()
    assert root is not None and (root.span_id, root.duration, root.timestamp) == ("q", 9, 0)
    assert root.service == "a" and root.cmdb_id == "a-pod" and root.status_code == "0"


def test_a_trace_of_a_cycle_has_its_earliest_span_as_root() -> None:
    table = SpanTable(_spans([("t", "a", "b", "x", 5, 1), ("t", "b", "a", "x", 4, 1)]))
    root = table.root()
    assert root is not None and root.span_id == "b"
