"""Jaeger and Tempo answers → span frames: every fixture in ../shared/fixtures, the edge
cases they hold, and round trips (span frame → each API shape → fake server → client → same
frame)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.fakes.trace_api import (
    TraceApiServer,
    frame_to_jaeger_v1,
    frame_to_otlp,
    jaeger_trace_id,
)
from tests.shared import shared_path
from thinkfl_operator.core.errors import InvalidIncident
from thinkfl_operator.telemetry.http import HttpBackend
from thinkfl_operator.telemetry.jaeger import (
    JaegerClient,
    search_time,
    v1_frames,
    v1_tags,
    v1_trace_frame,
    v3_frame,
)
from thinkfl_operator.telemetry.otlp import (
    ERROR_STATUS,
    any_value,
    attributes,
    error_attributes,
    normalize_span_id,
    normalize_trace_id,
    otlp_frame,
    require_trace_id,
    span_kind,
    span_status,
)
from thinkfl_operator.telemetry.quality import DataQuality
from thinkfl_operator.telemetry.spans import COLUMNS, clean_spans
from thinkfl_operator.telemetry.tempo import (
    TempoClient,
    search_results,
    service_query,
    v2_trace,
)

# ---------------------------------------------------------------------------------- helpers


def jaeger_file(name: str) -> Path:
    return shared_path("fixtures", "jaeger", name)


def tempo_file(name: str) -> Path:
    return shared_path("fixtures", "tempo", name)


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain dicts in (trace_id, span_id, start) order, only ``COLUMNS``."""
    plain = pd.DataFrame({c: frame[c].astype(str) for c in COLUMNS if c not in
                          ("start_us", "duration_us")})
    plain["start_us"] = frame["start_us"].astype("int64").to_numpy()
    plain["duration_us"] = frame["duration_us"].astype("int64").to_numpy()
    plain = plain[list(COLUMNS)].sort_values(["trace_id", "span_id", "start_us"])
    return plain.to_dict("records")  # type: ignore[no-any-return]


