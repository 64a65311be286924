"""LokiLogs against the Loki stand-in: paging past Loki's 5000-entry cap, honest coverage under
the line and request budgets, Loki's refusals in the notes, unreachable and slow servers, big and
binary lines, the pattern ingester and its absence, and real TrainTicket lines."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import requests

from tests.fakes.loki_api import Fault, LokiApiServer
from tests.net import free_port
from tests.shared import shared_path
from thinkfl_operator.config.settings import LogsSettings
from thinkfl_operator.core import deadline
from thinkfl_operator.telemetry.loglines import MAX_LINE_CHARS, covered_seconds
from thinkfl_operator.telemetry.loki import LokiLogs
from thinkfl_operator.telemetry.naming import service_of_pod

T0 = 1_674_982_800  # 2023-01-29 09:00 UTC
S = 10**9
PODS = ("ts-basic-service-5dc8d4f9fd-llznp", "ts-order-service-5b67c48447-mv5hb",
        "ts-seat-service-5c95b49cff-tdsdz")


def lines(minutes: float, per_minute: int, *, start: int = T0, pods: tuple[str, ...] = PODS,
          same_ns: int = 1) -> pd.DataFrame:
    """``per_minute`` lines a minute over the pods in turn; ``same_ns`` lines share each time."""
    n = int(minutes * per_minute)
    step = 60 * S * same_ns // per_minute
    times = start * S + (np.arange(n) // same_ns) * step
    pod = [pods[i % len(pods)] for i in range(n)]
    return pd.DataFrame({
        "time_ns": times, "pod": pod, "service": [service_of_pod(p) for p in pod],
        "line": [f"12:00:00.{i % 1000:03d} INFO  c.Controller#{i % 7} TraceID: {i:032x} "
                 f"SpanID: {i:016x} [step {i}]" for i in range(n)],
        "trace_id": "", "span_id": "", "namespace": "train-ticket", "container": "server",
    })


def settings(url: str, **overrides: object) -> LogsSettings:
    base: dict[str, object] = {"loki_url": url, "history_minutes": 30, "retries": 0,
                               "backoff_s": 0.0, "service_labels": ["service_name", "app"]}
    return LogsSettings.model_validate({**base, **overrides})


@pytest.fixture
def source() -> Iterator[list[LokiLogs]]:
    opened: list[LokiLogs] = []
    yield opened
    for item in opened:
        item.close()


def loki(url: str, opened: list[LokiLogs], **overrides: object) -> LokiLogs:
    client = LokiLogs(settings(url, **overrides), "train-ticket")
    opened.append(client)
    return client


def truth(frame: pd.DataFrame, lo_s: float, hi_s: float) -> list[str]:
    t = frame["time_ns"]
    return sorted(frame["line"][(t >= lo_s * S) & (t < hi_s * S)])


def assert_complete_where_covered(batch_lines: pd.DataFrame, coverage: tuple[tuple[float, float],
                                  ...], frame: pd.DataFrame) -> None:
    """Inside every covered interval the batch holds exactly the stand-in's lines."""
    for lo, hi in coverage:
        assert truth(batch_lines, lo, hi) == truth(frame, lo, hi), (lo, hi)


# ---------------------------------------------------------------------------------- paging


def test_pages_past_the_5000_entry_cap_without_losing_or_repeating_lines(
        source: list[LokiLogs]) -> None:
    frame = lines(3, 4500, same_ns=3)  # 13 500 lines in the window, three per nanosecond
    with LokiApiServer(frame, labels=("namespace", "pod", "container")) as server:
        batch = loki(server.url, source).logs(T0, T0 + 180)
        sent = [p for p in server.params if "limit" in p]
    assert batch.coverage == ((T0, T0 + 180),) and batch.notes == ()
    assert sorted(batch.lines["line"]) == sorted(frame["line"])
    assert batch.lines["time_ns"].is_monotonic_increasing
    assert batch.requests == 1 + len(sent) == 4
    assert all(p["limit"] == "5000" and p["direction"] == "backward" for p in sent)
    ends = [int(p["end"]) for p in sent]  # each page ends 1 ns after the last one's oldest line
    assert ends[0] == (T0 + 180) * S and ends[1] < ends[0] and ends[2] < ends[1]
    assert set(batch.lines["service"]) == {"ts-basic-service", "ts-order-service",
                                           "ts-seat-service"}
    assert batch.lines["trace_id"].str.len().eq(32).all()


