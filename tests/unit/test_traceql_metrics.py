"""The baseline from Tempo's TraceQL metrics: the answer's shape read, the sparse power-of-two
histogram turned into bucket counts, the queries sent, and Tempo's refusals (not retried,
said), against the Tempo query API stand-in and its TraceQL metrics endpoint."""

from __future__ import annotations

import math
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest
import requests

from tests.fakes.trace_api import Fault, TraceApiServer
from thinkfl_operator.telemetry.span_metrics import bucket_quantiles
from thinkfl_operator.telemetry.tempo import TempoClient
from thinkfl_operator.telemetry.traceql_metrics import (
    PATH,
    QUERY,
    TraceqlMetrics,
    instant_series,
    power_of_two_histogram,
)

T0 = 1_700_000_000  # epoch seconds; the baseline side is [T0, T0 + 600)
METRICS_APIS = {"v1", "v2", "search", "metrics"}


def _spans() -> pd.DataFrame:
    """Two services' spans in the side: ``api`` GET at 1..100 ms (ten of them errors), ``db``
    query at a steady 3 ms; one ``api`` span after the side, which must not count."""
    rows = []
    for i in range(100):
        start = (T0 + 1 + i * 5) * 1_000_000
        rows.append({"trace_id": f"{i + 1:032x}", "span_id": f"{2 * i + 1:016x}", "parent_id": "",
                     "service": "api", "pod": "api-1", "node": "n1", "operation": "GET /x",
                     "kind": "server", "status": "2" if i % 10 == 0 else "0",
                     "start_us": start, "duration_us": (i + 1) * 1000})
        rows.append({"trace_id": f"{i + 1:032x}", "span_id": f"{2 * i + 2:016x}",
                     "parent_id": f"{2 * i + 1:016x}", "service": "db", "pod": "db-1", "node": "n1",
                     "operation": "query", "kind": "client", "status": "0",
                     "start_us": start + 100, "duration_us": 3000})
    rows.append({**rows[0], "trace_id": f"{999:032x}", "span_id": f"{999:016x}",
                 "start_us": (T0 + 700) * 1_000_000})
    return pd.DataFrame(rows)


def test_sparse_power_of_two_buckets_become_bucket_counts_with_their_lower_bounds() -> None:
    bounds, cumulative = power_of_two_histogram({1.024e-6: 4, 2.56e-7: 1})
    assert bounds.tolist() == [1.28e-7, 2.56e-7, 5.12e-7, 1.024e-6, math.inf]
    assert cumulative.tolist() == [0, 1, 1, 5, 5]
    # the median is inside (512 ns, 1024 ns], not spread over the empty bucket below it
    median = bucket_quantiles(bounds, cumulative, np.array([0.5]))[0]
    assert 5.12e-7 < median <= 1.024e-6


def test_an_instant_answer_in_tempo_json_is_read_zero_values_included() -> None:
    body = {"series": [
        {"labels": [{"key": "resource.service.name", "value": {"stringValue": "api"}},
                    {"key": "name", "value": {"stringValue": "GET /x"}},
                    {"key": "__bucket", "value": {"doubleValue": 0.001024}}], "value": 7},
        {"labels": [{"key": "resource.service.name", "value": {"stringValue": "db"}},
                    {"key": "span.retries", "value": {"intValue": "3"}}]},  # jsonpb leaves 0 out
        "garbage"],
        "metrics": {"inspectedBytes": "123", "totalJobs": 1}}
    assert instant_series(body) == [
        ({"resource.service.name": "api", "name": "GET /x", "__bucket": 0.001024}, 7.0),
        ({"resource.service.name": "db", "span.retries": 3.0}, 0.0)]
    assert instant_series({"metrics": {}}) == [] and instant_series([]) == []


