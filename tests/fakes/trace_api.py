"""A fake Jaeger / Tempo query HTTP API serving span frames and raw fixture files.

Tests point the real clients at it::

    with TraceApiServer(frame, flavor="jaeger") as server:
        JaegerClient(server.url).trace(trace_id)

Like ``openai_replay.ReplayServer``, it is an aiohttp application on its own event loop in a
daemon thread, bound to ``127.0.0.1`` on a port chosen by the OS; slow replies sleep on that
loop and stopping the server wakes them up.

What it answers, in this order (every request is recorded first):

1. a :class:`Fault` whose path prefix matches and whose ``times`` are not used up: an error
   status with a body, or (``status=None``) a delay before the normal answer;
2. a raw file registered at the exact path (``files=`` / :meth:`serve_file`), e.g. a fixture;
3. the span frame converted to the API shape of the path, for the APIs in ``apis``:

   * ``flavor="jaeger"``: ``v1`` -- ``/api/traces/{id}``, ``/api/traces?service=&start=&end=
     &limit=`` (µs), ``/api/services``, ``/api/services/{s}/operations``,
     ``/api/dependencies?endTs=&lookback=`` (ms; service edges of the traces in range); ``v3`` --
     ``/api/v3/traces/{id}``, ``/api/v3/traces?query.service_name=&query.start_time_min=
     &query.start_time_max=&query.search_depth=`` (RFC 3339), ``/api/v3/services``,
     ``/api/v3/operations?service=``;
   * ``flavor="tempo"``: ``v1`` -- ``/api/traces/{id}`` (``tempo_key`` "batches" or
     "resourceSpans"); ``v2`` -- ``/api/v2/traces/{id}`` (``partial=True`` says PARTIAL);
     ``search`` -- ``/api/search?q=&start=&end=&limit=&spss=`` (TraceQL ``{}`` or
     ``{ resource.service.name = "x" }``, then optionally ``| select(…)`` of
     ``resource.service.name``, ``status``, ``name``, either with the ``with (most_recent=true)``
     hint, which answers the newest traces of the range; anything else is a 400 parse error;
     each trace with its span set: the first ``spss`` (default 3, at most 100) of the spans that
     matched, with the attributes selected or filtered on); ``metrics``
     (not by default, as Tempo before 2.6 or without a metrics-generator) --
     ``/api/metrics/query?q=&start=&end=`` (TraceQL metrics, instant: ``{ }`` or
     ``{ status = error }``, then ``count_over_time()`` or ``histogram_over_time(duration)``
     ``by (…)`` of ``resource.service.name``, ``name``, ``status``; Tempo's limits: at most 5
     group-bys, 4 beside a histogram's ``__bucket``, a range of at most 3 h; its answer shape:
     gogo-jsonpb, zero values left out, ``__bucket`` the power-of-two upper bound in seconds);

4. anything else: a Go-style ``404 page not found``, or (``unknown="html"``) the 200 HTML page
   Jaeger 1.x's UI serves for paths it does not know.

Errors use each backend's shapes: Jaeger v1 ``{"errors":[{"code","msg"}]}``, api_v3
``{"error":{"httpCode","message"}}``, Tempo plain text.
"""

from __future__ import annotations

import base64
import bisect
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from aiohttp import web

from tests.fakes.background import Fault, FaultyServer
from thinkfl_operator.telemetry.otlp import normalize_trace_id

__all__ = [
    "Fault",
    "TraceApiServer",
    "frame_to_jaeger_v1",
    "frame_to_otlp",
    "jaeger_trace_id",
]

