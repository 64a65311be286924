"""Traces from a Jaeger query service (port 16686): api_v3 (OTLP JSON) and the v1 UI JSON API.

``api="auto"`` (the default) asks api_v3 first and falls back to v1 when api_v3 answers 404 or
a body that is not JSON (Jaeger 1.x before api_v3 serves its UI page there); the first API that
answers successfully is then used alone. ``api="v1"`` or ``"v3"`` uses one API only.

v1 traces (``{"data": [{traceID, spans[], processes{}}]}``) become span frame rows this way:
the parent is the first ``CHILD_OF`` reference within the same trace (``FOLLOWS_FROM`` only when
there is no such ``CHILD_OF``; references to other traces are ignored), ``startTime`` and
``duration`` are µs, the service is the process's ``serviceName``, the pod the first of the
process or span tags ``k8s.pod.name``, ``hostname``, ``host.name``, ``pod`` (else the service),
the node ``k8s.node.name``, the status "2" when a tag says ``error=true`` or
``otel.status_code=ERROR`` (else "0"), the kind the ``span.kind`` tag. Duplicate span IDs and
spans whose parent is missing are kept as they are; ``clean_spans`` deals with them later.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import pandas as pd

from thinkfl_operator.core import rfc3339
from thinkfl_operator.core.errors import UserInputError
from thinkfl_operator.telemetry.http import (
    BackendRejected,
    HttpBackend,
    HttpBackendError,
    InvalidResponse,
    NotFound,
    QueryClient,
    first_answer,
)
from thinkfl_operator.telemetry.otlp import (
    ERROR_STATUS,
    OK_STATUS,
    Row,
    base64_bytes,
    error_attributes,
    int_value,
    normalize_span_id,
    normalize_trace_id,
    otlp_rows,
    require_trace_id,
    span_frame,
    span_kind,
    text_value,
)

POD_TAGS = ("k8s.pod.name", "hostname", "host.name", "pod")
NODE_TAG = "k8s.node.name"
APIS = ("v1", "v3", "auto")
DISPLAY_NAME = "Jaeger"

T = TypeVar("T")


class JaegerClient(QueryClient):
    """Traces, trace search and service names from one Jaeger query service."""

    name = "jaeger"

    display_name = DISPLAY_NAME
    apis = APIS

    # ------------------------------------------------------------------ queries

    def trace(self, trace_id: str) -> pd.DataFrame:
        """All spans of one trace (not cleaned); ``NotFound`` when Jaeger does not have it."""
        tid = require_trace_id(trace_id)
        try:
            return self._first({
                "v3": lambda: _nonempty(v3_frame(
                    self.http.get_json_documents(f"/api/v3/traces/{tid}"), self.http)),
                "v1": lambda: _nonempty(_concat(v1_frames(
                    self.http.get_json(f"/api/traces/{tid}")))),
            })
        except NotFound as exc:
            raise NotFound(
                f"trace {tid} not found in {DISPLAY_NAME} at {self.url}", backend=DISPLAY_NAME,
                url=self.url, path=exc.path, status=exc.status, detail=exc.detail,
            ) from None

    def search_frame(self, service: str, start_s: float, end_s: float, limit: int = 20,
                     skip: Container[str] = ()) -> pd.DataFrame:
        """``search`` as one frame (all traces' spans), without splitting it per trace; the
        traces in ``skip`` (held already) are left out before they are decoded."""
        frames = self.search(service, start_s, end_s, limit, split=False, skip=skip)
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else (frames[0] if frames else
                                                                             span_frame([]))

    def search(
        self, service: str, start_s: float, end_s: float, limit: int = 20, split: bool = True,
        skip: Container[str] = (),
    ) -> list[pd.DataFrame]:
        """Traces with a span of ``service`` starting in [start_s, end_s] (epoch seconds), one
        frame per trace, at most ``limit`` traces (as Jaeger picks them)."""
        if not service:
            raise UserInputError("Jaeger trace search needs a service name")
        if end_s < start_s or limit < 1:
            raise UserInputError(
                f"Jaeger trace search needs start <= end and limit >= 1 "
                f"(got {start_s}, {end_s}, {limit})"
            )
        v1_params = {"service": service, "start": _us(start_s), "end": _us(end_s), "limit": limit}
        v3_params = {
            "query.service_name": service,
            "query.start_time_min": search_time(start_s),
            "query.start_time_max": search_time(end_s),
            # search_depth is the current name; num_traces the alias older versions read.
            "query.search_depth": limit,
            "query.num_traces": limit,
        }
        return self._first({
            "v3": lambda: self._search_v3(v3_params, split, skip),
            "v1": lambda: _v1_search(self.http.get_json("/api/traces", v1_params), split, skip),
        })

    def dependencies(self, end_s: float, lookback_s: float) -> list[tuple[str, str, int]]:
        """(parent, child, call count) service edges of the ``lookback_s`` before ``end_s``,
        from the query service's ``/api/dependencies`` (Jaeger 1.x and 2.x serve it beside
        api_v3). [] when the server has no such route or no graph (Elasticsearch and Cassandra
        need the spark-dependencies job for one)."""
        params = {"endTs": round(end_s * 1000), "lookback": max(1, round(lookback_s * 1000))}
        try:
            body = self.http.get_json("/api/dependencies", params)
        except (NotFound, InvalidResponse):
            return []  # no such route (an HTML page or a 404): no graph to read
        items = body.get("data") if isinstance(body, Mapping) else body
        edges = []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, Mapping) and item.get("parent") and item.get("child"):
                edges.append((str(item["parent"]), str(item["child"]),
                              int_value(item.get("callCount"), 0)))
        return edges

    def services(self) -> list[str]:
        """Service names Jaeger knows, sorted."""
        return self._first({
            "v3": lambda: _names(self.http.get_json("/api/v3/services"), "services"),
            "v1": lambda: _names(self.http.get_json("/api/services"), "data"),
        })

    def operations(self, service: str) -> list[str]:
        """Operation (span) names of one service, sorted."""
        path = quote(service, safe="")
        return self._first({
            "v3": lambda: _names(
                self.http.get_json("/api/v3/operations", {"service": service}), "operations"),
            "v1": lambda: _names(
                self.http.get_json(f"/api/services/{path}/operations"), "data"),
        })

    # ------------------------------------------------------------------ internals

    def _search_v3(self, params: Mapping[str, Any], split: bool = True,
                   skip: Container[str] = ()) -> list[pd.DataFrame]:
        try:
            docs = self.http.get_json_documents("/api/v3/traces", params)
        except NotFound as exc:
            if _no_traces_found(exc):
                return []  # api_v3 itself answered: an empty search, not a missing API
            if self.api == "auto" and self.resolved_api is None:
                raise  # maybe no api_v3 at all: let v1 answer
            return []
        frame = v3_frame(docs, self.http, skip)
        return split_traces(frame) if split else [frame]

    def _first(self, calls: Mapping[str, Callable[[], T]]) -> T:
        """The first API that answers; under "auto", remember it."""
        order = (self.resolved_api,) if self.resolved_api else ("v3", "v1")
        self.resolved_api, result = first_answer(order, calls, self.http)
        return result


# ---------------------------------------------------------------------------------- api_v3

def _no_traces_found(exc: NotFound) -> bool:
    """api_v3's own 404 for an empty search (as opposed to a server without api_v3)."""
    return "no traces found" in (exc.detail or "").lower()