def cleaned(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return records(clean_spans(frame, DataQuality()))


def column(frame: pd.DataFrame, name: str) -> list[Any]:
    return frame[name].tolist()


# ---------------------------------------------------------------------------------- Jaeger fixtures


@pytest.mark.shared_data
def test_otlp_input_has_two_identical_server_spans() -> None:
    frame = otlp_frame(load(jaeger_file("otlp_json_input__jaeger_otlp2jaeger-in.json")))
    assert len(frame) == 2
    first = frame.iloc[0].to_dict()
    assert first == {
        "trace_id": "83a9efd15c1c98a977e0711cc93ee28b", "span_id": "e127af99e3b3e074",
        "parent_id": "909541b92cf05311", "pod": "telemetrygen", "service": "telemetrygen",
        "node": "", "operation": "okey-dokey-0", "start_us": 1706678909209712,
        "duration_us": 123, "status": "0", "kind": "server",
    }
    assert frame.iloc[1].to_dict() == first
    assert str(frame["start_us"].dtype) == "int64" and str(frame["duration_us"].dtype) == "int64"
    quality = DataQuality()
    assert len(clean_spans(frame, quality)) == 1
    assert quality.skipped["repeated spans"] == 1


@pytest.mark.shared_data
def test_v1_transform_response_keeps_duplicate_spans_and_matches_its_otlp_input() -> None:
    path = jaeger_file("v1_api_transform_response__jaeger_otlp2jaeger-out.json")
    trace_id = "83a9efd15c1c98a977e0711cc93ee28b"
    with TraceApiServer(files={f"/api/traces/{trace_id}": path}) as server:
        client = JaegerClient(server.url, api="v1")
        frame = client.trace(trace_id)
    assert len(frame) == 2  # the 2 spans share one span ID; the client keeps both
    assert column(frame, "span_id") == ["e127af99e3b3e074"] * 2
    assert column(frame, "kind") == ["server"] * 2  # from the span.kind tag
    otlp = otlp_frame(load(jaeger_file("otlp_json_input__jaeger_otlp2jaeger-in.json")))
    assert records(frame) == records(otlp)


@pytest.mark.shared_data
def test_v1_ui_trace_object_references_tags_and_duplicates() -> None:
    trace = load(jaeger_file("v1_trace_object__jaeger_ui_01.json"))
    frame = v1_trace_frame(trace)
    assert len(frame) == 5
    assert set(frame["trace_id"]) == {"00000000000000000000000000000001"}  # 64-bit, padded
    assert column(frame, "span_id") == [f"000000000000000{i}" for i in (2, 2, 3, 4, 5)]
    parents = dict(zip(frame["span_id"], frame["parent_id"], strict=False))
    # span 4: CHILD_OF another trace (ignored), CHILD_OF span 2, FOLLOWS_FROM span 2
    assert parents["0000000000000004"] == "0000000000000002"
    assert parents["0000000000000005"] == "0000000000000004"
    assert column(frame, "status") == ["0", "2", "0", "0", "0"]  # error=true (bool tag)
    assert column(frame, "service") == ["service-x"] * 2 + ["service-y"] * 3
    assert column(frame, "pod") == column(frame, "service")  # no pod tags: the service
    assert column(frame, "duration_us") == [5, 5, 5, 5, 4]
    assert set(frame["start_us"]) == {1485467191639875}
    quality = DataQuality()
    assert len(clean_spans(frame, quality)) == 4
    assert quality.skipped["repeated spans"] == 1


@pytest.mark.shared_data
def test_v1_tags_decode_every_type_and_int64_sent_as_string() -> None:
    trace = load(jaeger_file("v1_trace_object__jaeger_ui_01.json"))
    tags = v1_tags(trace["spans"][1]["tags"])
    assert tags == {
        "peer.service": "service-y", "peer.ipv4": 23456, "error": True, "temperature": 72.5,
        "javascript_limit": 9223372036854775222, "blob": b"\x00\x0009",
    }
    assert isinstance(tags["javascript_limit"], int)  # above 2^53, sent as a JSON string


@pytest.mark.shared_data
def test_v1_follows_from_is_the_parent_only_without_child_of() -> None:
    trace = load(jaeger_file("v1_trace_object__jaeger_ui_01.json"))
    span = trace["spans"][3]
    span["references"] = [r for r in span["references"] if r["refType"] == "FOLLOWS_FROM"]
    span["references"][0]["spanID"] = "0000000000000003"
    parents = dict(zip(*(column(v1_trace_frame(trace), c) for c in ("span_id", "parent_id")),
                       strict=False))
    assert parents["0000000000000004"] == "0000000000000003"


@pytest.mark.shared_data
def test_v1_reference_to_another_trace_alone_leaves_a_root() -> None:
    trace = load(jaeger_file("v1_trace_object__jaeger_ui_01.json"))
    span = trace["spans"][3]
    span["references"] = [r for r in span["references"] if r["traceID"] == "00000000000000ff"]
    frame = v1_trace_frame(trace)
    assert frame.loc[frame["span_id"] == "0000000000000004", "parent_id"].tolist() == [""]


@pytest.mark.shared_data
def test_v1_petclinic_31_char_trace_id_is_padded_and_fetched_by_either_form() -> None:
    trace = load(jaeger_file(
        "v1_trace_object_petclinic__jaeger-ui_spanAmongEachOtherGroupedAndSpans.json"))
    assert len(trace["traceID"]) == 31
    padded = "0" + trace["traceID"]
    with TraceApiServer(files={f"/api/traces/{padded}": {"data": [trace]}}) as server:
        client = JaegerClient(server.url)  # auto: api_v3 404 → v1
        frame = client.trace(trace["traceID"])
        assert server.requests == [f"/api/v3/traces/{padded}", f"/api/traces/{padded}"]
        assert client.resolved_api == "v1"
    assert len(frame) == 17
    assert set(frame["trace_id"]) == {"0df84e36b9e2ee3815d07f0867a5be1f"}
    assert "0a68c6983a6d81a2" in set(frame["span_id"])  # a 15-character span ID, padded
    assert set(frame["service"]) == {"api-gateway", "customers-service"}
    assert column(frame, "parent_id").count("") == 1
    kinds = dict(zip(frame["span_id"], frame["kind"], strict=False))
    assert (kinds["9afcdf2e24e8d70a"], kinds["6962df17f54c3741"]) == ("server", "client")
    assert kinds["9f0a544e33b693c2"] == ""  # no span.kind tag


@pytest.mark.shared_data
def test_v1_orphan_spans_keep_their_parent_id() -> None:
    trace = load(jaeger_file(
        "v1_trace_object_petclinic__jaeger-ui_spanAmongEachOtherGroupedAndSpans.json"))
    trace["spans"] = [s for s in trace["spans"] if s["spanID"] != "6f9bbe751e5fd944"]
    frame = v1_trace_frame(trace)
    assert len(frame) == 16
    assert column(frame, "parent_id").count("6f9bbe751e5fd944") == 14
    assert len(clean_spans(frame, DataQuality())) == 16  # orphans are not dropped


@pytest.mark.shared_data
def test_v3_get_trace_snapshot_int_kind_and_error_status() -> None:
    path = jaeger_file("v3_GetTrace__jaeger_apiv3_snapshot.json")
    with TraceApiServer(files={"/api/v3/traces/" + "0" * 31 + "1": path}) as server:
        client = JaegerClient(server.url, api="v3")
        frame = client.trace("1")  # padded to 32 characters
        assert server.requests == ["/api/v3/traces/" + "0" * 31 + "1"]
    assert len(frame) == 1
    row = frame.iloc[0].to_dict()
    assert (row["trace_id"], row["span_id"]) == ("0" * 31 + "1", "0000000000000002")
    assert (row["kind"], row["status"], row["operation"]) == ("server", "2", "foobar")
    assert (row["start_us"], row["duration_us"], row["service"]) == (0, 0, "")  # omitted = 0
    assert frame.equals(v3_frame([load(path)]))


@pytest.mark.shared_data
def test_v3_find_traces_snapshot_through_search() -> None:
    path = jaeger_file("v3_FindTraces__jaeger_apiv3_snapshot.json")
    with TraceApiServer(files={"/api/v3/traces": path}) as server:
        client = JaegerClient(server.url, api="v3")
        frames = client.search("foo", 1_700_000_000.5, 1_700_000_060, limit=7)
        (request,) = server.requests
    assert len(frames) == 1 and len(frames[0]) == 1
    assert frames[0].iloc[0]["status"] == "2"
    assert "query.service_name=foo" in request
    assert "query.start_time_min=2023-11-14T22%3A13%3A20.5Z" in request
    assert "query.search_depth=7" in request and "query.num_traces=7" in request


@pytest.mark.shared_data
def test_v3_find_trace_summaries_snapshot_ids_match_find_traces() -> None:
    path = jaeger_file("v3_FindTraceSummaries__jaeger_apiv3_snapshot.json")
    with TraceApiServer(files={"/api/v3/trace-summaries": path}) as server:
        body = HttpBackend("Jaeger", server.url).get_json("/api/v3/trace-summaries")
    (summary,) = body["summaries"]
    traces = load(jaeger_file("v3_FindTraces__jaeger_apiv3_snapshot.json"))
    assert normalize_trace_id(summary["traceId"]) == v3_frame([traces]).iloc[0]["trace_id"]
    assert (summary["spanCount"], summary["errorSpanCount"]) == (2, 1)


@pytest.mark.shared_data
def test_v3_get_services_snapshot() -> None:
    path = jaeger_file("v3_GetServices__jaeger_apiv3_snapshot.json")
    with TraceApiServer(files={"/api/v3/services": path}) as server:
        assert JaegerClient(server.url).services() == ["foo"]


@pytest.mark.shared_data
def test_v3_get_operations_snapshot() -> None:
    path = jaeger_file("v3_GetOperations__jaeger_apiv3_snapshot.json")
    with TraceApiServer(files={"/api/v3/operations": path}) as server:
        client = JaegerClient(server.url, api="v3")
        assert client.operations("foo") == ["get_users"]
        assert server.requests == ["/api/v3/operations?service=foo"]


# ---------------------------------------------------------------------------------- Tempo fixtures


@pytest.mark.shared_data
def test_tempo_search_bookinfo_trace_ids() -> None:
    path = tempo_file("api_search_traceql_bookinfo__kiali_response.json")
    with TraceApiServer(flavor="tempo", files={"/api/search": path}) as server:
        client = TempoClient(server.url)
        ids = client.search(1701778000.2, 1701778100.7, limit=5, service="productpage.bookinfo")
        (request,) = server.requests
    assert ids == ["100cb753c787ed5657c8d88dafc176ed"]
    assert "start=1701778000" in request and "end=1701778101" in request
    assert "limit=5" in request
    assert "q=%7B+resource.service.name+%3D+%22productpage.bookinfo%22+%7D" in request


@pytest.mark.shared_data
def test_tempo_search_ambient_31_char_trace_id_is_padded() -> None:
    body = load(tempo_file("api_search_traceql_ambient__kiali_responseAmbient.json"))
    assert len(body["traces"][0]["traceID"]) == 31
    (hit,) = search_results(body)
    assert hit.trace_id == "02e299711ce47710289dc6640727404f"
    assert hit.start_s == 1736952956.641922 and hit.duration_ms == 12.0
    assert hit.root == "waypoint.bookinfo bookinfo-gateway-istio.bookinfo.svc.cluster.local:80/*"


@pytest.mark.shared_data
def test_tempo_batches_bookinfo_base64_ids_and_enum_kinds() -> None:
    path = tempo_file("api_traces_by_id_batches_bookinfo__kiali_responseTrace.json")
    trace_id = "3ba55609c3cde49649cd77d1f9dcd936"  # O6VWCcPN5JZJzXfR+dzZNg==
    with TraceApiServer(flavor="tempo", files={f"/api/traces/{trace_id}": path}) as server:
        client = TempoClient(server.url)  # auto: v2 404 → /api/traces
        frame, partial = client.trace("O6VWCcPN5JZJzXfR+dzZNg==")
        assert server.requests == [f"/api/v2/traces/{trace_id}", f"/api/traces/{trace_id}"]
    assert not partial
    assert len(frame) == 8 and set(frame["trace_id"]) == {trace_id}
    assert frame["service"].nunique() == 5
    root = frame[frame["parent_id"] == ""]
    assert column(root, "span_id") == ["49cd77d1f9dcd936"]  # Sc130fnc2TY=
    assert column(root, "kind") == ["client"]  # SPAN_KIND_CLIENT
    assert sorted(set(frame["kind"])) == ["client", "server"]
    assert (root.iloc[0]["start_us"], root.iloc[0]["duration_us"]) == (1701779876570888, 11932)
    assert set(frame["status"]) == {"0"}
    assert set(frame["span_id"]) >= set(frame["parent_id"]) - {""}  # a complete tree


@pytest.mark.shared_data
def test_tempo_batches_java_kinds_pod_from_host_and_array_attribute() -> None:
    body = load(tempo_file("api_traces_by_id_batches_java__oats_trace_by_id.json"))
    frame = otlp_frame(body)
    assert len(frame) == 3
    assert column(frame, "kind") == ["server", "internal", "producer"]
    assert set(frame["pod"]) == {"nevla"} and set(frame["service"]) == {"app"}  # host.name
    assert set(frame["trace_id"]) == {normalize_trace_id("B3vTDy+BVLWUjcBHJPif9Q==")}
    resource = attributes(body["batches"][0]["resource"]["attributes"])
    assert resource["process.command_args"] == [
        "/opt/java/openjdk/bin/java", "-javaagent:grafana-opentelemetry-java.jar", "-jar",
        "/app.jar"]
    assert resource["process.pid"] == 1  # intValue sent as a string


@pytest.mark.shared_data
def test_tempo_resource_spans_with_error_statuses() -> None:
    path = tempo_file(
        "trace_resourceSpans_base64_errors__tempo_servicegraphs_trace-with-failed-requests.json")
    trace_id = normalize_trace_id("6Lbf+fjUSyjxsivDvS9naA==")
    assert trace_id == "e8b6dff9f8d44b28f1b22bc3bd2f6768"
    with TraceApiServer(flavor="tempo", apis=set(),
                        files={f"/api/traces/{trace_id}": path}) as server:
        frame, partial = TempoClient(server.url, api="v1").trace(trace_id)
    assert not partial and len(frame) == 15
    assert set(frame["service"]) == {"mythical-requester", "mythical-server"}
    errors = frame[frame["status"] == "2"]
    assert column(errors, "operation") == ["requester", "POST /:endpoint", "pg.query:INSERT"]
    ok = frame[frame["operation"] == "HTTP POST"]
    assert column(ok, "status") == ["0"]  # STATUS_CODE_OK


# ---------------------------------------------------------------------------------- pieces


def test_partial_flag_from_a_v2_answer() -> None:
    frame = sample_frame()
    one = frame[frame["trace_id"] == TRACE_A]
    body = {"trace": frame_to_otlp(one, id_encoding="base64"), "status": "PARTIAL",
            "message": "trace exceeds max size"}
    spans, partial = v2_trace(body)
    assert partial and cleaned(spans) == cleaned(one)
    assert v2_trace({**body, "status": "COMPLETE"})[1] is False
    with TraceApiServer(one, flavor="tempo", partial=True) as server:
        client = TempoClient(server.url)
        spans, partial = client.trace(TRACE_A)
        assert partial and server.requests == [f"/api/v2/traces/{TRACE_A}"]
        assert client.resolved_api == "v2"


@pytest.mark.parametrize(("status", "expected"), [
    ({"code": 2}, "2"), ({"code": "STATUS_CODE_ERROR", "message": "x"}, "2"),
    ({"code": "2"}, "2"), ({"code": 1}, "0"), ({"code": "STATUS_CODE_OK"}, "0"),
    ({"code": "STATUS_CODE_UNSET"}, "0"), ({}, "0"), (None, "0"),
])
def test_status_from_int_and_enum_name(status: Any, expected: str) -> None:
    assert span_status(status) == expected


@pytest.mark.parametrize(("kind", "expected"), [
    (2, "server"), (3, "client"), (1, "internal"), (4, "producer"), (5, "consumer"), (0, ""),
    ("SPAN_KIND_CLIENT", "client"), ("SPAN_KIND_SERVER", "server"),
    ("SPAN_KIND_CONSUMER", "consumer"), ("SPAN_KIND_UNSPECIFIED", ""), ("3", "client"),
    ("server", "server"), (None, ""), (9, ""),
])
def test_kind_from_int_and_enum_name(kind: Any, expected: str) -> None:
    assert span_kind(kind) == expected


def test_any_value_of_every_kind() -> None:
    assert any_value({"stringValue": "a"}) == "a"
    assert any_value({"intValue": "9223372036854775807"}) == 9223372036854775807
    assert any_value({"intValue": 3}) == 3
    assert any_value({"boolValue": True}) is True
    assert any_value({"doubleValue": 1.5}) == 1.5
    assert any_value({"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "b"}]}}) == [
        1, "b"]
    assert any_value({"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": False}}]}}
                     ) == {"k": False}
    assert any_value({"bytesValue": "AAAwOQ=="}) == b"\x00\x0009"
    assert any_value({"arrayValue": {}}) == [] and any_value({}) is None


