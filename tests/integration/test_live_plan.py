"""The live query plan against the Jaeger and Tempo API stand-ins: where it searches, how many
requests it sends, and what it says it skipped when its budget runs out."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest

from tests.fakes.trace_api import TraceApiServer
from thinkfl_operator.config.settings import PrometheusSettings, TracesSettings
from thinkfl_operator.telemetry.jaeger import JaegerClient
from thinkfl_operator.telemetry.live import LiveStore, open_live

T0 = 1_700_000_000.0  # the incident
HOUR = 3600.0


def _span(tid: str, sid: str, parent: str, service: str, start_s: float) -> dict[str, object]:
    return {"trace_id": tid, "span_id": sid, "parent_id": parent, "pod": f"{service}-0",
            "service": service, "node": "", "operation": f"GET /{service}",
            "start_us": int(start_s * 1e6), "duration_us": 1000, "status": "0", "kind": "server"}


def _traces() -> pd.DataFrame:
    """Two entry services over an hour around T0: gateway → orders → db every 20 s, and
    admin → orders every 5 minutes."""
    rows = []
    for k in range(-90, 90):
        t = T0 + 20 * k
        tid = f"{k + 1000:032x}"
        rows += [_span(tid, f"{1:016x}", "", "gateway", t),
                 _span(tid, f"{2:016x}", f"{1:016x}", "orders", t + 0.001),
                 _span(tid, f"{3:016x}", f"{2:016x}", "db", t + 0.002)]
        if k % 15 == 0:
            aid = f"{k + 5000:032x}"
            rows += [_span(aid, f"{1:016x}", "", "admin", t + 1),
                     _span(aid, f"{2:016x}", f"{1:016x}", "orders", t + 1.001)]
    return pd.DataFrame(rows)


def _store(server: TraceApiServer, backend: str, max_requests: int = 40,
           tempo_baseline: str = "auto") -> LiveStore:
    cfg = TracesSettings(backend=backend, url=server.url, max_requests=max_requests, retries=0,
                         tempo_baseline=tempo_baseline)
    return open_live(cfg, PrometheusSettings(), around_s=T0)


def _searched_services(requests: list[str]) -> set[str]:
    found = set()
    for request in requests:
        parts = urlsplit(request)
        if parts.path in ("/api/traces", "/api/v3/traces"):
            query = parse_qs(parts.query)
            found |= set(query.get("service", []) + query.get("query.service_name", []))
    return found


def test_jaeger_searches_only_the_entry_services_of_its_dependency_graph() -> None:
    with TraceApiServer(_traces(), flavor="jaeger") as server:
        store = _store(server, "jaeger")
        spans = store.spans_between(int((T0 - 1800) * 1e6), int((T0 + 1800) * 1e6)).frame
        requests = server.requests
    assert sum(r.startswith("/api/dependencies") for r in requests) == 1
    assert _searched_services(requests) == {"gateway", "admin"}
    assert len(requests) <= 40
    # Whole traces came back through the entry services: every service is there.
    assert set(spans["service"]) == {"gateway", "orders", "db", "admin"}
    assert not any("budget" in note for note in store.quality.notes())


def test_without_a_dependency_graph_one_probe_finds_the_entry_services() -> None:
    # api_v3 alone: no /api/dependencies route (404), so the plan probes the focus window.
    with TraceApiServer(_traces(), flavor="jaeger", apis={"v3"}) as server:
        store = _store(server, "jaeger")
        store.spans_between(int((T0 - 1800) * 1e6), int((T0 + 1800) * 1e6))
        requests = server.requests
    probes = [r for r in requests if r.startswith("/api/v3/traces?")]
    # The first probe's traces ("admin" sorts first, through orders) name orders as seen;
    # gateway and db are probed only while unseen: at most 3 probes, then entry searches.
    assert _searched_services(requests) <= {"admin", "db", "gateway", "orders"}
    assert {"admin", "gateway"} <= _searched_services(requests)
    assert len(requests) <= 40 and len(probes) >= 2


def test_a_small_budget_searches_the_incident_first_and_says_what_it_skipped() -> None:
    with TraceApiServer(_traces(), flavor="jaeger") as server:
        store = _store(server, "jaeger", max_requests=6)
        spans = store.spans_between(int((T0 - 1800) * 1e6), int((T0 + 1800) * 1e6)).frame
        requests = server.requests
    assert len(requests) <= 6
    searches = [parse_qs(urlsplit(r).query) for r in requests if r.startswith("/api/v3/traces?")]
    first = pd.Timestamp(searches[0]["query.start_time_min"][0]).timestamp()
    assert T0 - 60 <= first <= T0 + 300  # the focus window before any baseline
    notes = store.quality.notes()
    assert any("trace searches past the request budget (6 requests to Jaeger)" in n for n in notes)
    assert len(spans) > 0


@pytest.mark.parametrize("budget", [10, 40])
def test_tempo_searches_the_newest_traces_and_fetches_no_more_than_its_budget(budget: int) -> None:
    with TraceApiServer(_traces(), flavor="tempo") as server:
        store = _store(server, "tempo", max_requests=budget, tempo_baseline="traces")
        spans = store.spans_between(int((T0 - 1800) * 1e6), int((T0 + 1800) * 1e6)).frame
        requests = server.requests
    searches = [parse_qs(urlsplit(r).query) for r in requests if r.startswith("/api/search")]
    assert searches and all(q["q"][0].endswith("with (most_recent=true)") for q in searches)
    assert len(requests) <= budget
    fetched = {r for r in requests if r.startswith("/api/v2/traces/")}
    assert len(fetched) == len(requests) - len(searches)  # no trace fetched twice
    assert spans["trace_id"].nunique() == len(fetched)
    assert any("traces found but not fetched past the request budget" in n
               for n in store.quality.notes())


def test_a_trace_held_already_is_not_decoded_again_from_a_later_search() -> None:
    """A long trace comes back in every slice it spans: it is read once, whole."""
    frame = _traces()
    long_id = f"{9999:032x}"
    rows = [_span(long_id, f"{1:016x}", "", "gateway", T0 - 1700)]
    rows += [_span(long_id, f"{k + 2:016x}", f"{1:016x}", "orders", T0 - 1700 + 60 * k)
             for k in range(56)]
    frame = pd.concat([frame, pd.DataFrame(rows)], ignore_index=True)
    with TraceApiServer(frame, flavor="jaeger") as server:
        store = _store(server, "jaeger")
        spans = store.spans_between(int((T0 - 1800) * 1e6), int((T0 + 1800) * 1e6)).frame
    assert (spans["trace_id"] == long_id).sum() == 57


@pytest.mark.parametrize("api", ["v1", "v3"])
def test_a_search_leaves_out_the_traces_it_is_told_are_held(api: str) -> None:
    with TraceApiServer(_traces(), flavor="jaeger") as server:
        client = JaegerClient(server.url, api=api)
        every = client.search_frame("gateway", T0 - 100, T0 + 100, 50)
        held = set(every["trace_id"].unique()[:3])
        rest = client.search_frame("gateway", T0 - 100, T0 + 100, 50, skip=held)
    assert set(rest["trace_id"]) == set(every["trace_id"]) - held
    assert len(rest) == len(every) - 3 * 3  # each of these traces has three spans
