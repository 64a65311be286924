"""Traces from Grafana Tempo's HTTP API (port 3200).

``trace`` asks ``/api/v2/traces/{id}`` (``{"trace": TracesData, "status": "COMPLETE"|"PARTIAL"}``,
Tempo ≥ 2.5) and falls back to ``/api/traces/{id}`` (``batches`` before Tempo 2.6,
``resourceSpans`` after) when v2 answers 404 or a body that is not JSON; under ``api="auto"``
the first API that answers is then used alone. ``search`` runs a TraceQL query on
``/api/search`` (``with (most_recent=true)``) and returns trace IDs (Tempo drops leading zeros;
they come back padded) and their start times.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeVar

import pandas as pd

from thinkfl_operator.core.errors import UserInputError
from thinkfl_operator.telemetry.http import NotFound, QueryClient, first_answer
from thinkfl_operator.telemetry.otlp import (
    any_value,
    int_value,
    normalize_trace_id,
    otlp_frame,
    require_trace_id,
)

APIS = ("v1", "v2", "auto")
DISPLAY_NAME = "Tempo"
#: TraceQL query hint (Tempo 2.7+): the newest matching traces of the range, not the first found.
MOST_RECENT = "with (most_recent=true)"
#: Every span, with the attributes a baseline needs beside its duration: a search answers a
#: span's name only when the query selects it (``select`` since Tempo 2.2, the hint 2.7).
SPAN_SETS_QUERY = f"{{ }} | select(resource.service.name, name, status) {MOST_RECENT}"
#: Tempo's default ``max_spans_per_span_set`` (query_frontend.search): more is a 400.
MAX_SPANS_PER_SPAN_SET = 100
SPAN_SET_COLUMNS = ("trace_id", "service", "operation", "status", "start_us", "duration_us")
#: TraceQL status values of a v2 answer that mean "some blocks could not be read".
_PARTIAL = {"PARTIAL", "1"}

T = TypeVar("T")


class TempoClient(QueryClient):
    """Traces by ID and TraceQL search from one Tempo query frontend."""

    name = "tempo"

    display_name = DISPLAY_NAME
    apis = APIS

    def trace(self, trace_id: str) -> tuple[pd.DataFrame, bool]:
        """All spans of one trace (not cleaned) and whether Tempo said the trace is partial."""
        tid = require_trace_id(trace_id)
        try:
            return self._first({
                "v2": lambda: _nonempty(v2_trace(self.http.get_json(f"/api/v2/traces/{tid}"))),
                "v1": lambda: _nonempty((otlp_frame(_mapping(
                    self.http.get_json(f"/api/traces/{tid}"))), False)),
            })
        except NotFound as exc:
            raise NotFound(
                f"trace {tid} not found in {DISPLAY_NAME} at {self.url}", backend=DISPLAY_NAME,
                url=self.url, path=exc.path, status=exc.status, detail=exc.detail,
            ) from None

    def search(
        self,
        start_s: float,
        end_s: float,
        limit: int = 20,
        service: str | None = None,
        traceql: str | None = None,
    ) -> list[str]:
        """IDs of traces matching ``traceql`` (default: any span of ``service``, or any trace)
        that started in [start_s, end_s] (epoch seconds); at most ``limit``, the newest."""
        return [hit.trace_id for hit in self.search_traces(start_s, end_s, limit, service, traceql)]

    def search_traces(
        self,
        start_s: float,
        end_s: float,
        limit: int = 20,
        service: str | None = None,
        traceql: str | None = None,
    ) -> list[SearchHit]:
        """``search`` with each trace's start, duration and root.
        The default query carries the ``most_recent=true`` hint, so Tempo answers the newest
        traces of the range, not whichever its blocks give first."""
        if end_s < start_s or limit < 1:
            raise UserInputError(
                f"Tempo trace search needs start <= end and limit >= 1 "
                f"(got {start_s}, {end_s}, {limit})"
            )
        query = traceql if traceql is not None else f"{service_query(service)} {MOST_RECENT}"
        params = {"q": query, "start": math.floor(start_s), "end": math.ceil(end_s),
                  "limit": limit}
        return search_results(self.http.get_json("/api/search", params))

    def search_span_sets(self, start_s: float, end_s: float, limit: int,
                         spans_per_trace: int = MAX_SPANS_PER_SPAN_SET,
                         retries: int | None = None) -> pd.DataFrame:
        """Spans of the newest ``limit`` traces started in [start_s, end_s], as the search
        answers them (``SPAN_SETS_QUERY``: every span matches, up to ``spans_per_trace`` of each
        trace come back with their name, service, status, start and duration, no parent):
        a ``SPAN_SET_COLUMNS`` frame, for a baseline of durations without fetching traces.
        ``retries`` overrides the client's (an optional query need not be retried); an answer
        of another shape is an ``InvalidResponse``."""
        if end_s < start_s or limit < 1 or spans_per_trace < 1:
            raise UserInputError(
                f"Tempo span-set search needs start <= end, limit >= 1 and spans >= 1 "
                f"(got {start_s}, {end_s}, {limit}, {spans_per_trace})")
        params = {"q": SPAN_SETS_QUERY, "start": math.floor(start_s), "end": math.ceil(end_s),
                  "limit": limit, "spss": spans_per_trace}
        body = self.http.get_json("/api/search", params, retries=retries)
        return first_answer(("search",), {"search": lambda: span_set_frame(body)}, self.http)[1]

    def _first(self, calls: Mapping[str, Callable[[], T]]) -> T:
        """The first API that answers; under "auto", remember it."""
        order = (self.resolved_api,) if self.resolved_api else ("v2", "v1")
        self.resolved_api, result = first_answer(order, calls, self.http)
        return result


def v2_trace(body: Any) -> tuple[pd.DataFrame, bool]:
    """The spans and the partial flag of a ``/api/v2/traces/{id}`` answer."""
    body = _mapping(body)
    status = str(body.get("status") or "").strip().upper()
    return otlp_frame(_mapping(body.get("trace") or {})), status in _PARTIAL


def service_query(service: str | None) -> str:
    """TraceQL for "any span of this service" (``{}`` = any trace)."""
    if not service:
        return "{}"
    escaped = service.replace("\\", "\\\\").replace('"', '\\"')
    return f'{{ resource.service.name = "{escaped}" }}'


class SearchHit(NamedTuple):
    """One trace of a ``/api/search`` answer: its ID, start, duration and root."""

    trace_id: str  # padded to 32 hex
    start_s: float  # epoch seconds; NaN when Tempo leaves it out
    duration_ms: float  # 0 when left out (Tempo omits a 0); NaN when not a number
    root: str  # "rootServiceName rootTraceName" ("" when left out)


def search_results(body: Any) -> list[SearchHit]:
    """The traces of a ``/api/search`` answer, without repeats, in the answer's order."""
    found: dict[str, SearchHit] = {}
    for trace in _mapping(body).get("traces") or []:
        if not isinstance(trace, Mapping):
            continue
        tid = normalize_trace_id(trace.get("traceID") or trace.get("traceId"))
        if tid and tid not in found:
            raw = trace.get("startTimeUnixNano")
            ns = int_value(raw, -1) if raw not in (None, "") else -1
            duration = int_value(trace.get("durationMs"), -1)
            root = f"{trace.get('rootServiceName') or ''} {trace.get('rootTraceName') or ''}".strip()
            found[tid] = SearchHit(tid, ns / 1e9 if ns >= 0 else math.nan,
                                   float(duration) if duration >= 0 else math.nan, root)
    return list(found.values())


