"""Tempo's own baselines on a TrainTicket day: the day's traces served by the Tempo query API
stand-in, which answers TraceQL metrics instant queries as Tempo 2.6+ with a metrics-generator
does (or, as Tempo before 2.6 does, 404), and searches with their span sets. No Prometheus: no
span metrics.

With TraceQL metrics, or else the search's span sets, the plan fetches the incident's focus
window's traces only, within the default budget of 40 requests, and the top cause is the
injected service (with fetched baseline traces, at the same budget, Tempo found 5 of the day's
17: bench/live_budget.py). Each fallback is said in the notes.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest

from tests.fakes.trace_api import Fault as ServerFault
from tests.fakes.trace_api import TraceApiServer
from thinkfl_operator.config.settings import (
    LogsSettings,
    PrometheusSettings,
    Settings,
    TracesSettings,
)
from thinkfl_operator.core.models import Incident
from thinkfl_operator.engines.heuristic.engine import HeuristicEngine
from thinkfl_operator.evaluation.labels import Fault
from thinkfl_operator.telemetry.live import (
    FOCUS_AFTER_S,
    FOCUS_BEFORE_S,
    SPAN_SET_PARTS,
    LiveStore,
    open_live,
)
from thinkfl_operator.telemetry.span_sets import NAMING as SPAN_SETS
from thinkfl_operator.telemetry.tempo import SPAN_SETS_QUERY
from thinkfl_operator.telemetry.traceql_metrics import NAMING, PATH

pytestmark = pytest.mark.shared_data

SPANS_ONLY = Settings(logs=LogsSettings(enabled=False))
#: Faults of the day the trace evidence alone finds (a network delay, a CPU contention).
POSITIONS = (0, 2)


@pytest.fixture(scope="module")
def faults(nezha_tt_faults: list[Fault]) -> list[Fault]:
    return nezha_tt_faults


@pytest.fixture(scope="module")
def spans(nezha_tt_spans: pd.DataFrame) -> pd.DataFrame:
    return nezha_tt_spans


@pytest.fixture(scope="module")
def tempo(spans: pd.DataFrame) -> Iterator[TraceApiServer]:
    with TraceApiServer(spans, flavor="tempo", apis={"v1", "v2", "search", "metrics"}) as server:
        yield server


def _live(url: str, t_s: float, tempo_baseline: str = "auto") -> LiveStore:
    """As a new user runs it: the incident time only, the default request budget."""
    return open_live(TracesSettings(backend="tempo", url=url, retries=0, tempo_baseline=tempo_baseline),
                     PrometheusSettings(), around_s=t_s)


def _searches(requests: list[str]) -> list[tuple[float, float]]:
    out = []
    for request in requests:
        parts = urlsplit(request)
        if parts.path == "/api/search":
            query = parse_qs(parts.query)
            out.append((float(query["start"][0]), float(query["end"][0])))
    return out


@pytest.mark.parametrize("position", POSITIONS)
def test_traceql_metrics_replace_the_baseline_traces(
        position: int, faults: list[Fault], tempo: TraceApiServer) -> None:
    fault = faults[position]
    before = len(tempo.requests)
    store = _live(tempo.url, fault.time_s)
    result = HeuristicEngine(SPANS_ONLY).diagnose(store, Incident(time_s=fault.time_s))
    sent = tempo.requests[before:]

    assert store.span_baseline is not None and store.span_baseline.naming == NAMING
    assert len(store.span_baseline.keys) > 50
    assert sum(urlsplit(r).path == PATH for r in sent) == 2  # one per side of the window
    focus = (fault.time_s - FOCUS_BEFORE_S, fault.time_s + FOCUS_AFTER_S)
    searches = _searches(sent)
    assert searches and all(lo >= focus[0] - 1 and hi <= focus[1] + 1 for lo, hi in searches), searches
    assert len(sent) <= TracesSettings().max_requests
    assert any("Tempo TraceQL metrics" in n for n in result.notes), result.notes
    assert result.root_causes[0].service == fault.service
    store.close()


@pytest.mark.parametrize("tempo_baseline", ["auto", "span_sets"])
def test_without_traceql_metrics_the_search_span_sets_give_the_baseline(
        tempo_baseline: str, faults: list[Fault], spans: pd.DataFrame) -> None:
    """A Tempo before 2.6 (no TraceQL metrics API): under ``auto`` the metrics query is asked
    once (a 404 is not retried) and the notes say so; then span-set searches of each side of
    the window give the baseline, and no baseline trace is fetched."""
    fault = faults[POSITIONS[0]]
    with TraceApiServer(spans, flavor="tempo", apis={"v1", "v2", "search"}) as old_tempo:
        store = _live(old_tempo.url, fault.time_s, tempo_baseline)
        result = HeuristicEngine(SPANS_ONLY).diagnose(store, Incident(time_s=fault.time_s))
        sent = old_tempo.requests
    assert store.span_baseline is not None and store.span_baseline.naming == SPAN_SETS
    assert len(store.span_baseline.keys) > 50
    asked = [r for r in sent if urlsplit(r).path == PATH]
    said = [n for n in result.notes if "TraceQL metrics baseline" in n]
    if tempo_baseline == "auto":
        assert len(asked) == 1 and len(said) == 1 and "HTTP 404" in said[0], result.notes
        assert "the search span sets used instead" in said[0]
    else:  # not asked at all
        assert asked == [] and said == []
    span_sets = [r for r in sent if parse_qs(urlsplit(r).query).get("q") == [SPAN_SETS_QUERY]]
    # three parts of each side, the newest 100 traces of each, every span (spss=100)
    assert len(span_sets) == 2 * SPAN_SET_PARTS
    assert all(parse_qs(urlsplit(r).query)["spss"] == ["100"] for r in span_sets)
    focus = (fault.time_s - FOCUS_BEFORE_S, fault.time_s + FOCUS_AFTER_S)
    others = _searches([r for r in sent if r not in span_sets])
    assert others and all(lo >= focus[0] - 1 and hi <= focus[1] + 1 for lo, hi in others), others
    assert len(sent) <= TracesSettings().max_requests
    assert result.root_causes[0].service == fault.service
    store.close()


def test_fetched_traces_when_asked_for_or_when_tempo_refuses_the_span_sets(
        faults: list[Fault], spans: pd.DataFrame) -> None:
    fault = faults[POSITIONS[0]]
    focus = (fault.time_s - FOCUS_BEFORE_S, fault.time_s + FOCUS_AFTER_S)
    refused = ServerFault(400, "invalid TraceQL query: parse error at line 1, col 6: syntax error: unexpected IDENTIFIER",
                    path="/api/search", times=1)
    with TraceApiServer(spans, flavor="tempo", apis={"v1", "v2", "search"}, faults=[refused]) as old_tempo:
        store = _live(old_tempo.url, fault.time_s, "span_sets")
        result = HeuristicEngine(SPANS_ONLY).diagnose(store, Incident(time_s=fault.time_s))
        sent = old_tempo.requests
    assert store.span_baseline is None
    assert any("span-set searches" in n and "parse error" in n for n in result.notes), result.notes
    assert any(hi <= focus[0] or lo >= focus[1] for lo, hi in _searches(sent))  # baseline searched
    assert any(r.startswith("/api/v2/traces/") for r in sent)
    store.close()


def test_a_span_set_search_that_times_out_is_a_note_not_a_failed_diagnosis(
        faults: list[Fault], spans: pd.DataFrame) -> None:
    """The optional query is not retried: one slow answer, and baseline traces are fetched."""
    fault = faults[POSITIONS[0]]
    slow = ServerFault(None, delay_s=3, times=1, path="/api/search")
    with TraceApiServer(spans, flavor="tempo", apis={"v1", "v2", "search"}, faults=[slow]) as old_tempo:
        store = open_live(TracesSettings(backend="tempo", url=old_tempo.url, retries=2, timeout_s=1,
                                         tempo_baseline="span_sets"), PrometheusSettings(), around_s=fault.time_s)
        result = HeuristicEngine(SPANS_ONLY).diagnose(store, Incident(time_s=fault.time_s))
        sent = old_tempo.requests
    assert store.span_baseline is None and result.root_causes
    assert any("span-set searches" in n and "unreachable" in n for n in result.notes), result.notes
    assert sum(parse_qs(urlsplit(r).query).get("q") == [SPAN_SETS_QUERY] for r in sent) == 1  # not retried
    assert any(r.startswith("/api/v2/traces/") for r in sent)
    store.close()