def test_trace_and_span_id_normalization() -> None:
    assert normalize_trace_id(" 0AF7651916CD43DD8448EB211C80319C\n") == (
        "0af7651916cd43dd8448eb211c80319c")
    assert normalize_trace_id("af7651916cd43dd8448eb211c80319c") == (
        "0af7651916cd43dd8448eb211c80319c")
    assert normalize_trace_id("CvdlGRbNQ92ESOshHIAxnA==") == "0af7651916cd43dd8448eb211c80319c"
    assert normalize_trace_id("CvdlGRbNQ92ESOshHIAxnA") == "0af7651916cd43dd8448eb211c80319c"
    assert normalize_trace_id("-_8") == "0" * 28 + "fbff"  # URL-safe base64
    assert normalize_span_id("Sc130fnc2TY=") == "49cd77d1f9dcd936"
    assert normalize_span_id("a68c6983a6d81a2") == "0a68c6983a6d81a2"
    assert normalize_span_id("0000000000000000") == "" and normalize_span_id("AAAAAAAAAAA=") == ""
    assert normalize_span_id(None) == ""
    assert require_trace_id("1") == "0" * 31 + "1"
    with pytest.raises(InvalidIncident, match="not a hex or base64 trace ID"):
        require_trace_id("not a trace!")


