"""The FailureIncident CRD is a closed, documented contract, and the status builders fit it.

Schema checks (what the API server would enforce) run with jsonschema over the CRD's
``openAPIV3Schema`` with the ``x-kubernetes-*`` keys removed; the CEL rules cannot run here, so
their messages are compared with the ones ``incident_spec`` raises for the same specs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from thinkfl_operator.core.errors import InvalidIncident
from thinkfl_operator.core.models import Diagnosis, RootCause, Step, Usage
from thinkfl_operator.core.rfc3339 import format_utc
from thinkfl_operator.incident import spec as incident_spec
from thinkfl_operator.incident import status as incident_status

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "failureincidents.yaml"
STARTED = datetime(2023, 1, 30, 11, 52, 0, 250_000, tzinfo=UTC)
COMPLETED = STARTED + timedelta(seconds=3, milliseconds=421)


# helpers -----------------------------------------------------------------------------------

def _crd() -> dict[str, Any]:
    loaded = yaml.safe_load(CRD_PATH.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _version() -> dict[str, Any]:
    versions = _crd()["spec"]["versions"]
    assert [v["name"] for v in versions] == ["v1alpha1"]
    version: dict[str, Any] = versions[0]
    return version


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = _version()["schema"]["openAPIV3Schema"]
    return schema


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) in a nested structure, the root included."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")


def _schemas(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every sub-schema reached through properties, items and additionalProperties."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _schemas(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _schemas(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _schemas(schema["additionalProperties"], f"{path}{{}}")


def _plain(node: Any) -> Any:
    """The schema without the x-kubernetes-* keys (CEL rules, list types)."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    plain = _plain(schema)
    jsonschema.Draft202012Validator.check_schema(plain)
    return jsonschema.Draft202012Validator(
        plain, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def _errors(obj: dict[str, Any]) -> list[str]:
    return [e.message for e in _validator(_schema()).iter_errors(obj)]


def _incident(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "thinkfl.dev/v1alpha1",
        "kind": "FailureIncident",
        "metadata": {"name": "contacts-slow", "namespace": "train-ticket"},
        "spec": spec,
    }
    if status is not None:
        obj["status"] = status
    return obj


def _floats(node: Any) -> list[str]:
    return [path for path, value in _walk(node) if isinstance(value, float)]


def _without_none(node: Any) -> Any:
    """What the API server keeps of a merge patch: null fields are removed."""
    if isinstance(node, dict):
        return {k: _without_none(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_without_none(v) for v in node]
    return node


def _diagnosis(n_steps: int = 57, n_causes: int = 12) -> Diagnosis:
    """A diagnosis as the engines return it, over every cap of the status schema."""
    pods = [f"ts-svc{i}-service-866bd68c97-dzq{i:02d}" for i in range(n_causes)]
    causes = [RootCause(rank=i + 1, node=f"k8s-node-{i % 3}", service=f"ts-svc{i}-service",
                        pod=pods[i], reason=f"own time of GET /api/v1/svc{i} 12 ms → 340 ms " * 20,
                        score=100 - 7 * i) for i in range(n_causes)]
    causes[0] = RootCause(
        rank=1, node="k8s-node-1", service="ts-contacts-service",
        pod="ts-contacts-service-866bd68c97-dzqgd",
        reason="calls from ts-preserve-service into POST /api/v1/contactservice/contacts wait "
               "12 ms → 2.4 s outside the callee; container_cpu_usage_seconds 0.1 → 0.9",
        score=100)
    steps = [Step(tool="search_traces", arguments={"parent_span_id": f"{i:016x}"},
                  summary=f"{i % 4} child spans of {i:016x}\nslowest: ts-svc{i}-service")
             for i in range(n_steps - 2)]
    steps.append(Step(tool="search_fluctuating_metrics",
                      arguments={"service_name": "ts-contacts-service",
                                 "timestamp": "1675079506", "padding": "ü" * 600},
                      summary="3 KPIs fluctuate: cpu, memory, net_rx"))
    steps.append(Step(tool="print_results",
                      arguments={"root_causes": [{"service": c.service, "pod": c.pod}
                                                 for c in causes[:3]]},
                      summary="final answer: ts-contacts-service, ts-svc1-service"))
    notes = [("LLMFallback: the model gave no usable answer: all 12 replies used without print_results; "
              "the deterministic engine answered")]
    notes += [f"note {i}: " + "skipped data " * 40 for i in range(13)]
    usage = Usage(llm_calls=7, prompt_tokens=48_213, completion_tokens=1_904, tool_calls=n_steps,
                  seconds={"load": 0.4123, "score": 0.0917, "llm": 2.71, "total": 3.3})
    traces = [f"{i:032x}" for i in range(14)] + ["0" * 31 + "1"]
    return Diagnosis(root_causes=causes, engine="heuristic", steps=steps, traces=traces,
                     usage=usage, model="", notes=notes)


# the resource ------------------------------------------------------------------------------

def test_resource_names_and_scope() -> None:
    crd = _crd()
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == "failureincidents.thinkfl.dev"
    spec = crd["spec"]
    assert spec["group"] == "thinkfl.dev"
    assert spec["scope"] == "Namespaced"
    names = spec["names"]
    assert (names["kind"], names["plural"], names["singular"]) == (
        "FailureIncident", "failureincidents", "failureincident")
    assert names["shortNames"] == ["fi"]
    version = _version()
    assert version["served"] is True and version["storage"] is True
    assert version["subresources"] == {"status": {}}


def test_printer_columns() -> None:
    columns = {c["name"].lower(): c for c in _version()["additionalPrinterColumns"]}
    expected = {
        "phase": ".status.phase",
        "top cause": ".status.topCause",
        "engine": ".status.engine",
        "service": ".spec.service",
        "age": ".metadata.creationTimestamp",
    }
    for name, path in expected.items():
        assert columns[name]["jsonPath"] == path
        assert columns[name].get("priority", 0) == 0
    assert columns["age"]["type"] == "date"
    properties = _schema()["properties"]
    for column in columns.values():  # every column points at a declared field
        parts = column["jsonPath"].strip(".").split(".")
        if parts[0] != "metadata":
            assert parts[1] in properties[parts[0]]["properties"], column


def test_no_unknown_fields_are_preserved_anywhere() -> None:
    found = [p for p, v in _walk(_crd()) if isinstance(v, dict)
             and "x-kubernetes-preserve-unknown-fields" in v]
    assert found == []


def test_every_array_has_max_items() -> None:
    arrays = [(p, s) for p, s in _schemas(_schema()) if s.get("type") == "array"]
    assert arrays, "the schema declares lists"
    assert [p for p, s in arrays if "maxItems" not in s or "items" not in s] == []


def test_every_object_declares_its_fields() -> None:
    objects = [(p, s) for p, s in _schemas(_schema()) if s.get("type") == "object"]
    open_objects = [p for p, s in objects if p != ".metadata"
                    and "properties" not in s and "additionalProperties" not in s]
    assert open_objects == []
    assert [p for p, s in objects if "additionalProperties" in s and "maxProperties" not in s] == []


def test_every_field_has_a_type_and_a_description() -> None:
    missing = [p for p, s in _schemas(_schema()) if not s.get("description") or not s.get("type")]
    assert missing == []


def test_free_strings_have_a_max_length() -> None:
    strings = [(p, s) for p, s in _schemas(_schema()) if s.get("type") == "string"
               and p not in (".apiVersion", ".kind")]
    unbounded = [p for p, s in strings
                 if "maxLength" not in s and "enum" not in s and s.get("format") != "date-time"]
    assert unbounded == []
    assert _schema()["properties"]["spec"]["properties"]["description"]["maxLength"] == 2000
    assert _schema()["properties"]["status"]["properties"]["summary"]["maxLength"] == 256


def test_status_declares_no_floating_point_numbers() -> None:
    status = _schema()["properties"]["status"]
    assert [p for p, s in _schemas(status) if s.get("type") == "number"] == []


def _comparable(node: Any, defs: dict[str, Any]) -> Any:
    """A JSON schema reduced to what validates: ``$ref`` resolved, ``X | None`` as X, without
    titles, descriptions, pydantic's ``default: null``, ``additionalProperties: false`` (a CRD
    is closed without it) and the CEL rules (compared by ``test_cel_rules_...``)."""
    if isinstance(node, list):
        return [_comparable(v, defs) for v in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _comparable(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    options = [o for o in node.get("anyOf", []) if o != {"type": "null"}]
    if len(options) == 1:
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        return _comparable({**options[0], **rest}, defs)
    dropped = {"title", "description", "$defs", "additionalProperties"}
    out = {k: _comparable(v, defs) for k, v in node.items()
           if k not in dropped | {"properties"} and not k.startswith("x-kubernetes-")
           and not (k == "default" and v is None)}
    if "properties" in node:  # field names are kept, "description" among them
        out["properties"] = {k: _comparable(v, defs) for k, v in node["properties"].items()}
    return out


def test_the_crd_spec_and_the_spec_model_agree() -> None:
    """Same field names, types, enums, bounds, patterns and required fields, nested included."""
    model = incident_spec.IncidentSpec.model_json_schema()
    crd = _comparable(_schema()["properties"]["spec"], {})
    assert _comparable(model, model.get("$defs", {})) == crd
    assert list(crd["properties"]) == list(incident_spec.FIELDS)
    assert crd["properties"]["engine"]["enum"] == list(incident_spec.ENGINES)


def test_cel_rules_say_what_the_operator_says() -> None:
    spec = _schema()["properties"]["spec"]
    messages = {r["message"] for r in spec["x-kubernetes-validations"]}
    assert incident_spec.STARTING_POINT in messages
    assert "spec.rootSpanID needs spec.traceID" in messages
    for bad in ({}, {"time": "2023-01-30T11:51:46Z"}):
        with pytest.raises(InvalidIncident, match=re.escape(incident_spec.STARTING_POINT)):
            incident_spec.parse_spec(bad)
    window_rule = spec["properties"]["window"]["x-kubernetes-validations"][0]
    assert "duration('24h')" in window_rule["rule"]


# examples validated against the schema ---------------------------------------------------

BY_TRACE = {"traceID": "0271afbd8266286038353f4e38334ffb"}
VALID_SPECS = [
    pytest.param(BY_TRACE, id="by-trace"),
    pytest.param({"traceID": "0271AFBD8266286038353F4E38334FFB",
                  "rootSpanID": "5aeba34e64f0e075", "engine": "thinkfl"}, id="by-trace-and-span"),
    pytest.param({"service": "ts-contacts-service", "time": "2023-01-30T11:51:46Z"},
                 id="by-service-and-time"),
    pytest.param({"service": "frontend", "time": "2023-01-30T12:51:46.120+01:00",
                  "window": "1h30m", "maxTraces": 3, "targetNamespace": "online-boutique",
                  "description": "HighLatency: p99 of frontend above 2 s", "engine": "auto"},
                 id="every-field"),
]


@pytest.mark.parametrize("spec", VALID_SPECS)
def test_valid_incidents_pass(spec: dict[str, Any]) -> None:
    assert _errors(_incident(spec)) == []
    incident_spec.parse_spec(spec)  # and the operator accepts them too


@pytest.mark.parametrize(("spec", "fragment"), [
    pytest.param({"traceID": "abc", "engine": "gpt"}, "'gpt' is not one of", id="engine"),
    pytest.param({"service": "frontend", "time": "2023-13-01"}, "does not match",
                 id="time-month-13"),
    pytest.param({"service": "frontend", "time": "2023-01-30 11:51:46"}, "does not match",
                 id="time-space"),
    pytest.param({"service": "frontend", "time": "2023-01-30T11:51:46"}, "does not match",
                 id="time-no-zone"),
    pytest.param({"service": "frontend", "time": "2023-02-30T11:51:46Z"}, "is not a 'date-time'",
                 id="time-feb-30"),
    pytest.param({"traceID": "abc", "window": "15 minutes"}, "does not match", id="window"),
    pytest.param({"traceID": "abc", "maxTraces": 11}, "is greater than the maximum",
                 id="max-traces"),
    pytest.param({"traceID": "xyz"}, "does not match", id="trace-id"),
    pytest.param({"traceID": "abc", "description": "x" * 2001}, "is too long", id="description"),
    pytest.param({"traceID": "abc", "targetNamespace": "Train_Ticket"}, "does not match",
                 id="namespace"),
])
def test_invalid_incidents_fail(spec: dict[str, Any], fragment: str) -> None:
    errors = _errors(_incident(spec))
    assert any(fragment in e for e in errors), errors
    with pytest.raises(InvalidIncident):  # the operator refuses them as well
        incident_spec.parse_spec(spec)


def test_an_incident_without_spec_fails() -> None:
    obj = _incident({})
    del obj["spec"]
    assert _errors(obj) == ["'spec' is a required property"]


# status --------------------------------------------------------------------------------------

def test_diagnosed_status_fits_the_schema_and_holds_no_floats() -> None:
    status = incident_status.diagnosed(_diagnosis(), 3, STARTED, COMPLETED)
    assert [e.message for e in _validator(_schema()["properties"]["status"]).iter_errors(
        _without_none(status))] == []
    assert _errors(_incident(BY_TRACE, _without_none(status))) == []
    assert _floats(status) == []
    # None only where the merge patch removes a field: an older version's steps, an empty model,
    # log evidence that showed nothing
    assert sorted(path for path, v in _walk(status) if v is None) == [".logEvidence", ".model", ".steps"]


def test_diagnosed_status_content() -> None:
    status = incident_status.diagnosed(_diagnosis(), 3, STARTED, COMPLETED)
    assert status["phase"] == "Diagnosed"
    assert status["observedGeneration"] == 3
    assert status["topCause"] == "ts-contacts-service"
    assert status["summary"].startswith(
        "ts-contacts-service (ts-contacts-service-866bd68c97-dzqgd): calls from "
        "ts-preserve-service into POST /api/v1/contactservice/contacts wait 12 ms → 2.4 s")
    assert len(status["rootCauses"]) == 10  # every one of the 12 has a positive score: the cap
    assert [rc["rank"] for rc in status["rootCauses"]] == list(range(1, 11))
    assert status["rootCauses"][0] == {
        "rank": 1, "service": "ts-contacts-service", "pod": "ts-contacts-service-866bd68c97-dzqgd",
        "node": "k8s-node-1", "reason": _diagnosis().root_causes[0].reason, "score": 100}
    assert all(len(rc["reason"]) <= 512 for rc in status["rootCauses"])
    assert status["rootCauses"][1]["reason"].endswith("…")
    assert len(status["traces"]) == 10 and status["traces"][1] == "0" * 31 + "1"
    assert (status["engine"], status["model"]) == ("heuristic", None)
    assert (status["startedAt"], status["completedAt"]) == (
        "2023-01-30T11:52:00Z", "2023-01-30T11:52:03Z")
    assert status["usage"] == {
        "llmCalls": 7, "promptTokens": 48_213, "completionTokens": 1_904, "toolCalls": 57}
    assert len(status["notes"]) == 10
    assert all(len(n) <= 256 and "\n" not in n for n in status["notes"])


def test_the_status_caps_are_the_schemas() -> None:
    fields = _schema()["properties"]["status"]["properties"]
    # versions before wrote one path line more (three last calls): the schema still allows it
    assert fields["path"]["maxItems"] == incident_status.MAX_PATH + 1
    assert fields["path"]["items"]["maxLength"] == incident_status.PATH_LINE_CHARS
    assert fields["rootCauses"]["maxItems"] == incident_status.MAX_ROOT_CAUSES
    written = set(incident_status.usage_entry(Usage(llm_calls=1, seconds={"load": 1.0})))
    assert written < set(fields["usage"]["properties"]) and "stages" not in fields["usage"]["properties"]


def test_the_path_keeps_the_first_calls_and_the_last_one_line_each() -> None:
    status = incident_status.diagnosed(_diagnosis(n_steps=57, n_causes=3), 1, STARTED, COMPLETED)
    path = status["path"]
    assert len(path) == incident_status.MAX_PATH == 5
    assert [line.split(".", 1)[0] for line in path] == ["1", "2", "3–55", "56", "57"]
    assert path[2] == ("3–55. … 53 calls more: every call with its whole answer is in the diagnosis "
                       "record (status.recordConfigMap)")
    assert path[0] == ("1. search_traces(parent_span_id=0000000000000000) → "
                       "0 child spans of 0000000000000000 slowest: ts-svc0-service")
    assert path[-1].startswith('57. print_results(root_causes=[{"service":"ts-contacts-service",')
    assert all(len(line) <= 160 and "\n" not in line for line in path)
    assert "steps" in status and status["steps"] is None  # an older version's steps are removed


def test_short_paths_are_kept_whole_and_long_texts_are_cut() -> None:
    status = incident_status.diagnosed(_diagnosis(n_steps=5, n_causes=3), 1, STARTED, COMPLETED)
    path = status["path"]
    assert [line.split(".", 1)[0] for line in path] == ["1", "2", "3", "4", "5"]
    metrics = path[3]
    assert metrics == ("4. search_fluctuating_metrics(service_name=ts-contacts-service, "
                       "timestamp=1675079506, padding…) → 3 KPIs fluctuate: cpu, memory, net_rx")
    arguments = metrics.split("(", 1)[1].split(") → ", 1)[0]  # 600 ü cut: 64 characters at most
    assert len(arguments) == 64 and arguments.endswith("…")
    long = Step(tool="search_traces", arguments={"parent_span_id": "ab"},
                summary="6 child spans on frontend; " + "x" * 300 + " slowest ListRecommendations 203.7 ms")
    line = incident_status.path_lines([long])[0]
    assert len(line) == 160 and "…" in line
    assert line.startswith("1. search_traces(parent_span_id=ab) → 6 child spans on frontend; ")
    assert line.endswith(" slowest ListRecommendations 203.7 ms")  # the middle goes, not the end


@pytest.mark.parametrize(("scores", "shown"), [
    pytest.param([100, 0, 0, 0, 0, 0, 0, 0, 0, 0], 3, id="one-scored-padded-to-three"),
    pytest.param([100, 60, 20, 5, 0, 0, 0], 4, id="every-scored-one"),
    pytest.param([100, 0], 2, id="fewer-than-three-all-shown"),
    pytest.param([100 - 5 * i for i in range(12)], 10, id="at-most-ten"),
    pytest.param([0, 0, 0, 0], 3, id="none-scored"),
])
def test_root_causes_in_status_are_the_scored_ones_and_at_least_three(
        scores: list[int], shown: int) -> None:
    causes = [RootCause(rank=i + 1, node="", service=f"svc{i}", pod="", reason="r", score=score)
              for i, score in enumerate(scores)]
    diagnosis = Diagnosis(root_causes=causes, engine="heuristic")
    status = incident_status.diagnosed(diagnosis, 1, STARTED, COMPLETED)
    assert [rc["service"] for rc in status["rootCauses"]] == [f"svc{i}" for i in range(shown)]
    # the condition still counts every candidate: the record keeps them all
    assert status["conditions"][0]["message"].startswith(f"{len(scores)} candidate")


def test_usage_without_the_model_has_no_tokens() -> None:
    usage = incident_status.usage_entry(Usage(tool_calls=13, seconds={"load": 0.056, "walk": 0.0081}))
    assert usage == {"llmCalls": 0, "toolCalls": 13}  # stages: in the record; the time: startedAt/completedAt
    assert incident_status.usage_entry(Usage()) == {"llmCalls": 0, "toolCalls": 0}


def test_the_logs_note_is_in_the_diagnosed_condition_not_a_note() -> None:
    diagnosis = _diagnosis(n_steps=3, n_causes=3)
    about = "logs: 54510 lines from memory logs, 3.5 min of window against 54 min of history"
    diagnosis.notes = [about, "trace 1 was partial"]
    diagnosis.logs_read = True
    status = incident_status.diagnosed(diagnosis, 1, STARTED, COMPLETED)
    assert status["notes"] == ["trace 1 was partial"]
    assert [c["type"] for c in status["conditions"]] == ["Diagnosed", "Done"]  # no LogEvidence
    assert status["conditions"][0]["message"] == (
        "3 candidates ranked by the heuristic engine; most likely: ts-contacts-service; " + about)
    diagnosis.notes = [about]
    assert incident_status.diagnosed(diagnosis, 1, STARTED, COMPLETED)["notes"] is None
    diagnosis.logs_read = False  # the logs failed: the note stays beside the condition
    assert about in incident_status.diagnosed(diagnosis, 1, STARTED, COMPLETED)["notes"]


def test_a_long_diagnosis_is_shortened_to_the_status_budget_and_says_so() -> None:
    """12 causes with long names and reasons, 57 steps, 14 notes, 5 long log lines: over 12 KiB
    with every cap applied, so reasons, notes, log lines and path lines are cut and the
    candidates after the fifth left out (the record keeps it all); the top cause's reason and
    the final answer stay."""
    diagnosis = _diagnosis(n_steps=57, n_causes=12)
    diagnosis.root_causes = [replace(c, pod=c.pod + "-" + "p" * 200, node=c.node + "-" + "n" * 200)
                             for c in diagnosis.root_causes]
    diagnosis.log_evidence = [f"svc{i}: vanished template " + "`x` " * 200 for i in range(5)]
    status = incident_status.diagnosed(diagnosis, 1, STARTED, COMPLETED)
    size = len(json.dumps(status, separators=(",", ":"), ensure_ascii=False).encode())
    assert size <= incident_status.STATUS_BYTES < 16 * 1024
    assert 3 <= len(status["rootCauses"]) <= 5 and status["rootCauses"][0]["reason"] == \
        diagnosis.root_causes[0].reason
    assert all(len(rc["reason"]) <= 256 for rc in status["rootCauses"])
    assert status["path"][-1].startswith("57. print_results(") and len(status["path"]) == 5
    assert len(status["notes"]) == 10 and status["notes"][-1] == incident_status.SHORTENED
    assert "status.recordConfigMap" in incident_status.SHORTENED
    assert [e.message for e in _validator(_schema()["properties"]["status"]).iter_errors(
        _without_none(status))] == []
    short = incident_status.diagnosed(_diagnosis(n_steps=5, n_causes=3), 1, STARTED, COMPLETED)
    assert incident_status.SHORTENED not in short["notes"]  # under the budget: as it was


def test_llm_fallback_sets_a_condition() -> None:
    status = incident_status.diagnosed(_diagnosis(), 2, STARTED, COMPLETED)
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Diagnosed"] == {
        "type": "Diagnosed", "status": "True", "reason": "Diagnosed",
        "message": "12 candidates ranked by the heuristic engine; most likely: ts-contacts-service",
        "lastTransitionTime": "2023-01-30T11:52:03Z", "observedGeneration": 2}
    fallback = conditions["LLMFallback"]
    assert (fallback["status"], fallback["reason"]) == ("True", "DeterministicEngineAnswered")
    assert fallback["message"] == ("the model gave no usable answer: all 12 replies used without print_results; "
                                   "the deterministic engine answered")


def test_without_fallback_no_condition_or_a_cleared_one() -> None:
    diagnosis = _diagnosis(n_steps=3, n_causes=3)
    diagnosis.notes = ["trace 1 was partial"]
    fresh = incident_status.diagnosed(diagnosis, 1, STARTED, COMPLETED)
    assert [c["type"] for c in fresh["conditions"]] == ["Diagnosed", "Done"]
    earlier = incident_status.diagnosed(_diagnosis(), 1, STARTED, COMPLETED)["conditions"]
    again = incident_status.diagnosed(diagnosis, 2, STARTED, COMPLETED, conditions=earlier)
    fallback = next(c for c in again["conditions"] if c["type"] == "LLMFallback")
    assert (fallback["status"], fallback["reason"]) == ("False", "NoFallback")


def test_an_empty_diagnosis() -> None:
    empty = Diagnosis(root_causes=[], engine="heuristic")
    status = incident_status.diagnosed(empty, 1, STARTED, STARTED)
    assert (status["topCause"], status["summary"]) == ("", "no root cause found")
    assert status["usage"] == {"llmCalls": 0, "toolCalls": 0}
    assert _validator(_schema()["properties"]["status"]).is_valid(_without_none(status))


def test_other_phases_fit_the_schema() -> None:
    validator = _validator(_schema()["properties"]["status"])
    assert _schema()["properties"]["status"]["properties"]["phase"]["enum"] == list(
        incident_status.PHASES)
    now = COMPLETED
    patches = {
        "Pending": incident_status.pending(1, now=now),
        "Diagnosing": incident_status.diagnosing(1, STARTED, attempts=1),
        "Failed": incident_status.failed("BackendUnavailable", "Jaeger at http://jaeger:16686 "
                                         "refused the connection", 1, True, now=now, attempts=2),
    }
    for phase, patch in patches.items():
        assert patch["phase"] == phase
        assert _floats(patch) == []
        assert list(validator.iter_errors(_without_none(patch))) == []
        # the results of an earlier diagnosis are removed by the merge patch
        assert all(k in patch for k in ("rootCauses", "path", "steps", "usage", "topCause"))
        assert patch["rootCauses"] is None


def test_diagnosing_status() -> None:
    patch = incident_status.diagnosing(4, STARTED)
    assert patch["startedAt"] == "2023-01-30T11:52:00Z"
    assert patch["observedGeneration"] == 4
    assert patch["conditions"] == [{
        "type": "Diagnosed", "status": "Unknown", "reason": "InProgress",
        "message": "the incident is being diagnosed",
        "lastTransitionTime": "2023-01-30T11:52:00Z", "observedGeneration": 4}, {
        "type": "Done", "status": "False", "reason": "Diagnosing",
        "message": "the incident is being diagnosed",
        "lastTransitionTime": "2023-01-30T11:52:00Z", "observedGeneration": 4}]
    assert "attempts" not in patch


@pytest.mark.parametrize(("retryable", "done"), [(False, ("True", "Failed")), (True, ("False", "Retrying"))])
def test_done_is_true_in_both_terminal_states_only(retryable: bool, done: tuple[str, str]) -> None:
    """``kubectl wait --for=condition=Done`` returns on Diagnosed and on a final Failed, and
    keeps waiting while a retry is to come."""
    conditions = incident_status.diagnosing(1, STARTED)["conditions"]
    failed = incident_status.failed("BackendUnavailable", "Jaeger down", 1, retryable,
                                    conditions=conditions, now=COMPLETED)
    by_type = {c["type"]: c for c in failed["conditions"]}
    assert (by_type["Done"]["status"], by_type["Done"]["reason"]) == done
    diagnosed = incident_status.diagnosed(_diagnosis(), 1, STARTED, COMPLETED, conditions=conditions)
    by_type = {c["type"]: c for c in diagnosed["conditions"]}
    assert (by_type["Done"]["status"], by_type["Done"]["reason"]) == ("True", "Diagnosed")


@pytest.mark.parametrize("reason", ["InvalidSpec", "BackendUnavailable", "NoEvidence",
                                    "LLMUnavailable"])
def test_failed_status(reason: str) -> None:
    patch = incident_status.failed(reason, "spec.engine \"gpt\" is not one of auto", 2, False,
                                   now=COMPLETED)
    condition = patch["conditions"][0]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "Diagnosed", "False", reason)
    assert condition["message"] == 'spec.engine "gpt" is not one of auto'
    assert patch["summary"] == f'{reason}: spec.engine "gpt" is not one of auto'
    assert patch["completedAt"] == "2023-01-30T11:52:03Z"


def test_a_retryable_failure_says_so_and_is_not_complete() -> None:
    patch = incident_status.failed("BackendUnavailable", "Prometheus timed out", 2, True,
                                   now=COMPLETED)
    assert patch["conditions"][0]["message"] == "Prometheus timed out; will retry"
    assert patch["completedAt"] is None


def test_failed_refuses_a_reason_that_is_not_camel_case() -> None:
    with pytest.raises(ValueError, match="not CamelCase"):
        incident_status.failed("invalid spec", "x", 1, False)


def test_set_condition_keeps_the_transition_time_while_the_status_holds() -> None:
    t0, t1, t2 = STARTED, STARTED + timedelta(minutes=1), STARTED + timedelta(minutes=2)
    first = incident_status.set_condition([], "Diagnosed", "Unknown", "InProgress", "a", 1, t0)
    same = incident_status.set_condition(first, "Diagnosed", "Unknown", "InProgress", "b", 2, t1)
    assert same[0]["lastTransitionTime"] == "2023-01-30T11:52:00Z"
    assert (same[0]["message"], same[0]["observedGeneration"]) == ("b", 2)
    moved = incident_status.set_condition(same, "Diagnosed", "True", "Diagnosed", "c", 2, t2)
    assert moved[0]["lastTransitionTime"] == "2023-01-30T11:54:00Z"
    assert first[0]["message"] == "a"  # the input list is not changed
    other = incident_status.set_condition(moved, "LLMFallback", "True", "X", "d", 2, t2)
    assert [c["type"] for c in other] == ["Diagnosed", "LLMFallback"]


def test_set_condition_refuses_a_bad_status() -> None:
    with pytest.raises(ValueError, match="not one of True, False, Unknown"):
        incident_status.set_condition([], "Diagnosed", "Yes", "Diagnosed", "", 1, STARTED)


def test_timestamps_are_utc_with_z() -> None:
    naive = datetime(2023, 1, 30, 11, 51, 46)
    offset = datetime.fromisoformat("2023-01-30T12:51:46.9+01:00")
    assert format_utc(naive) == "2023-01-30T11:51:46Z"
    assert format_utc(offset) == "2023-01-30T11:51:46Z"
    assert format_utc(offset, fraction=True) == "2023-01-30T11:51:46.9Z"
    assert format_utc(1_675_079_506.25) == "2023-01-30T11:51:46Z"


def test_log_evidence_condition_follows_the_latest_diagnosis() -> None:
    """Set when logs could not be used; then it follows the later diagnoses (True when logs
    are read again, False NoLogSource without a source); never set while all is well."""
    with_logs = _diagnosis()
    with_logs.logs_read = True
    with_logs.notes = ["logs: 120 lines from loki, 3.5 min of window against 60 min of history"]
    fine = incident_status.diagnosed(with_logs, 1, STARTED, COMPLETED)["conditions"]
    assert "LogEvidence" not in [c["type"] for c in fine]
    assert fine[0]["message"].endswith("; logs: 120 lines from loki, 3.5 min of window against 60 min of history")
    down = _diagnosis()
    down.logs_read = False
    down.notes = ["log source loki at http://loki:3100 refused the connection"]
    first = incident_status.diagnosed(down, 1, STARTED, COMPLETED)["conditions"]
    logs = next(c for c in first if c["type"] == "LogEvidence")
    assert (logs["status"], logs["reason"]) == ("False", "LogsUnavailable")
    assert logs["message"] == "diagnosed without logs: log source loki at http://loki:3100 refused the connection"
    assert "logs:" not in first[0]["message"]
    again = incident_status.diagnosed(with_logs, 2, STARTED, COMPLETED, conditions=first)["conditions"]
    logs = next(c for c in again if c["type"] == "LogEvidence")
    assert (logs["status"], logs["reason"]) == ("True", "LogsRead")
    assert logs["message"].startswith("120 lines from loki")
    without = incident_status.diagnosed(_diagnosis(), 3, STARTED, COMPLETED, conditions=again)
    logs = next(c for c in without["conditions"] if c["type"] == "LogEvidence")
    assert (logs["status"], logs["reason"]) == ("False", "NoLogSource")
    assert "LogEvidence" not in [c["type"] for c in
                                 incident_status.diagnosed(_diagnosis(), 1, STARTED, COMPLETED)["conditions"]]