def test_small_entry_limits_page_forward_through_sampled_history(source: list[LokiLogs]) -> None:
    frame = lines(33, 200, same_ns=4)
    with LokiApiServer(frame) as server:
        batch = loki(server.url, source, entry_limit=150, max_requests=200).logs(T0, T0 + 1980)
        forward = [p for p in server.params if p.get("direction") == "forward"]
    assert batch.coverage == ((T0, T0 + 1980),)
    assert sorted(batch.lines["line"]) == sorted(frame["line"])
    assert forward and all(int(p["limit"]) <= 150 for p in forward)


# ---------------------------------------------------------------------------------- budgets


def test_a_line_budget_cut_covers_only_what_was_read_newest_first(
        source: list[LokiLogs]) -> None:
    frame = lines(33, 3000)
    with LokiApiServer(frame) as server:
        batch = loki(server.url, source, max_lines=4000).logs(T0, T0 + 1980)
    assert len(batch.lines) <= 4000
    assert len(batch.coverage) == 1 and batch.coverage[0][1] == T0 + 1980
    assert batch.coverage[0][0] > T0 + 1800  # only the newest part of the window
    assert_complete_where_covered(batch.lines, batch.coverage, frame)
    assert any(n.startswith("stopped at the budget (4000 lines, 40 requests)")
               for n in batch.notes)


def test_the_request_budget_holds_and_history_is_sampled(source: list[LokiLogs]) -> None:
    frame = lines(63, 1850)
    with LokiApiServer(frame) as server:
        batch = loki(server.url, source, max_requests=8, history_minutes=60).logs(T0, T0 + 3780)
        assert batch.requests == server.calls <= 8
    done = covered_seconds(batch.coverage, T0, T0 + 3780)
    assert 180 < done < 3780 and len(batch.lines) <= 50_000
    assert_complete_where_covered(batch.lines, batch.coverage, frame)
    assert any("history sampled" in n for n in batch.notes)


def test_an_incident_at_the_2023_01_29_volume_fits_40_requests(source: list[LokiLogs]) -> None:
    frame = lines(63, 1850)
    with LokiApiServer(frame) as server:
        batch = loki(server.url, source, history_minutes=60).logs(T0, T0 + 3780)
    assert batch.requests <= 40 and len(batch.lines) <= 50_000
    assert covered_seconds(batch.coverage, T0 + 3600, T0 + 3780) == 180  # the window in full
    assert_complete_where_covered(batch.lines, batch.coverage, frame)


# ---------------------------------------------------------------------------------- refusals


def test_a_400_puts_lokis_own_message_in_the_notes(source: list[LokiLogs]) -> None:
    message = "parse error at line 1, col 5: syntax error: unexpected IDENTIFIER"
    with LokiApiServer(lines(3, 100), faults=[Fault(400, message)]) as server:
        batch = loki(server.url, source).logs(T0, T0 + 180)
        url = server.url
    assert batch.empty and batch.coverage == () and batch.requests == 1
    assert batch.notes == ((f"Loki at {url} rejected GET /loki/api/v1/query_range (HTTP 400): "
                           f"{message}; diagnosed without logs"),)


def test_a_refused_entry_limit_is_lowered_to_lokis(source: list[LokiLogs]) -> None:
    frame = lines(3, 4000)
    with LokiApiServer(frame, max_entries=5000) as server:
        batch = loki(server.url, source, entry_limit=8000).logs(T0, T0 + 180)
    assert sorted(batch.lines["line"]) == sorted(frame["line"])
    assert batch.notes == (
        ("Loki refused our entry limit: max entries limit per query exceeded, limit > "
        "max_entries_limit_per_query (8000 > 5000); read with limit 5000 (set "
        "logs.entry_limit to it)"),)