def test_jaeger_prints_trace_ids_without_leading_zeros() -> None:
    assert jaeger_trace_id("0" * 31 + "1") == "0" * 15 + "1"
    assert jaeger_trace_id("0af7651916cd43dd8448eb211c80319c") == (
        "af7651916cd43dd8448eb211c80319c")


def test_rfc3339_and_traceql_helpers() -> None:
    assert search_time(0) == "1970-01-01T00:00:00Z"
    assert search_time(1_700_000_000.25) == "2023-11-14T22:13:20.25Z"
    assert search_time(1_700_000_000.000001) == "2023-11-14T22:13:20.000001Z"
    assert service_query(None) == "{}"
    assert service_query('a"b') == '{ resource.service.name = "a\\"b" }'


def test_old_instrumentation_library_spans_and_batches() -> None:
    frame = sample_frame()
    body = frame_to_otlp(frame, "batches", "base64", scope_key="instrumentationLibrarySpans")
    assert cleaned(otlp_frame(body)) == cleaned(frame)


def test_v1_span_tags_give_pod_and_node_and_otel_error_status() -> None:
    trace = {"traceID": "abc", "processes": {"p1": {"serviceName": "cart", "tags": [
        {"key": "hostname", "type": "string", "value": "cart-host"}]}}, "spans": [
        {"traceID": "abc", "spanID": "1", "operationName": "op", "references": [],
         "startTime": "1700000000000000", "duration": "12", "processID": "p1", "tags": [
             {"key": "k8s.pod.name", "type": "string", "value": "cart-1"},
             {"key": "k8s.node.name", "type": "string", "value": "node-a"},
             {"key": "otel.status_code", "type": "string", "value": "ERROR"},
             {"key": "span.kind", "type": "string", "value": "consumer"}]},
        {"traceID": "abc", "spanID": "2", "operationName": "op2", "parentSpanID": "1",
         "startTime": 1700000000000001, "duration": 1, "processID": "p1", "tags": [
             {"key": "error", "type": "string", "value": "false"}]}]}
    first, second = v1_frames({"data": [trace]})[0].to_dict("records")
    assert (first["pod"], first["node"], first["status"], first["kind"]) == (
        "cart-1", "node-a", "2", "consumer")
    assert (first["start_us"], first["duration_us"]) == (1700000000000000, 12)
    assert (second["pod"], second["parent_id"], second["status"]) == (
        "cart-host", "0000000000000001", "0")


