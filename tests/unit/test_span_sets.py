"""The baseline from the span sets of Tempo's search: the answer's span sets read (both the
``spanSets`` list and the older single ``spanSet``), durations and errors per (service,
operation) turned into the bucket counts the synthetic baseline reads, and the search sent as
Tempo takes it (against the Tempo query API stand-in)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import requests

from tests.fakes.trace_api import TraceApiServer
from thinkfl_operator.telemetry.span_sets import span_set_baseline
from thinkfl_operator.telemetry.tempo import SPAN_SETS_QUERY, TempoClient, span_set_frame

T0 = 1_700_000_000


def _span(span_id: str, name: str | None, duration_ns: int | str, service: str | None = "api",
          status: str = "unset") -> dict[str, object]:
    attributes = [{"key": "status", "value": {"stringValue": status}}]
    if service is not None:
        attributes.append({"key": "service.name", "value": {"stringValue": service}})
    span = {"spanID": span_id, "startTimeUnixNano": str(T0 * 10**9),
            "durationNanos": str(duration_ns), "attributes": attributes}
    return span if name is None else {**span, "name": name}


def test_span_sets_are_read_from_either_field_each_span_once() -> None:
    body = {"traces": [
        {"traceID": "abc", "spanSets": [{"spans": [_span("s1", "GET", 2_000_000, status="error"),
                                                  _span("s2", "SELECT", 1_000_000, "db")],
                                        "matched": 2}],
         "spanSet": {"spans": [_span("s1", "GET", 2_000_000, status="error")], "matched": 2}},
        {"traceID": "def", "spanSet": {"spans": [_span("s3", "GET", 4_000_000),
                                                 _span("s4", "GET", "x"),  # no duration: left out
                                                 _span("s5", "GET", 1, None),  # no service
                                                 _span("s7", None, 1)]}},  # no name: not selected
        "garbage", {"traceID": "", "spanSets": [{"spans": [_span("s6", "GET", 5)]}]}]}
    frame = span_set_frame(body)
    assert frame[["service", "operation", "status", "duration_us"]].values.tolist() == [
        ["api", "GET", "error", 2000.0], ["db", "SELECT", "unset", 1000.0], ["api", "GET", "unset", 4000.0]]
    assert frame["trace_id"].tolist() == [f"{0xabc:032x}", f"{0xabc:032x}", f"{0xdef:032x}"]
    assert span_set_frame({}).empty and span_set_frame([]).empty


def test_the_baseline_is_each_operations_own_durations_and_errors() -> None:
    durations = [1000, 2000, 3000, 4000, 10_000]  # µs
    frame = pd.DataFrame({"trace_id": [f"t{i}" for i in range(5)], "service": "api", "operation": "GET",
                          "status": ["error", "unset", "ok", "unset", "unset"],
                          "start_us": [T0 * 10**6 + i for i in range(5)], "duration_us": durations})
    # the second side found the first trace again: it counts once
    baseline = span_set_baseline([frame, frame.iloc[:1], frame.iloc[0:0]])
    assert baseline is not None and list(baseline.keys) == [("api", "GET")]
    key = baseline.keys[("api", "GET")]
    assert (key.calls, key.errors) == (5, 1)
    # the sample's own durations: its smallest at rank 0, its median, nothing below the smallest
    assert key.quantiles_us(np.array([0.0, 0.5, 0.01])).tolist() == [1000.0, 2500.0, 1000.0]
    assert span_set_baseline([frame.iloc[0:0]]) is None


def _spans() -> pd.DataFrame:
    rows = []
    for i in range(20):
        for k in range(5):
            rows.append({"trace_id": f"{i + 1:032x}", "span_id": f"{i * 10 + k + 1:016x}",
                         "parent_id": "" if k == 0 else f"{i * 10 + 1:016x}",
                         "service": "api" if k == 0 else "db", "pod": "p", "node": "n",
                         "operation": "GET" if k == 0 else "SELECT", "kind": "server",
                         "status": "2" if (i, k) == (3, 0) else "0",
                         "start_us": (T0 + 10 * i) * 1_000_000 + k, "duration_us": 1000 * (k + 1)})
    return pd.DataFrame(rows)


def test_one_search_brings_every_span_of_the_newest_traces() -> None:
    with TraceApiServer(_spans(), flavor="tempo") as server:
        frame = TempoClient(server.url).search_span_sets(T0, T0 + 100, limit=5)
        sent = server.requests
    query = parse_qs(urlsplit(sent[0]).query)
    assert query["q"] == [SPAN_SETS_QUERY] and query["spss"] == ["100"] and query["limit"] == ["5"]
    assert "name" in SPAN_SETS_QUERY.split("select(", 1)[1]  # Tempo sends a name only when selected
    assert frame["trace_id"].nunique() == 5 and len(frame) == 25  # the 5 newest, each whole
    assert frame["trace_id"].min() == f"{7:032x}"  # traces 7..11 start in the last 40 s
    assert set(frame["service"]) == {"api", "db"} and set(frame["status"]) <= {"unset", "error"}


def test_the_stand_in_refuses_more_spans_per_set_than_tempo_allows() -> None:
    with TraceApiServer(_spans(), flavor="tempo") as server:
        response = requests.get(server.url + "/api/search", timeout=10, params={
            "q": SPAN_SETS_QUERY, "start": T0, "end": T0 + 100, "limit": 5, "spss": 101})
    assert response.status_code == 400 and "spans per span set exceeds 100. received 101" in response.text