def v3_frame(documents: Sequence[Any], http: HttpBackend | None = None,
             skip: Container[str] = ()) -> pd.DataFrame:
    """Spans of api_v3 answers: one ``{"result": TracesData}`` or a stream of them; an
    ``{"error": {...}}`` document raises (``NotFound`` for 404 / gRPC NOT_FOUND)."""
    rows: list[Row] = []
    for doc in documents:
        if not isinstance(doc, Mapping):
            continue
        if "result" in doc:
            rows.extend(otlp_rows(doc["result"] or {}, skip))
        elif "resourceSpans" in doc:
            rows.extend(otlp_rows(doc, skip))
        elif isinstance(doc.get("error"), Mapping):
            raise _stream_error(doc["error"], http)
    return span_frame(rows)


def _stream_error(error: Mapping[str, Any], http: HttpBackend | None) -> HttpBackendError:
    code = error.get("httpCode") or error.get("http_code")
    grpc = error.get("grpcCode") or error.get("code")
    message = str(error.get("message") or "")
    backend, url = (http.name, http.url) if http else (DISPLAY_NAME, "")
    if code == 404 or grpc == 5:
        return NotFound(f"{backend} at {url}: {message}", backend=backend, url=url, path="",
                        status=404, detail=message)
    return BackendRejected(f"{backend} at {url} answered with an error: {message}",
                           backend=backend, url=url, path="",
                           status=int(code) if isinstance(code, int) else None, detail=message)


def split_traces(frame: pd.DataFrame) -> list[pd.DataFrame]:
    """One frame per trace ID, in order of first appearance."""
    if frame.empty:
        return []
    return [part.reset_index(drop=True) for _, part in frame.groupby("trace_id", sort=False)]


# ---------------------------------------------------------------------------------- v1

def v1_frames(body: Mapping[str, Any] | Sequence[Any]) -> list[pd.DataFrame]:
    """One frame per trace of a v1 answer: the ``{"data": [...]}`` envelope, a list of trace
    objects, or one bare trace object."""
    if isinstance(body, Mapping):
        traces = body.get("data", [body] if "spans" in body else [])
    else:
        traces = list(body)
    frames = [v1_trace_frame(t) for t in traces or [] if isinstance(t, Mapping)]
    return [f for f in frames if not f.empty]


def _v1_search(body: Mapping[str, Any] | Sequence[Any], split: bool,
               skip: Container[str] = ()) -> list[pd.DataFrame]:
    """A v1 search answer: one frame per trace, or (``split=False``) one frame for the whole
    answer, decoded in one batch, the traces in ``skip`` left out undecoded."""
    if split:
        return v1_frames(body)
    traces = body.get("data") if isinstance(body, Mapping) else body
    frame = span_frame(row for t in traces or [] if isinstance(t, Mapping)
                       and not (skip and normalize_trace_id(t.get("traceID")) in skip)
                       for row in v1_rows(t))
    return [] if frame.empty else [frame]