_KIND_INTS = {"": 0, "internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
_HTML = "<!doctype html><html><head><title>Jaeger UI</title></head><body></body></html>"
_METRICS_QUERY = re.compile(
    r"^\{\s*(?:status\s*=\s*(error|ok|unset)\s*)?\}\s*\|\s*"
    r"(histogram_over_time\(\s*duration\s*\)|count_over_time\(\s*\))(?:\s*by\s*\(([^()]*)\))?$")
_METRICS_GROUPS = {"resource.service.name": "service", "name": "operation", "status": "tempo_status"}
_METRICS_MAX_S = 3 * 3600
_SERVICE_QUERY = re.compile(
    r'^\{\s*(?:resource\.service\.name\s*=\s*"((?:[^"\\]|\\.)*)"\s*)?\}'
    r'(?:\s*\|\s*select\(([^()]*)\))?'
    r'(\s*with\s*\(\s*most_recent\s*=\s*true\s*\))?$')
#: What a span set's span carries for each attribute a search may select: (key, value of a span).
_SELECTABLE = {"resource.service.name": "service.name", "status": "status", "name": "name"}
#: Tempo's query_frontend.search defaults: spans per span set when none is asked, and the most.
_SPSS_DEFAULT, _SPSS_MAX = 3, 100


# ---------------------------------------------------------------------------------- converters

def jaeger_trace_id(trace_id: str) -> str:
    """A 32-hex trace ID as Jaeger's v1 JSON prints it: the low half alone when the high half
    is zero, else the high half without leading zeros (so 31 characters happen)."""
    high, low = trace_id[:16], trace_id[16:]
    return low if int(high, 16) == 0 else f"{int(high, 16):x}{low}"


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (int(v) if k in ("start_us", "duration_us") else str(v)) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def _by_trace(frame: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    traces: dict[str, list[dict[str, Any]]] = {}
    for row in _rows(frame):
        traces.setdefault(row["trace_id"], []).append(row)
    return traces


def _v1_trace(spans: list[dict[str, Any]]) -> dict[str, Any]:
    processes: dict[tuple[str, str, str], str] = {}
    out_spans = []
    for s in spans:
        key = (s["service"], s["pod"], s["node"])
        pid = processes.setdefault(key, f"p{len(processes) + 1}")
        tags: list[dict[str, Any]] = []
        if s["kind"]:
            tags.append({"key": "span.kind", "type": "string", "value": s["kind"]})
        if s["status"] == "2":
            tags.append({"key": "error", "type": "bool", "value": True})
        refs = []
        if s["parent_id"]:
            refs.append({"refType": "CHILD_OF", "traceID": jaeger_trace_id(s["trace_id"]),
                         "spanID": s["parent_id"]})
        out_spans.append({
            "traceID": jaeger_trace_id(s["trace_id"]), "spanID": s["span_id"], "flags": 1,
            "operationName": s["operation"], "references": refs, "startTime": s["start_us"],
            "duration": s["duration_us"], "tags": tags, "logs": [], "processID": pid,
            "warnings": None,
        })
    procs = {}
    for (service, pod, node), pid in processes.items():
        ptags = [{"key": "k8s.pod.name", "type": "string", "value": pod}]
        if node:
            ptags.append({"key": "k8s.node.name", "type": "string", "value": node})
        procs[pid] = {"serviceName": service, "tags": ptags}
    return {"traceID": jaeger_trace_id(spans[0]["trace_id"]), "spans": out_spans,
            "processes": procs, "warnings": None}


def frame_to_jaeger_v1(frame: pd.DataFrame) -> dict[str, Any]:
    """The v1 envelope ``{"data": [trace, ...], ...}``, one trace object per trace ID; pods
    and nodes go into process tags, kinds into ``span.kind``, error statuses into ``error``."""
    data = [_v1_trace(spans) for spans in _by_trace(frame).values()]
    return {"data": data, "total": len(data), "limit": 0, "offset": 0, "errors": None}


def _encode_id(hex_id: str, encoding: str) -> str:
    if encoding == "base64":
        return base64.b64encode(bytes.fromhex(hex_id)).decode("ascii")
    return hex_id


def _attr(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def frame_to_otlp(
    frame: pd.DataFrame,
    key: str = "resourceSpans",
    id_encoding: str = "hex",
    *,
    scope_key: str = "scopeSpans",
    enums: str | None = None,
) -> dict[str, Any]:
    """OTLP/JSON ``{key: [resource blocks]}``, one block per (service, pod, node).

    ``id_encoding`` "hex" (Jaeger api_v3) or "base64" (Tempo); ``enums`` "int" (``kind: 2``,
    ``code: 2``) or "name" (``SPAN_KIND_SERVER``); by default ints with hex, names with base64.
    """
    names = (enums or ("name" if id_encoding == "base64" else "int")) == "name"
    blocks: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for s in _rows(frame):
        start_ns = s["start_us"] * 1000
        span: dict[str, Any] = {
            "traceId": _encode_id(s["trace_id"], id_encoding),
            "spanId": _encode_id(s["span_id"], id_encoding),
            "name": s["operation"],
            "kind": f"SPAN_KIND_{(s['kind'] or 'unspecified').upper()}" if names
            else _KIND_INTS[s["kind"]],
            "startTimeUnixNano": str(start_ns),
            "endTimeUnixNano": str(start_ns + s["duration_us"] * 1000),
            "attributes": [],
            "status": ({"code": "STATUS_CODE_ERROR" if names else 2, "message": "failed"}
                       if s["status"] == "2" else {}),
        }
        if s["parent_id"]:
            span["parentSpanId"] = _encode_id(s["parent_id"], id_encoding)
        blocks.setdefault((s["service"], s["pod"], s["node"]), []).append(span)
    out = []
    for (service, pod, node), spans in blocks.items():
        attrs = [_attr("service.name", service), _attr("k8s.pod.name", pod)]
        if node:
            attrs.append(_attr("k8s.node.name", node))
        out.append({"resource": {"attributes": attrs},
                    scope_key: [{"scope": {"name": "fake"}, "spans": spans}]})
    return {key: out}


# ---------------------------------------------------------------------------------- server

@dataclass(frozen=True)
class _File:
    body: bytes
    status: int
    content_type: str


class TraceApiServer(FaultyServer):
    """Fake Jaeger (``flavor="jaeger"``) or Tempo (``flavor="tempo"``) query API; see the
    module docstring."""

    def __init__(
        self,
        spans: pd.DataFrame | None = None,
        *,
        flavor: str = "jaeger",
        apis: Iterable[str] | None = None,
        files: Mapping[str, Path | str | bytes | dict[str, Any]] | None = None,
        faults: Iterable[Fault] = (),
        tempo_key: str = "batches",
        id_encoding: str | None = None,
        partial: bool = False,
        v3_stream: bool = False,
        unknown: str = "404",
        host: str = "127.0.0.1",
        shutdown_timeout_s: float = 0.5,
    ) -> None:
        if flavor not in ("jaeger", "tempo"):
            raise ValueError(f"flavor must be 'jaeger' or 'tempo', not {flavor!r}")
        self.flavor = flavor
        default_apis = {"v1", "v3"} if flavor == "jaeger" else {"v1", "v2", "search"}
        self.apis = set(apis) if apis is not None else default_apis
        self.tempo_key = tempo_key
        self.id_encoding = id_encoding or ("hex" if flavor == "jaeger" else "base64")
        self.partial = partial
        self.v3_stream = v3_stream
        self.unknown = unknown
        self._frame = spans if spans is not None else pd.DataFrame()
        self._traces = _by_trace(self._frame) if len(self._frame) else {}
        self._search_index: list[tuple[int, int, str, dict[str, list[int]]]] | None = None
        self._v3_json: dict[str, str] = {}
        self._longest = 0
        self._firsts: list[int] = []
        self._edges: dict[str, Counter[tuple[str, str]]] | None = None
        self._metrics_frame: pd.DataFrame | None = None
        super().__init__(faults, host, shutdown_timeout_s)
        self._files: dict[str, _File] = {}
        for path, source in (files or {}).items():
            self.serve_file(path, source)

    # ------------------------------------------------------------------ public API

    def serve_file(
        self,
        path: str,
        source: Path | str | bytes | dict[str, Any],
        *,
        status: int = 200,
        content_type: str = "application/json",
    ) -> None:
        """Answer GET ``path`` (exact, without query) with a file's bytes, text or JSON."""
        if isinstance(source, Path):
            body = source.read_bytes()
        elif isinstance(source, dict):
            body = json.dumps(source).encode()
        elif isinstance(source, str):
            body = source.encode()
        else:
            body = source
        with self._lock:
            self._files[path] = _File(body, status, content_type)

    # ------------------------------------------------------------------ server thread

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/{tail:.*}", self._handle)

    # ------------------------------------------------------------------ handlers

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        with self._lock:
            self._requests.append(request.path_qs)
        fault = self._take_fault(path)
        if fault is not None:
            await self._sleep(fault.delay_s)
            if fault.status is not None:
                return _fault_response(fault)
        with self._lock:
            raw = self._files.get(path)
        if raw is not None:
            return web.Response(body=raw.body, status=raw.status, content_type=raw.content_type)
        try:
            answer = (self._jaeger(path, request.query) if self.flavor == "jaeger"
                      else self._tempo(path, request.query))
        except _HttpError as exc:
            return exc.response
        if answer is not None:
            return answer
        if self.unknown == "html":
            return web.Response(text=_HTML, content_type="text/html")
        return web.Response(text="404 page not found\n", status=404)

    # Jaeger ---------------------------------------------------------------------------

    def _jaeger(self, path: str, query: Mapping[str, str]) -> web.StreamResponse | None:
        if "v3" in self.apis and path.startswith("/api/v3/"):
            return self._jaeger_v3(path[len("/api/v3"):], query)
        if "v1" in self.apis and path.startswith("/api/") and not path.startswith("/api/v"):
            return self._jaeger_v1(path[len("/api"):], query)
        return None

    def _jaeger_v1(self, path: str, query: Mapping[str, str]) -> web.StreamResponse | None:
        if path == "/services":
            return web.json_response(_v1_envelope(self._services()))
        if path == "/dependencies":
            try:
                end_ms = int(query["endTs"])
                lookback_ms = int(query.get("lookback") or 86_400_000)
            except (KeyError, ValueError) as exc:
                raise _v1_error(400, f"unable to parse param 'endTs': {exc}") from None
            edges = self._dependencies((end_ms - lookback_ms) * 1000, end_ms * 1000)
            return web.json_response(_v1_envelope(
                [{"parent": p, "child": c, "callCount": n} for (p, c), n in sorted(edges.items())]))
        match = re.fullmatch(r"/services/([^/]+)/operations", path)
        if match:
            return web.json_response(_v1_envelope(self._operations(match.group(1))))
        if path.startswith("/traces/"):
            spans = self._trace(path[len("/traces/"):])
            if spans is None:
                raise _v1_error(404, "trace not found")
            return web.json_response(frame_to_jaeger_v1(pd.DataFrame(spans)))
        if path == "/traces":
            service = query.get("service", "")
            if not service:
                raise _v1_error(400, "parameter 'service' is required")
            try:
                start = int(query["start"]) if "start" in query else None
                end = int(query["end"]) if "end" in query else None
                limit = int(query.get("limit") or 20)
            except ValueError as exc:
                raise _v1_error(400, f"malformed parameter: {exc}") from None
            found = self._search(service, start, end, limit)
            data = [_v1_trace(self._traces[t]) for t in found]
            return web.json_response({"data": data, "total": len(data), "limit": 0,
                                      "offset": 0, "errors": None})
        return None

    def _jaeger_v3(self, path: str, query: Mapping[str, str]) -> web.StreamResponse | None:
        if path == "/services":
            return web.json_response({"services": self._services()})
        if path == "/operations":
            ops = self._operations(query.get("service", ""))
            return web.json_response({"operations": [{"name": o, "spanKind": ""} for o in ops]})
        if path.startswith("/traces/"):
            spans = self._trace(path[len("/traces/"):])
            if spans is None:
                raise _v3_error(404, "No traces found")
            return self._v3_result([spans])
        if path == "/traces":
            service = query.get("query.service_name", "")
            tmin, tmax = query.get("query.start_time_min"), query.get("query.start_time_max")
            if not tmin or not tmax:
                raise _v3_error(400, "query.start_time_min and query.start_time_max are required")
            try:
                start, end = _rfc3339_us(tmin), _rfc3339_us(tmax)
                depth = query.get("query.search_depth") or query.get("query.num_traces") or "20"
                limit = int(depth)
            except ValueError as exc:
                raise _v3_error(400, f"malformed parameter: {exc}") from None
            found = self._search(service, start, end, limit)
            if not found:
                raise _v3_error(404, "No traces found")
            if not self.v3_stream:
                return self._v3_result_cached(found)
            return self._v3_result([self._traces[t] for t in found])
        return None

    def _v3_result_cached(self, trace_ids: list[str]) -> web.Response:
        """A search answer assembled from each trace's JSON, encoded once (keeps the fake
        fast enough for benchmarks of the client, as a real Jaeger would be)."""
        parts = []
        for tid in trace_ids:
            if tid not in self._v3_json:
                blocks = frame_to_otlp(pd.DataFrame(self._traces[tid]), id_encoding="hex")
                self._v3_json[tid] = json.dumps(blocks["resourceSpans"])[1:-1]
            parts.append(self._v3_json[tid])
        text = '{"result": {"resourceSpans": [' + ", ".join(p for p in parts if p) + "]}}"
        return web.Response(text=text, content_type="application/json")

    def _v3_result(self, traces: list[list[dict[str, Any]]]) -> web.Response:
        if self.v3_stream:  # grpc-gateway: one {"result": ...} per trace, newline-separated
            text = "\n".join(
                json.dumps({"result": frame_to_otlp(pd.DataFrame(t), id_encoding="hex")})
                for t in traces)
            return web.Response(text=text + "\n", content_type="application/json")
        frame = pd.DataFrame([s for t in traces for s in t])
        return web.json_response({"result": frame_to_otlp(frame, id_encoding="hex")})

    # Tempo ----------------------------------------------------------------------------

    def _tempo(self, path: str, query: Mapping[str, str]) -> web.StreamResponse | None:
        if "v2" in self.apis and path.startswith("/api/v2/traces/"):
            spans = self._trace(path[len("/api/v2/traces/"):])
            if spans is None:
                raise _HttpError(web.Response(text="trace not found", status=404))
            otlp = frame_to_otlp(pd.DataFrame(spans), "resourceSpans", self.id_encoding)
            return web.json_response({"trace": otlp, "metrics": {"inspectedBytes": "100"},
                                      "status": "PARTIAL" if self.partial else "COMPLETE"})
        if "v1" in self.apis and path.startswith("/api/traces/"):
            spans = self._trace(path[len("/api/traces/"):])
            if spans is None:
                raise _HttpError(web.Response(text="trace not found", status=404))
            return web.json_response(
                frame_to_otlp(pd.DataFrame(spans), self.tempo_key, self.id_encoding))
        if "search" in self.apis and path == "/api/search":
            return self._tempo_search(query)
        if "metrics" in self.apis and path == "/api/metrics/query":
            return self._tempo_metrics(query)
        return None

    def _tempo_metrics(self, query: Mapping[str, str]) -> web.Response:
        """A TraceQL metrics instant query over the spans starting in (start, end]."""
        q = (query.get("q") or query.get("query") or "").strip()
        match = _METRICS_QUERY.match(q)
        if match is None:
            raise _HttpError(web.Response(
                text=f"parse error at line 1, col 1: syntax error: {q}", status=400))
        status, function, groups = match.group(1), match.group(2), match.group(3) or ""
        by = [g.strip() for g in groups.split(",") if g.strip()]
        histogram = function.startswith("histogram")
        if len(by) > (4 if histogram else 5):
            raise _HttpError(web.Response(
                text=f"compiling query: metrics group by {len(by)} values not yet supported", status=400))
        unknown = [g for g in by if g not in _METRICS_GROUPS]
        if unknown:  # a real Tempo groups by any attribute; the spans here have only these
            raise _HttpError(web.Response(text=f"stand-in: cannot group by {unknown[0]}", status=400))
        try:
            start, end = float(query["start"]), float(query["end"])
        except (KeyError, ValueError) as exc:
            raise _HttpError(web.Response(text=f"could not parse 'start'/'end' parameter: {exc}",
                                          status=400)) from None
        if end <= start:
            raise _HttpError(web.Response(text="end must be greater than start", status=400))
        if end - start > _METRICS_MAX_S:
            raise _HttpError(web.Response(
                text="metrics query time range exceeds the maximum allowed duration of 3h0m0s", status=400))
        spans = self._metric_spans()
        starts = spans["start_us"].to_numpy()
        picked = spans.iloc[starts.searchsorted(int(start * 1e6), "right"):
                            starts.searchsorted(int(end * 1e6), "right")]
        if status:
            picked = picked[picked["tempo_status"] == status]
        columns = [_METRICS_GROUPS[g] for g in by]
        if histogram:
            ns = picked["duration_us"].to_numpy() * 1000
            # the next power of two at or above each duration (ns), in seconds
            picked = picked[ns >= 2].assign(bucket=np.exp2(np.ceil(np.log2(ns[ns >= 2]))) / 1e9)
            columns.append("bucket")
        series = []
        counts = picked.groupby(columns, sort=False).size().items() if columns else \
            ([((), len(picked))] if len(picked) else [])
        for key, count in counts:
            values = key if isinstance(key, tuple) else (key,)
            labels = [_attr(g, str(v)) for g, v in zip(by, values, strict=False)]
            if histogram:
                labels.append({"key": "__bucket", "value": {"doubleValue": values[-1]}})
            series.append({"labels": labels, "value": float(count)})
        body: dict[str, Any] = {"metrics": {"inspectedSpans": str(len(picked)), "completedJobs": 1,
                                            "totalJobs": 1}}
        if series:  # jsonpb leaves an empty list out
            body["series"] = series
        return web.json_response(body)

    def _metric_spans(self) -> pd.DataFrame:
        """The spans by start, with Tempo's status names (error, ok, unset)."""
        if self._metrics_frame is None:
            frame = self._frame.sort_values("start_us", kind="stable")
            codes = frame["status"].astype(str)
            self._metrics_frame = frame.assign(tempo_status=codes.map({"2": "error", "1": "ok"}).fillna("unset"))
        return self._metrics_frame

    def _tempo_search(self, query: Mapping[str, str]) -> web.Response:
        q = query.get("q", "{}").strip()
        match = _SERVICE_QUERY.match(q)
        if match is None:
            raise _HttpError(web.Response(
                text=f'invalid TraceQL query: parse error at line 1, col 1: syntax error: {q}',
                status=400))
        service = match.group(1)
        service = service.replace('\\"', '"').replace("\\\\", "\\") if service else None
        selected = [a.strip() for a in (match.group(2) or "").split(",") if a.strip()]
        if any(a not in _SELECTABLE for a in selected):  # a real Tempo selects any attribute
            raise _HttpError(web.Response(text=f"stand-in: cannot select {selected}", status=400))
        newest = match.group(3) is not None
        try:
            start = int(query["start"]) * 1_000_000 if "start" in query else None
            end = int(query["end"]) * 1_000_000 if "end" in query else None
            limit = int(query.get("limit") or 20)
            spss = int(query.get("spss") or _SPSS_DEFAULT)
        except ValueError as exc:
            raise _HttpError(web.Response(text=f"invalid parameter: {exc}", status=400)) from None
        if spss > _SPSS_MAX:
            raise _HttpError(web.Response(
                text=f"spans per span set exceeds {_SPSS_MAX}. received {spss}", status=400))
        keys = [_SELECTABLE[a] for a in selected] + (["service.name"] if service else [])
        traces = []
        for tid in self._search(service, start, end, limit, root_only=True, newest=newest):
            spans = self._traces[tid]
            root = min(spans, key=lambda s: s["start_us"])
            end_us = max(s["start_us"] + s["duration_us"] for s in spans)
            matched = sorted((s for s in spans if service is None or s["service"] == service),
                             key=lambda s: s["start_us"])
            span_set = {"spans": [_span_set_span(s, keys) for s in matched[:spss]],
                        "matched": len(matched)}
            traces.append({
                "traceID": tid.lstrip("0"),  # Tempo drops leading zeros
                "rootServiceName": root["service"], "rootTraceName": root["operation"],
                "startTimeUnixNano": str(root["start_us"] * 1000),
                "durationMs": (end_us - root["start_us"]) // 1000,
                "spanSet": span_set, "spanSets": [span_set],
            })
        return web.json_response({"traces": traces, "metrics": {"completedJobs": 1,
                                                                "totalJobs": 1}})

    # shared ---------------------------------------------------------------------------

    def _trace(self, raw_id: str) -> list[dict[str, Any]] | None:
        return self._traces.get(normalize_trace_id(raw_id))

    def _services(self) -> list[str]:
        return sorted({s["service"] for spans in self._traces.values() for s in spans})

    def _operations(self, service: str) -> list[str]:
        return sorted({s["operation"] for spans in self._traces.values() for s in spans
                       if s["service"] == service})

    def _search(
        self, service: str | None, start_us: int | None, end_us: int | None, limit: int,
        *, root_only: bool = False, newest: bool = False,
    ) -> list[str]:
        """Trace IDs with a span of ``service`` starting in [start, end] (Jaeger), or whose
        root starts there (``root_only``, Tempo), in order of first start, or the newest first
        (``newest``: TraceQL's ``most_recent=true``); indexed, so large frames answer fast."""
        index = self._index()
        first = self._firsts
        lo = 0 if start_us is None else bisect.bisect_left(first, start_us - self._longest)
        hi = len(index) if end_us is None else bisect.bisect_right(first, end_us)
        found = []
        for first_start, last_start, tid, starts in (reversed(index[lo:hi]) if newest
                                                      else index[lo:hi]):
            if service and service not in starts:
                continue
            times = [first_start] if root_only else starts.get(service or _ALL, [])
            if _any_within(times, start_us, end_us):
                found.append(tid)
                if len(found) >= limit:
                    break
        return found

    def _dependencies(self, start_us: int, end_us: int) -> Counter[tuple[str, str]]:
        """Caller → callee service edges of the traces starting in [start, end], counted as
        Jaeger's in-memory store counts them (one per span whose parent is in another
        service)."""
        if self._edges is None:
            self._edges = {}
            for tid, spans in self._traces.items():
                service_of = {s["span_id"]: s["service"] for s in spans}
                self._edges[tid] = Counter(
                    (service_of[s["parent_id"]], s["service"]) for s in spans
                    if s["parent_id"] in service_of and service_of[s["parent_id"]] != s["service"])
        total: Counter[tuple[str, str]] = Counter()
        for tid in self._search(None, start_us, end_us, len(self._traces) or 1):
            total.update(self._edges[tid])
        return total

    def _index(self) -> list[tuple[int, int, str, dict[str, list[int]]]]:
        """(first start, last start, trace ID, span starts by service), by first start."""
        if self._search_index is None:
            entries = []
            for tid, spans in self._traces.items():
                starts: dict[str, list[int]] = {}
                for span in spans:
                    starts.setdefault(span["service"], []).append(int(span["start_us"]))
                for values in starts.values():
                    values.sort()
                starts[_ALL] = sorted(int(sp["start_us"]) for sp in spans)
                entries.append((starts[_ALL][0], starts[_ALL][-1], tid, starts))
            entries.sort(key=lambda e: e[0])
            self._longest = max((e[1] - e[0] for e in entries), default=0)
            self._firsts = [e[0] for e in entries]
            self._search_index = entries
        return self._search_index


_ALL = "\x00all"  # key of every span's start in the search index


def _span_set_span(span: Mapping[str, Any], keys: list[str]) -> dict[str, Any]:
    """A span as a search answer's span set shows it (gogo-jsonpb: uint64 as strings): its
    name only when the query selected it (Tempo fetches a name for nothing else), and the
    attributes the query selected or filtered on."""
    values = {"service.name": span["service"],
              "status": {"2": "error", "1": "ok"}.get(str(span["status"]), "unset")}
    out: dict[str, Any] = {"spanID": span["span_id"],
                           "startTimeUnixNano": str(int(span["start_us"]) * 1000),
                           "durationNanos": str(int(span["duration_us"]) * 1000)}
    if "name" in keys:
        out["name"] = span["operation"]
    attributes = [_attr(k, values[k]) for k in dict.fromkeys(keys) if k != "name"]
    if attributes:
        out["attributes"] = attributes
    return out


def _any_within(times: list[int], start_us: int | None, end_us: int | None) -> bool:
    """Whether one of the sorted start times lies in [start, end]."""
    if not times:
        return False
    lo = -(2**63) if start_us is None else start_us
    hi = 2**63 if end_us is None else end_us
    i = bisect.bisect_left(times, lo)
    return i < len(times) and times[i] <= hi


class _HttpError(Exception):
    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _v1_envelope(data: Any) -> dict[str, Any]:
    return {"data": data, "total": len(data), "limit": 0, "offset": 0, "errors": None}


def _v1_error(status: int, message: str) -> _HttpError:
    body = {"data": None, "total": 0, "limit": 0, "offset": 0,
            "errors": [{"code": status, "msg": message}]}
    return _HttpError(web.json_response(body, status=status))


def _v3_error(status: int, message: str) -> _HttpError:
    body = json.dumps({"error": {"httpCode": status, "message": message}})
    return _HttpError(web.Response(text=body + "\n", status=status, content_type="text/plain"))


def _fault_response(fault: Fault) -> web.Response:
    if isinstance(fault.body, dict):
        return web.json_response(fault.body, status=fault.status or 500, headers=fault.headers)
    text = fault.body if fault.body is not None else f"injected fault (HTTP {fault.status})"
    return web.Response(text=text, status=fault.status or 500, headers=fault.headers)


def _rfc3339_us(text: str) -> int:
    """RFC 3339 (any number of fraction digits, ``Z`` or an offset) → epoch µs."""
    match = re.fullmatch(r"(.+?T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if match is None:
        raise ValueError(f"not RFC 3339: {text!r}")
    head, frac, zone = match.groups()
    stamp = datetime.fromisoformat(head + ("+00:00" if zone == "Z" else zone))
    micros = int((frac or "0")[:6].ljust(6, "0"))
    return int(stamp.timestamp()) * 1_000_000 + micros