def span_set_frame(body: Any) -> pd.DataFrame:
    """The spans of a search answer's span sets (``spanSets``, or the older single ``spanSet``),
    each once: ``SPAN_SET_COLUMNS``, the service from the ``service.name`` attribute, the status
    from ``status`` (error, ok, unset; unset when left out); spans without a service or a name,
    or whose duration is not a number, are left out (an absent duration is 0: jsonpb omits
    zeros)."""
    rows: dict[tuple[str, str], tuple[str, str, str, str, int, float]] = {}
    for trace in _mapping(body).get("traces") or []:
        if not isinstance(trace, Mapping):
            continue
        tid = normalize_trace_id(trace.get("traceID") or trace.get("traceId"))
        sets = trace.get("spanSets") or ([trace["spanSet"]] if isinstance(trace.get("spanSet"), Mapping) else [])
        for span_set in sets:
            for span in (span_set.get("spans") if isinstance(span_set, Mapping) else None) or []:
                if not isinstance(span, Mapping):
                    continue
                attributes = {a.get("key"): any_value(a.get("value")) for a in span.get("attributes") or []
                              if isinstance(a, Mapping)}
                service = str(attributes.get("service.name") or "")
                name = str(span.get("name") or "")
                duration = int_value(span.get("durationNanos"), -1)
                if not tid or not service or not name or duration < 0:
                    continue
                rows.setdefault((tid, str(span.get("spanID") or "")), (
                    tid, service, name, str(attributes.get("status") or "unset"),
                    int_value(span.get("startTimeUnixNano"), 0) // 1000, duration / 1000))
    return pd.DataFrame(list(rows.values()), columns=list(SPAN_SET_COLUMNS))


def _mapping(body: Any) -> Mapping[str, Any]:
    return body if isinstance(body, Mapping) else {}


def _nonempty(result: tuple[pd.DataFrame, bool]) -> tuple[pd.DataFrame, bool]:
    if result[0].empty:
        raise NotFound("no spans", backend=DISPLAY_NAME, url="", path="", status=None)
    return result
