"""The baseline from Tempo's TraceQL metrics on a TrainTicket day: the day's traces served by the
Tempo query API stand-in, which answers TraceQL metrics instant queries as Tempo 2.6+ with a
metrics-generator does (or, as Tempo before 2.6 does, 404). No Prometheus: the baseline has
no other source.

With TraceQL metrics the plan searches the incident's focus window only, within the default
budget of 40 requests, and the top cause is the injected service (without them, at the same
budget, Tempo's sampled baseline found 5 of the day's 17: bench/live_budget.py). Without them
the plan says why in the notes and samples baseline traces as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest

from tests.fakes.trace_api import TraceApiServer
from tests.shared import NEZHA_TT_DAY, shared_path
from thinkfl_operator.config.settings import (
    LogsSettings,
    PrometheusSettings,
    Settings,
    TracesSettings,
)
from thinkfl_operator.core.models import Incident
from thinkfl_operator.engines.heuristic.engine import HeuristicEngine
from thinkfl_operator.evaluation.labels import Fault, read_faults
from thinkfl_operator.telemetry.live import FOCUS_AFTER_S, FOCUS_BEFORE_S, LiveStore, open_live
from thinkfl_operator.telemetry.nezha import NezhaStore
from thinkfl_operator.telemetry.traceql_metrics import NAMING, PATH

pytestmark = pytest.mark.shared_data

SPANS_ONLY = Settings(logs=LogsSettings(enabled=False))
#: Faults of the day the trace evidence alone finds (a network delay, a CPU contention).
POSITIONS = (0, 2)


@pytest.fixture(scope="module")
def faults() -> list[Fault]:
    return read_faults(shared_path(*NEZHA_TT_DAY))


@pytest.fixture(scope="module")
def spans() -> pd.DataFrame:
    return NezhaStore(shared_path(*NEZHA_TT_DAY)).spans_between(0, 2**62).frame


@pytest.fixture(scope="module")
def tempo(spans: pd.DataFrame) -> Iterator[TraceApiServer]:
    with TraceApiServer(spans, flavor="tempo", apis={"v1", "v2", "search", "metrics"}) as server:
        yield server


def _live(url: str, t_s: float, traceql_metrics: bool = True) -> LiveStore:
    """As a new user runs it: the incident time only, the default request budget."""
    return open_live(TracesSettings(backend="tempo", url=url, retries=0, traceql_metrics=traceql_metrics),
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


@pytest.mark.parametrize("traceql_metrics", [True, False])
def test_without_traceql_metrics_baseline_traces_are_sampled_and_the_notes_say_why(
        traceql_metrics: bool, faults: list[Fault], spans: pd.DataFrame) -> None:
    fault = faults[POSITIONS[0]]
    with TraceApiServer(spans, flavor="tempo", apis={"v1", "v2", "search"}) as old_tempo:
        store = _live(old_tempo.url, fault.time_s, traceql_metrics)
        result = HeuristicEngine(SPANS_ONLY).diagnose(store, Incident(time_s=fault.time_s))
        sent = old_tempo.requests
    assert store.span_baseline is None
    asked = [r for r in sent if urlsplit(r).path == PATH]
    said = [n for n in result.notes if "TraceQL metrics baseline" in n]
    if traceql_metrics:  # asked once (a 404 is not retried), and the reason is in the notes
        assert len(asked) == 1 and len(said) == 1 and "HTTP 404" in said[0], result.notes
    else:  # the setting off: not asked at all
        assert asked == [] and said == []
    focus = (fault.time_s - FOCUS_BEFORE_S, fault.time_s + FOCUS_AFTER_S)
    assert any(hi <= focus[0] or lo >= focus[1] for lo, hi in _searches(sent))
    store.close()