def v1_trace_frame(trace: Mapping[str, Any]) -> pd.DataFrame:
    """The spans of one v1 trace object (not cleaned)."""
    return span_frame(v1_rows(trace))


def v1_rows(trace: Mapping[str, Any]) -> Iterator[Row]:
    processes = {pid: (str(p.get("serviceName") or ""), v1_tags(p.get("tags")))
                 for pid, p in (trace.get("processes") or {}).items() if isinstance(p, Mapping)}
    trace_default = trace.get("traceID")
    for span in trace.get("spans") or []:
        tid = normalize_trace_id(span.get("traceID") or trace_default)
        embedded = span.get("process")
        if isinstance(embedded, Mapping):
            service, ptags = str(embedded.get("serviceName") or ""), v1_tags(embedded.get("tags"))
        else:
            service, ptags = processes.get(span.get("processID"), ("", {}))
        tags = v1_tags(span.get("tags"))
        pod = next((text_value(ptags.get(k) or tags.get(k)) for k in POD_TAGS
                    if ptags.get(k) or tags.get(k)), service)
        yield (
            tid,
            normalize_span_id(span.get("spanID")),
            v1_parent(span, tid),
            pod,
            service,
            text_value(ptags.get(NODE_TAG) or tags.get(NODE_TAG)),
            str(span.get("operationName") or ""),
            int_value(span.get("startTime"), 0),
            int_value(span.get("duration"), 0),
            ERROR_STATUS if _is_error(tags, span.get("logs")) else OK_STATUS,
            span_kind(text_value(tags.get("span.kind"))),
        )


def v1_parent(span: Mapping[str, Any], trace_id: str) -> str:
    """The parent span ID: CHILD_OF in the same trace, else FOLLOWS_FROM, else ``parentSpanID``."""
    found: dict[str, str] = {}
    for ref in span.get("references") or []:
        if not isinstance(ref, Mapping):
            continue
        kind = str(ref.get("refType") or "CHILD_OF").upper()
        ref_trace = ref.get("traceID")
        if ref_trace and normalize_trace_id(ref_trace) != trace_id:
            continue  # a link to another trace
        parent = normalize_span_id(ref.get("spanID"))
        if parent and kind not in found:
            found[kind] = parent
    return found.get("CHILD_OF") or found.get("FOLLOWS_FROM") or normalize_span_id(
        span.get("parentSpanID"))


def v1_tags(tags: Any) -> dict[str, Any]:
    """v1 ``[{key, type, value}]`` → ``{key: value}``, typed: int64 (also sent as a JSON string
    when above 2^53) → int, float64 → float, bool → bool, binary (base64) → bytes."""
    out: dict[str, Any] = {}
    for tag in tags or []:
        if not isinstance(tag, Mapping) or "key" not in tag:
            continue
        kind, value = str(tag.get("type") or "string").lower(), tag.get("value")
        try:
            if kind == "int64":
                value = int_value(value)
            elif kind == "float64":
                value = float(value)  # type: ignore[arg-type]
            elif kind == "bool":
                value = value if isinstance(value, bool) else str(value).lower() == "true"
            elif kind == "binary":
                value = base64_bytes(str(value)) or b""
        except (TypeError, ValueError):
            pass  # keep what was sent
        out[str(tag["key"])] = value
    return out


def _is_error(tags: Mapping[str, Any], logs: object = None) -> bool:
    """Error tags (``otlp.error_attributes``), or a span log recording an error or exception
    (``event=error``, ``exception.type``: OpenTracing and OpenTelemetry exception events)."""
    if error_attributes(tags):
        return True
    for entry in logs if isinstance(logs, list) else ():
        fields = v1_tags(entry.get("fields")) if isinstance(entry, Mapping) else {}
        if str(fields.get("event") or "").lower() in ("error", "exception") or "exception.type" in fields:
            return True
    return False


# ---------------------------------------------------------------------------------- helpers

def search_time(seconds: float) -> str:
    """Epoch seconds as RFC 3339 UTC to the microsecond (Go's RFC 3339 parser reads any number
    of fraction digits)."""
    whole, frac = divmod(_us(seconds), 1_000_000)
    return rfc3339.format_utc(datetime.fromtimestamp(whole, UTC).replace(microsecond=frac),
                              fraction=True)


def _us(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _nonempty(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        raise NotFound("no spans", backend=DISPLAY_NAME, url="", path="", status=None)
    return frame


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if len(frames) == 1:
        return frames[0]
    if not frames:
        return span_frame([])
    return pd.concat(frames, ignore_index=True)


def _names(body: Any, key: str) -> list[str]:
    items = body.get(key) if isinstance(body, Mapping) else body
    names = {str(i.get("name") if isinstance(i, Mapping) else i) for i in items or []}
    return sorted(n for n in names if n)