# ---------------------------------------------------------------------------------- round trips

TRACE_A = "0af7651916cd43dd8448eb211c80319c"  # Jaeger prints it with 31 characters
TRACE_B = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_C = "00000000000000001234567890abcdef"  # a 64-bit trace ID
T0 = 1_700_000_000_000_000


def sample_frame() -> pd.DataFrame:
    rows = [
        (TRACE_A, "a000000000000001", "", "frontend-5d8f-x1", "frontend", "node-1", "GET /",
         T0, 9_000, "0", "server"),
        (TRACE_A, "a000000000000002", "a000000000000001", "frontend-5d8f-x1", "frontend",
         "node-1", "checkout", T0 + 100, 8_000, "0", "client"),
        (TRACE_A, "a000000000000003", "a000000000000002", "checkout-7c9-k2", "checkout",
         "node-2", "PlaceOrder", T0 + 200, 7_500, "2", "server"),
        (TRACE_A, "0000000000000a04", "a000000000000003", "checkout-7c9-k2", "checkout",
         "node-2", "db.query", T0 + 300, 7_000, "2", "client"),
        (TRACE_B, "b000000000000001", "", "queue", "queue", "", "publish", T0 + 5_000_000, 400,
         "0", "producer"),
        (TRACE_B, "b000000000000002", "b000000000000001", "worker-1", "worker", "node-3",
         "consume", T0 + 5_000_500, 300, "0", "consumer"),
        (TRACE_B, "b000000000000003", "b000000000000002", "worker-1", "worker", "node-3",
         "compute", T0 + 5_000_600, 100, "0", ""),
        (TRACE_C, "c000000000000001", "", "api-0", "api", "", "GET /health", T0 + 9_000_000,
         50, "0", "internal"),
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


ALL = (TRACE_A, TRACE_B, TRACE_C)


@pytest.fixture
def frame() -> pd.DataFrame:
    return sample_frame()


def _jaeger_traces(api: str, **server: Any) -> Callable[[pd.DataFrame], Iterator[pd.DataFrame]]:
    def run(frame: pd.DataFrame) -> Iterator[pd.DataFrame]:
        with TraceApiServer(frame, flavor="jaeger", apis={api}, **server) as srv:
            client = JaegerClient(srv.url, api="auto")
            for tid in ALL:
                yield client.trace(tid)
            assert client.resolved_api == api
    return run


def _jaeger_search(api: str, **server: Any) -> Callable[[pd.DataFrame], Iterator[pd.DataFrame]]:
    def run(frame: pd.DataFrame) -> Iterator[pd.DataFrame]:
        with TraceApiServer(frame, flavor="jaeger", apis={api}, **server) as srv:
            client = JaegerClient(srv.url, api=api)
            start, end = T0 / 1e6 - 1, T0 / 1e6 + 10
            found: list[pd.DataFrame] = []
            for service in client.services():
                found.extend(client.search(service, start, end, limit=10))
            assert client.services() == ["api", "checkout", "frontend", "queue", "worker"]
            assert client.operations("checkout") == ["PlaceOrder", "db.query"]
            by_id = {f["trace_id"].iloc[0]: f for f in found}  # traces found more than once
            assert sorted(by_id) == sorted(ALL)
            yield from by_id.values()
    return run


def _tempo_traces(**server: Any) -> Callable[[pd.DataFrame], Iterator[pd.DataFrame]]:
    def run(frame: pd.DataFrame) -> Iterator[pd.DataFrame]:
        with TraceApiServer(frame, flavor="tempo", **server) as srv:
            client = TempoClient(srv.url)
            ids = client.search(T0 / 1e6 - 1, T0 / 1e6 + 10, limit=10)
            assert sorted(ids) == sorted(ALL)  # leading zeros dropped by the server, restored
            assert client.search(T0 / 1e6 - 1, T0 / 1e6 + 10, service="worker") == [TRACE_B]
            for tid in ids:
                spans, partial = client.trace(tid)
                assert not partial
                yield spans
    return run


ROUND_TRIPS = {
    "jaeger-v1-trace": _jaeger_traces("v1"),
    "jaeger-v1-search": _jaeger_search("v1"),
    "jaeger-v3-trace": _jaeger_traces("v3"),
    "jaeger-v3-search": _jaeger_search("v3"),
    "jaeger-v3-stream-search": _jaeger_search("v3", v3_stream=True),
    "jaeger-v1-behind-ui-pages": _jaeger_traces("v1", unknown="html"),
    "tempo-batches": _tempo_traces(apis={"v1", "search"}, tempo_key="batches"),
    "tempo-resourceSpans": _tempo_traces(apis={"v1", "search"}, tempo_key="resourceSpans"),
    "tempo-resourceSpans-hex": _tempo_traces(apis={"v1", "search"}, tempo_key="resourceSpans",
                                             id_encoding="hex"),
    "tempo-v2": _tempo_traces(),
}


@pytest.mark.parametrize("shape", sorted(ROUND_TRIPS))
def test_round_trip_through_each_api_shape(shape: str, frame: pd.DataFrame) -> None:
    frames = list(ROUND_TRIPS[shape](frame))
    assert len(frames) == 3
    for part in frames:
        assert part["trace_id"].nunique() == 1
    assert cleaned(pd.concat(frames, ignore_index=True)) == cleaned(frame)


def test_round_trip_converters_without_a_server(frame: pd.DataFrame) -> None:
    body = frame_to_jaeger_v1(frame)
    assert [t["traceID"] for t in body["data"]] == [TRACE_A[1:], TRACE_B, TRACE_C[16:]]
    assert cleaned(pd.concat(v1_frames(body), ignore_index=True)) == cleaned(frame)
    for key in ("resourceSpans", "batches"):
        for encoding in ("hex", "base64"):
            for enums in ("int", "name"):
                otlp = frame_to_otlp(frame, key, encoding, enums=enums)
                assert cleaned(otlp_frame(otlp)) == cleaned(frame), (key, encoding, enums)


def test_duplicate_spans_survive_the_client_and_are_dropped_by_cleaning(
    frame: pd.DataFrame,
) -> None:
    doubled = pd.concat([frame, frame.iloc[[2]]], ignore_index=True)
    body = copy.deepcopy(frame_to_jaeger_v1(doubled))
    (spans,) = v1_frames({"data": [t for t in body["data"] if t["traceID"] == TRACE_A[1:]]})
    assert len(spans) == 5
    quality = DataQuality()
    assert len(clean_spans(spans, quality)) == 4 and quality.skipped["repeated spans"] == 1


@pytest.mark.parametrize(("attrs", "events", "error"), [
    ({"http.status_code": 503}, [], True),
    ({"http.response.status_code": "500"}, [], True),
    ({"http.status_code": 404}, [], False),  # the client's mistake, not this span's failure
    ({"rpc.grpc.status_code": 13}, [], True),
    ({"rpc.grpc.status_code": 5}, [], False),  # NOT_FOUND is an answer
    ({"error": "true"}, [], True),
    ({}, [{"name": "exception", "attributes": []}], True),
    ({}, [{"name": "retry"}], False),
])
def test_status_codes_and_exception_events_mark_errors(attrs: dict[str, Any], events: list[Any],
                                                       error: bool) -> None:
    assert error_attributes(attrs) is (error and not events)
    assert (span_status({"code": 0}, attrs, events) == ERROR_STATUS) is error


def test_v1_span_logs_with_an_exception_mark_the_span_as_failed() -> None:
    trace = {"traceID": "a" * 32, "spans": [{
        "traceID": "a" * 32, "spanID": "b" * 16, "operationName": "GET /x", "references": [],
        "startTime": 1_700_000_000_000_000, "duration": 1000, "processID": "p1",
        "tags": [{"key": "http.status_code", "type": "int64", "value": 200}],
        "logs": [{"timestamp": 1_700_000_000_000_100,
                  "fields": [{"key": "event", "type": "string", "value": "error"},
                             {"key": "message", "type": "string", "value": "boom"}]}]}],
        "processes": {"p1": {"serviceName": "svc", "tags": []}}}
    frame = v1_trace_frame(trace)
    assert list(frame["status"].astype(str)) == [ERROR_STATUS]