def test_one_query_per_side_gives_every_operations_calls_errors_and_latency() -> None:
    with TraceApiServer(_spans(), flavor="tempo", apis=METRICS_APIS) as server:
        found, why = TraceqlMetrics(TempoClient(server.url)).baseline([(T0, T0 + 600), (T0 + 5, T0 + 70)])
        sent = server.requests
    assert why == "" and found is not None
    assert len(sent) == 2 and all(urlsplit(r).path == PATH for r in sent)
    assert parse_qs(urlsplit(sent[0]).query) == {"q": [QUERY], "start": [str(T0)], "end": [str(T0 + 600)]}
    assert set(found.keys) == {("api", "GET /x"), ("db", "query")}
    api, db = found.keys[("api", "GET /x")], found.keys[("db", "query")]
    # the second side overlaps the first: its 13 spans of each key (one an error) count again
    assert (api.calls, api.errors, db.calls, db.errors) == (113, 11, 113, 0)
    # 3 ms is in the (2.1 ms, 4.2 ms] bucket; api's median (~50 ms) within a factor of two
    assert 0.002097152 * 1e6 < db.quantiles_us(np.array([0.5]))[0] <= 0.004194304 * 1e6
    assert 25_000 <= api.quantiles_us(np.array([0.5]))[0] <= 100_000
    assert found.describe() == "histogram_over_time(duration) (Tempo TraceQL metrics)"


@pytest.mark.parametrize(("apis", "faults", "words"), [
    ({"v1", "v2", "search"}, [], "HTTP 404"),  # Tempo before 2.6: no instant metrics API
    (METRICS_APIS, [Fault(500, "error finding generators in Querier.queryRangeRecent: empty ring",
                          path=PATH, times=None)], "empty ring"),  # no metrics-generator
    (METRICS_APIS, [Fault(500, "localblocks processor not found", path=PATH, times=None)],
     "localblocks processor not found"),
])
def test_where_tempo_cannot_answer_the_reason_is_returned_after_one_request(
        apis: set[str], faults: list[Fault], words: str) -> None:
    with TraceApiServer(_spans(), flavor="tempo", apis=apis, faults=faults) as server:
        found, why = TraceqlMetrics(TempoClient(server.url, retries=3, backoff_s=0.01)).baseline(
            [(T0, T0 + 600), (T0 + 600, T0 + 1200)])
        sent = server.requests
    assert found is None and words in why
    assert len(sent) == 1  # not retried, and the other side not asked


def test_no_spans_in_the_sides_is_no_baseline_and_no_complaint() -> None:
    with TraceApiServer(_spans(), flavor="tempo", apis=METRICS_APIS) as server:
        assert TraceqlMetrics(TempoClient(server.url)).baseline([(T0 - 3600, T0 - 60)]) == (None, "")


@pytest.mark.parametrize(("query", "start", "end", "words"), [
    ("{ } | histogram_over_time(duration) by resource.service.name", T0, T0 + 60, "parse error"),
    ("{ } | histogram_over_time(duration) by (resource.service.name, name, status, name, name)",
     T0, T0 + 60, "group by 5 values not yet supported"),
    (QUERY, T0, T0 + 4 * 3600, "exceeds the maximum allowed duration of 3h0m0s"),
    (QUERY, T0, T0, "end must be greater than start"),
])
def test_the_stand_in_refuses_what_tempo_refuses(query: str, start: int, end: int, words: str) -> None:
    with TraceApiServer(_spans(), flavor="tempo", apis=METRICS_APIS) as server:
        response = requests.get(server.url + PATH, params={"q": query, "start": start, "end": end},
                                timeout=10)
    assert response.status_code == 400 and words in response.text


def test_a_side_still_in_the_future_is_not_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """An incident diagnosed while it lasts: the baseline after it has not happened yet."""
    from thinkfl_operator.config.settings import PrometheusSettings, TracesSettings
    from thinkfl_operator.telemetry.live import open_live

    monkeypatch.setattr("thinkfl_operator.telemetry.live.time.time", lambda: T0 + 700)
    with TraceApiServer(_spans(), flavor="tempo", apis=METRICS_APIS) as server:
        store = open_live(TracesSettings(backend="tempo", url=server.url), PrometheusSettings(),
                          around_s=T0 + 600)
        store.spans_between(int((T0 - 600) * 1e6), int((T0 + 700) * 1e6))
        asked = [r for r in server.requests if urlsplit(r).path == PATH]
        store.close()
    assert len(asked) == 1  # the side before; the one after starts at T0 + 900, after "now"
    query = parse_qs(urlsplit(asked[0]).query)
    assert int(query["end"][0]) <= T0 + 700
