"""A Grafana Loki stand-in speaking Loki's HTTP API, limits and errors included.

    with LokiApiServer(lines, labels=("namespace", "pod", "container")) as loki:
        LokiLogs(LogsSettings(loki_url=loki.url), "train-ticket").logs(t0, t1)

``lines`` has ``LINE_COLUMNS`` plus label columns; ``labels`` names the columns that become
stream labels (a mapping renames them: ``{"service": "service_name"}``) and ``metadata`` those
served as structured metadata (e.g. ``trace_id``); empty values are left out, as Loki does.
Like ``trace_api.TraceApiServer`` it runs on 127.0.0.1 in a daemon thread; every request is
recorded first, then waits ``latency_s``, then a matching ``Fault`` (shared with the trace API
fake) may answer instead. The LogQL subset and the parameters are read in ``logql``, the
answers computed in ``loki_store``. Routes and shapes (grafana/loki ``docs/sources/reference/
loki-http-api.md``, ``pkg/util/marshal``, ``pkg/loghttp``):

* ``/loki/api/v1/query_range``: log queries → ``resultType: streams`` (``start`` inclusive,
  ``end`` exclusive, ``limit`` default 100, ``direction`` default backward; the header
  ``X-Loki-Response-Encoding-Flags: categorize-labels`` puts structured metadata in a third
  element of each entry, else it joins the stream labels); metric queries (``logql``) →
  ``resultType: matrix``, evaluated at ``start + k·step ≤ end`` over ``(t - range, t]``,
  empty windows left out. ``start``/``end`` as Loki parses them (ns, s when ≤ 10 digits, float
  s, RFC 3339). A limit above ``max_entries`` (5000) is a 400 with Loki's exact message, so is
  a query outside the subset (parse error), a bad direction, limit, time or step.
* ``/loki/api/v1/labels``, ``/loki/api/v1/label/<name>/values`` (``start``/``end`` default to
  the last 6 h, as in Loki; ``query`` narrows the streams).
* ``/loki/api/v1/patterns``: with ``patterns=True``, templates (tokens holding a digit → ``<_>``)
  per ``step`` bucket; else 404 with an empty body, what Loki answers without a pattern
  ingester (``SingleTenantQuerier.Patterns``: ``httpgrpc.Errorf(http.StatusNotFound, "")``).
* ``/ready`` → ``ready``; with ``tenant`` set, a request without ``X-Scope-OrgID`` is a 401
  ``no org id``; anything else is Go's ``404 page not found``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
from aiohttp import web

from tests.fakes.background import Fault, FaultyServer
from tests.fakes.logql import (
    LogQuery,
    MetricQuery,
    ParseError,
    bounds,
    integer,
    parse,
    step,
)
from tests.fakes.loki_store import LokiStore

__all__ = ["Fault", "LokiApiServer"]

DEFAULT_LABELS = ("namespace", "pod", "container", "app", "service_name")
MAX_ENTRIES_MESSAGE = ("max entries limit per query exceeded, limit > max_entries_limit_per_query"
                       " ({} > {})")
_SIX_HOURS_NS = 6 * 3600 * 10**9


class _Reject(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.response = web.Response(text=message, status=status,
                                     content_type="text/plain", charset="utf-8")


class LokiApiServer(FaultyServer):
    """See the module docstring."""

    thread_name = "fake-loki"

    def __init__(
        self,
        lines: pd.DataFrame | None = None,
        labels: Sequence[str] | Mapping[str, str] = DEFAULT_LABELS,
        *,
        metadata: Sequence[str] | Mapping[str, str] = (),
        patterns: bool = False,
        max_entries: int = 5000,
        latency_s: float = 0.0,
        faults: Iterable[Fault] = (),
        tenant: str = "",
        host: str = "127.0.0.1",
    ) -> None:
        self.store = LokiStore(lines, labels, metadata)
        if patterns:
            self.store.templates()
        self.patterns, self.max_entries = patterns, max_entries
        self.latency_s, self.tenant = latency_s, tenant
        super().__init__(faults, host, shutdown_timeout_s=0.5, client_max_size=1024**2)
        self._params: list[dict[str, str]] = []

    @property
    def params(self) -> list[dict[str, str]]:
        """The decoded query parameters (plus ``path``) of every request."""
        with self._lock:
            return [dict(p) for p in self._params]

    # ------------------------------------------------------------------ server thread

    def _routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        params = dict(request.query)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.post()).items()})
        with self._lock:
            self._requests.append(request.path_qs)
            self._params.append({"path": request.path, **params})
        await self._sleep(self.latency_s)
        fault = self._take_fault(request.path)
        if fault is not None:
            await self._sleep(fault.delay_s)
            if fault.status is not None:
                return _fault_response(fault)
        try:
            if self.tenant and not request.headers.get("X-Scope-OrgID"):
                raise _Reject("no org id\n", 401)
            return self._route(request.path, params, request.headers)
        except _Reject as exc:
            return exc.response
        except ParseError as exc:
            return _Reject(str(exc)).response

    def _route(self, path: str, params: dict[str, str],
               headers: Mapping[str, str]) -> web.StreamResponse:
        if path == "/ready":
            return web.Response(text="ready\n")
        if path in ("/loki/api/v1/query_range", "/api/prom/query"):
            flags = headers.get("X-Loki-Response-Encoding-Flags", "")
            return self._query_range(params, "categorize-labels" in flags.split(","))
        if path == "/loki/api/v1/labels":
            start, end = bounds(params, _SIX_HOURS_NS)
            return _success(self.store.label_names(_selector(params), start, end))
        match = re.fullmatch(r"/loki/api/v1/label/([^/]+)/values", path)
        if match:
            start, end = bounds(params, _SIX_HOURS_NS)
            return _success(self.store.label_values(match.group(1), _selector(params), start, end))
        if path == "/loki/api/v1/patterns":
            if not self.patterns:
                return web.Response(text="", status=404, content_type="text/plain",
                                    charset="utf-8")
            return self._patterns(params)
        return web.Response(text="404 page not found\n", status=404)

    def _query_range(self, params: dict[str, str], categorize: bool) -> web.Response:
        started = time.perf_counter()
        expr = parse(params.get("query", ""))
        start, end = bounds(params, 3600 * 10**9)
        if end < start:
            raise _Reject("end timestamp must not be before or equal to start time")
        limit = integer(params.get("limit"), 100, "limit")
        if limit <= 0:
            raise _Reject("limit must be a positive value")
        direction = (params.get("direction") or "backward").lower()
        if direction not in ("forward", "backward"):
            raise _Reject(f"invalid direction '{params['direction']}'")
        step_ns = step(params, start, end)
        if isinstance(expr, MetricQuery):
            result, scanned = self.store.matrix(expr, start, end, step_ns)
            data: dict[str, Any] = {"resultType": "matrix", "result": result}
        else:
            if limit > self.max_entries:
                raise _Reject(MAX_ENTRIES_MESSAGE.format(limit, self.max_entries))
            result, scanned = self.store.streams(expr, start, end, limit, direction, categorize)
            data = {"resultType": "streams"}
            if categorize:
                data["encodingFlags"] = ["categorize-labels"]
            data["result"] = result
        returned = sum(len(s.get("values", ())) for s in result)
        data["stats"] = _stats(scanned, returned, time.perf_counter() - started)
        return web.Response(text=json.dumps({"status": "success", "data": data}),
                            content_type="application/json")

    def _patterns(self, params: dict[str, str]) -> web.Response:
        expr = parse(params.get("query", ""))
        if not isinstance(expr, LogQuery):
            raise _Reject("parse error : only label matchers are supported")
        start, end = bounds(params, 3600 * 10**9)
        step_ns = step(params, start, end)
        series = self.store.patterns(expr, start, end, step_ns)
        return web.Response(text=json.dumps({"status": "success", "data": series}) + "\n",
                            content_type="application/json")


# ---------------------------------------------------------------------------------- parameters


def _selector(params: Mapping[str, str]) -> LogQuery | None:
    query = params.get("query", "")
    if not query:
        return None
    expr = parse(query)
    if not isinstance(expr, LogQuery):
        raise ParseError("parse error : only label matchers are supported")
    return expr


# ---------------------------------------------------------------------------------- answers


def _success(data: list[str]) -> web.Response:
    return web.json_response({"status": "success", "data": data})


def _stats(scanned: int, returned: int, seconds: float) -> dict[str, Any]:
    """The ``summary`` block of Loki's query statistics (``pkg/logqlmodel/stats``)."""
    rate = int(scanned / seconds) if seconds > 0 else 0
    return {"summary": {
        "bytesProcessedPerSecond": rate * 100, "linesProcessedPerSecond": rate,
        "totalBytesProcessed": scanned * 100, "totalLinesProcessed": scanned,
        "execTime": round(seconds, 6), "queueTime": 0, "subqueries": 0,
        "totalEntriesReturned": returned, "splits": 1, "shards": 1,
        "totalPostFilterLines": returned, "totalStructuredMetadataBytesProcessed": 0,
    }, "querier": {"store": {"totalChunksRef": 0, "totalChunksDownloaded": 0}},
        "ingester": {"totalReached": 1, "totalChunksMatched": 0, "totalBatches": 1,
                     "totalLinesSent": returned}}


def _fault_response(fault: Fault) -> web.Response:
    if isinstance(fault.body, dict):
        return web.json_response(fault.body, status=fault.status or 500, headers=fault.headers)
    text = fault.body if fault.body is not None else f"injected fault (HTTP {fault.status})"
    return web.Response(text=text, status=fault.status or 500, headers=fault.headers)