def test_unreachable_loki_gives_an_empty_batch_saying_why(source: list[LokiLogs]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    sleeps: list[float] = []
    client = LokiLogs(settings(url, retries=2, backoff_s=0.25), "train-ticket",
                      sleep=sleeps.append)
    source.append(client)
    batch = client.logs(T0, T0 + 180)
    assert batch.empty and batch.requests == 3 and len(sleeps) == 2
    assert 0.125 <= sleeps[0] <= 0.25 and 0.25 <= sleeps[1] <= 0.5  # jittered doubling
    assert batch.notes == ((f"Loki at {url} is unreachable: ConnectionError (after 3 tries); "
                           f"diagnosed without logs"),)


def test_a_failure_after_the_window_keeps_what_was_read(source: list[LokiLogs]) -> None:
    frame = lines(33, 300)
    query_range = "/loki/api/v1/query_range"
    faults = [Fault(None, path=query_range), Fault(None, path=query_range),  # volume, window
              Fault(503, "too many outstanding requests", times=None, path=query_range)]
    with LokiApiServer(frame, faults=faults) as server:
        batch = loki(server.url, source).logs(T0, T0 + 1980)
    assert covered_seconds(batch.coverage, T0 + 1800, T0 + 1980) == 180
    assert_complete_where_covered(batch.lines, batch.coverage, frame)
    assert batch.notes[-1].endswith("HTTP 503 Service Unavailable: too many outstanding "
                                    "requests (after 1 try); diagnosed with the logs read before")


def test_a_slow_loki_is_cut_by_the_incident_deadline(source: list[LokiLogs]) -> None:
    with LokiApiServer(lines(3, 100), latency_s=5) as server:
        url = server.url
        client = loki(url, source, timeout_s=30, retries=2)
        with deadline.within(1.0):
            batch = client.logs(T0, T0 + 180)
    assert batch.empty and len(batch.notes) == 1
    assert batch.notes == ((f"stopped reading Loki at {url}: out of time (the logs may "
                           "use 50% of what is left of the incident's time budget); diagnosed "
                           "without logs"),)


def test_a_slow_loki_times_out_per_request(source: list[LokiLogs]) -> None:
    with LokiApiServer(lines(3, 100), latency_s=5) as server:
        batch = loki(server.url, source, timeout_s=0.3, retries=1).logs(T0, T0 + 180)
        url = server.url
    assert batch.empty and batch.requests == 2
    assert batch.notes == ((f"Loki at {url} is unreachable: ReadTimeout (no answer within 0.3 s)"
                           f" (after 2 tries); diagnosed without logs"),)


# ---------------------------------------------------------------------------------- odd lines


def test_a_1_mib_line_and_binary_junk_are_cut_cleaned_and_noted(source: list[LokiLogs]) -> None:
    frame = lines(1, 10)
    frame.loc[3, "line"] = "E" * (1 << 20)
    frame.loc[5, "line"] = "\x00\x01\x02 core dumped \x7f"
    frame.loc[6, "line"] = "not utf-8: \ufffd\ufffd"
    with LokiApiServer(frame) as server:
        batch = loki(server.url, source).logs(T0, T0 + 60)
    got = batch.lines.set_index("time_ns")["line"]
    assert len(got[frame["time_ns"][3]]) == MAX_LINE_CHARS
    assert got[frame["time_ns"][5]] == "\ufffd\ufffd\ufffd core dumped \ufffd"
    assert batch.notes == ("1 lines longer than 2000 characters were cut",
                           "2 lines held binary data (control bytes replaced by U+FFFD)")


# ---------------------------------------------------------------------------------- patterns


def test_patterns_carry_the_history_when_loki_has_the_pattern_ingester(
        source: list[LokiLogs]) -> None:
    frame = lines(33, 900)
    with LokiApiServer(frame, patterns=True) as server:
        client = loki(server.url, source)
        batch = client.logs(T0, T0 + 1980)
        asked = [p for p in server.params if p["path"] == "/loki/api/v1/patterns"]
    assert client.patterns_available is True
    assert len(asked) == 3 and batch.requests == 1 + 3 + 1
    assert {p["query"] for p in asked} == {
        f'{{namespace="train-ticket", pod=~"{p.replace("-", 2 * chr(92) + "-")}"}}' for p in PODS}
    assert batch.coverage == ((T0 + 1800, T0 + 1980),)
    assert sorted(batch.lines["line"]) == truth(frame, T0 + 1800, T0 + 1980)
    patterns = batch.patterns
    assert set(patterns["service"]) == {service_of_pod(p) for p in PODS}
    assert patterns["count"].sum() == len(frame[frame["time_ns"] < (T0 + 1980) * S])
    assert patterns["time_s"].min() == T0 and (patterns["time_s"] % 60 == 0).all()
    assert batch.notes == (("history as Loki patterns of 3 services; lines read for the incident "
                           "window only"),)


def test_without_the_pattern_ingester_history_comes_as_lines_and_it_is_not_asked_again(
        source: list[LokiLogs]) -> None:
    frame = lines(33, 300)
    with LokiApiServer(frame, patterns=False) as server:
        client = loki(server.url, source)
        first = client.logs(T0, T0 + 1980)
        second = client.logs(T0, T0 + 1980)
        asked = [p for p in server.params if p["path"] == "/loki/api/v1/patterns"]
        url = server.url
    assert len(asked) == 1 and client.patterns_available is False
    assert first.notes == ((f"Loki at {url} has no /loki/api/v1/patterns (HTTP 404): no pattern "
                           f"ingester, history read as lines"),)
    assert second.notes == () and first.patterns.empty
    for batch in (first, second):
        assert batch.coverage == ((T0, T0 + 1980),)
        assert sorted(batch.lines["line"]) == sorted(frame["line"])


@pytest.mark.parametrize(("fault", "note"), [
    (Fault(500, "empty ring", times=None, path="/loki/api/v1/patterns"),
     ("is unreachable: HTTP 500 Internal Server Error: empty ring (after 1 try): history read "
     "as lines")),
    (Fault(200, {"status": "success", "data": []}, path="/loki/api/v1/patterns"),
     ("Loki's pattern ingester has no patterns of ts-basic-service (it holds its lines): history "
     "read as lines")),
])
def test_a_failing_or_empty_pattern_ingester_falls_back_to_lines_for_this_call(
        source: list[LokiLogs], fault: Fault, note: str) -> None:
    frame = lines(33, 300)
    with LokiApiServer(frame, patterns=True, faults=[fault]) as server:
        client = loki(server.url, source)
        batch = client.logs(T0, T0 + 1980)
    assert client.patterns_available is None  # asked again next time
    assert batch.patterns.empty and batch.coverage == ((T0, T0 + 1980),)
    assert sorted(batch.lines["line"]) == sorted(frame["line"])
    assert len(batch.notes) == 1 and batch.notes[0].endswith(note)


# ---------------------------------------------------------------------------------- streams


def test_services_narrow_the_selector_by_their_label(source: list[LokiLogs]) -> None:
    frame = lines(5, 600)
    frame["app"] = frame["service"].str.removeprefix("ts-")
    with LokiApiServer(frame, labels=("namespace", "pod", "app")) as server:
        batch = loki(server.url, source).logs(T0, T0 + 300, services=["order-service"])
        queries = [p["query"] for p in server.params if "limit" in p]
    assert queries == ['{namespace="train-ticket", app=~"order\\\\-service"}']
    assert set(batch.lines["service"]) == {"order-service"}
    assert sorted(batch.lines["line"]) == sorted(frame["line"][frame["app"] == "order-service"])
    assert batch.coverage == ((T0, T0 + 300),)


def test_services_without_lines_are_complete_and_empty(source: list[LokiLogs]) -> None:
    with LokiApiServer(lines(5, 60)) as server:
        batch = loki(server.url, source).logs(T0, T0 + 300, services=["ts-auth-service"])
    assert batch.empty and batch.requests == 1 and batch.coverage == ((T0, T0 + 300),)


def test_trace_ids_from_structured_metadata_and_the_tenant_header(
        source: list[LokiLogs]) -> None:
    frame = lines(1, 30)
    frame["line"] = "plain line"
    frame["trace_id"] = [f"{i:032x}" for i in range(30)]
    with LokiApiServer(frame, metadata=("trace_id",), tenant="team-a") as server:
        anonymous = loki(server.url, source).logs(T0, T0 + 60)
        batch = loki(server.url, source, loki_tenant="team-a").logs(T0, T0 + 60)
    assert anonymous.empty and "(HTTP 401): no org id" in anonymous.notes[0]
    assert sorted(batch.lines["trace_id"]) == sorted(frame["trace_id"])


# ---------------------------------------------------------------------------------- the stand-in


def test_the_stand_in_is_as_strict_as_loki() -> None:
    with LokiApiServer(lines(1, 60)) as server:
        def get(path: str, **params: str | int) -> requests.Response:
            return requests.get(server.url + path, params=params, timeout=5)
        sel = '{namespace="train-ticket"}'
        too_many = get("/loki/api/v1/query_range", query=sel, limit=5001, start=T0)
        assert (too_many.status_code, too_many.text) == (400, (
            "max entries limit per query exceeded, limit > max_entries_limit_per_query "
            "(5001 > 5000)"))
        assert get("/loki/api/v1/query_range", query=sel + " | json").text == (
            "parse error at line 1, col 28: syntax error: unexpected |")
        assert "empty-compatible" in get("/loki/api/v1/query_range", query='{a=~".*"}').text
        assert get("/loki/api/v1/query_range", query=sel, direction="up").text == (
            "invalid direction 'up'")
        rfc = get("/loki/api/v1/query_range", query=sel + ' |~ "step [0-4]\\\\]"', limit=10,
                  start="2023-01-29T09:00:00Z", end="2023-01-29T09:01:00.000000001Z",
                  direction="forward").json()
        values = [v for s in rfc["data"]["result"] for v in s["values"]]
        assert rfc["data"]["resultType"] == "streams" and len(values) == 5
        assert get("/ready").text == "ready\n"
        query = f"sum(count_over_time({sel}[1m])) by (pod)"
        matrix = get("/loki/api/v1/query_range", query=query, start=T0 + 60, end=T0 + 60,
                     step=60).json()["data"]
        assert matrix["resultType"] == "matrix"  # (t - 1m, t]: the line at T0 is left out
        assert {s["metric"]["pod"]: s["values"] for s in matrix["result"]} == {
            PODS[0]: [[T0 + 60, "19"]], PODS[1]: [[T0 + 60, "20"]], PODS[2]: [[T0 + 60, "20"]]}
        rate = get("/loki/api/v1/query_range", query=f"rate({sel}[1m])", start=T0 + 60,
                   end=T0 + 60).json()["data"]["result"]
        assert [r["values"] for r in rate] == [[[T0 + 60, "0.31666666666666665"]],
                                               [[T0 + 60, "0.3333333333333333"]],
                                               [[T0 + 60, "0.3333333333333333"]]]
        assert get("/loki/api/v1/labels", start=T0, end=T0 + 60).json() == {
            "status": "success", "data": ["container", "namespace", "pod"]}
        assert get("/loki/api/v1/label/pod/values", start=T0, end=T0 + 60).json()["data"] == \
            sorted(PODS)
        missing = get("/loki/api/v1/patterns", query=sel, start=T0, end=T0 + 60)
        assert (missing.status_code, missing.text) == (404, "")


# ---------------------------------------------------------------------------------- real lines


def nezha_minute(path: str) -> pd.DataFrame:
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows.append({"time_ns": int(row["TimeUnixNano"]), "pod": row["PodName"],
                         "service": service_of_pod(row["PodName"]),
                         "line": json.loads(row["Log"])["log"], "trace_id": "", "span_id": "",
                         "namespace": "train-ticket", "container": row["Container"],
                         "TraceID": row["TraceID"], "SpanID": row["SpanID"]})
    return pd.DataFrame(rows)


@pytest.mark.shared_data
def test_real_trainticket_lines_come_back_whole_with_their_trace_ids(
        source: list[LokiLogs]) -> None:
    path = shared_path("datasets", "nezha", "rca_data", "2023-01-29", "log", "09_04_log.csv")
    frame = nezha_minute(str(path))
    start = int(frame["time_ns"].min()) // S
    with LokiApiServer(frame, labels=("namespace", "pod", "container")) as server:
        batch = loki(server.url, source).logs(start, start + 120)
    assert len(batch.lines) == len(frame) and batch.coverage == ((start, start + 120),)
    expected = frame.sort_values("time_ns", kind="stable")
    assert batch.lines["time_ns"].tolist() == expected["time_ns"].tolist()
    text = frame["line"].str.rstrip("\n")
    assert sorted(batch.lines["line"]) == sorted(text.str.slice(0, MAX_LINE_CHARS))
    long = int((text.str.len() > MAX_LINE_CHARS).sum())
    assert long > 0 and batch.notes == (f"{long} lines longer than 2000 characters were cut",)
    assert set(batch.lines["service"]) == set(frame["service"])
    found = batch.lines.merge(frame, on=["time_ns", "pod"], suffixes=("", "_csv"))
    in_text = found["line"].str.contains("TraceID: ")
    assert in_text.sum() > 1000
    assert (found["trace_id"][in_text] == found["TraceID"][in_text]).all()
    assert (found["span_id"][in_text] == found["SpanID"][in_text]).all()
