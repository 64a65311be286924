"""Alertmanager webhook payloads → FailureIncident manifests (the pure intake function)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from thinkfl_operator.alerts.payload import (
    AlertIntakeConfig,
    BadAlertPayload,
    IntakeResult,
    incident_name,
    incidents_from_payload,
)
from thinkfl_operator.core.errors import UserInputError

DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def alert(status: str = "firing", fingerprint: str = "1a30ba71cca2921f", **labels: str) -> Any:
    """One alert as Alertmanager's webhook sends it."""
    return {
        "status": status,
        "labels": {"alertname": "HighLatency", "severity": "critical", **labels},
        "annotations": {
            "summary": "p99 latency of ts-basic-service above 2 s",
            "description": "ts-basic-service p99 has been above 2 s for 5 minutes.",
        },
        "startsAt": "2023-01-30T12:59:21.828+01:00",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2023-01-30T12:10:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=latency_p99+%3E+2&g0.tab=1",
        "fingerprint": fingerprint,
    }


def payload(*alerts: Any) -> dict[str, Any]:
    """A version-4 webhook payload holding ``alerts``."""
    firing = any(a.get("status") == "firing" for a in alerts if isinstance(a, dict))
    return {
        "version": "4",
        "groupKey": '{}/{severity="critical"}:{alertname="HighLatency"}',
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": "thinkfl",
        "groupLabels": {"alertname": "HighLatency"},
        "commonLabels": {"alertname": "HighLatency", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


CFG = AlertIntakeConfig()


def test_firing_alert_gives_exactly_this_manifest() -> None:
    cfg = AlertIntakeConfig(namespace="incidents", engine="heuristic")
    result = incidents_from_payload(payload(alert(service="ts-basic-service")), cfg)
    assert result == IntakeResult(
        incidents=[{
            "apiVersion": "thinkfl.dev/v1alpha1",
            "kind": "FailureIncident",
            "metadata": {
                "name": "alert-1a30ba71cca2921f-cf1ff0ae",
                "namespace": "incidents",
                "labels": {
                    "thinkfl.dev/fingerprint": "1a30ba71cca2921f",
                    "thinkfl.dev/source": "alertmanager",
                    "thinkfl.dev/alertname": "HighLatency",
                },
                "annotations": {
                    "thinkfl.dev/alert-url":
                        "http://prometheus:9090/graph?g0.expr=latency_p99+%3E+2&g0.tab=1",
                },
            },
            "spec": {
                "service": "ts-basic-service",
                "time": "2023-01-30T11:59:21.828Z",  # +01:00 converted to UTC
                "description": "p99 latency of ts-basic-service above 2 s\n"
                               "ts-basic-service p99 has been above 2 s for 5 minutes.",
                "engine": "heuristic",
            },
        }],
        skipped=[],
        resolved=0,
    )


def test_default_config_omits_engine_and_uses_default_namespace() -> None:
    [incident] = incidents_from_payload(payload(alert(service="svc")), CFG).incidents
    assert incident["metadata"]["namespace"] == "default"
    assert "engine" not in incident["spec"]


def test_resolved_alerts_create_nothing_and_are_counted() -> None:
    result = incidents_from_payload(
        payload(alert("resolved", service="a"), alert("resolved", "bbbbbbbbbbbbbbbb", service="b")),
        CFG,
    )
    assert result == IntakeResult(incidents=[], skipped=[], resolved=2)


def test_mixed_firing_and_resolved() -> None:
    result = incidents_from_payload(
        payload(alert("resolved", "aaaaaaaaaaaaaaaa", service="a"),
                alert("firing", "bbbbbbbbbbbbbbbb", service="b")),
        CFG,
    )
    assert [i["metadata"]["name"] for i in result.incidents] == ["alert-bbbbbbbbbbbbbbbb-cf1ff0ae"]
    assert result.resolved == 1


def test_alert_without_status_takes_the_group_status() -> None:
    firing = alert(service="svc")
    del firing["status"]
    assert len(incidents_from_payload(payload(firing), CFG).incidents) == 0  # group "resolved"
    body = payload(firing)
    body["status"] = "firing"
    assert len(incidents_from_payload(body, CFG).incidents) == 1


def test_duplicate_fingerprints_in_one_payload_give_one_incident() -> None:
    first = alert(service="first")
    second = alert(service="second")  # same fingerprint
    result = incidents_from_payload(payload(first, second, copy.deepcopy(first)), CFG)
    assert len(result.incidents) == 1
    assert result.incidents[0]["spec"]["service"] == "first"
    assert result.skipped == []


def test_missing_service_label_is_skipped_with_reason() -> None:
    result = incidents_from_payload(payload(alert(instance="10.0.0.1:9100")), CFG)
    assert result.incidents == []
    assert result.skipped == [
        ("alert 'HighLatency' (fingerprint 1a30ba71cca2921f): no service label "
         "(none of service, service_name, app, job is set)")
    ]


def test_blank_service_label_counts_as_missing() -> None:
    result = incidents_from_payload(payload(alert(service="  ")), CFG)
    assert result.incidents == [] and len(result.skipped) == 1


@pytest.mark.parametrize(
    ("labels", "service"),
    [
        ({"service": "s", "service_name": "sn", "app": "a", "job": "j"}, "s"),
        ({"service_name": "sn", "app": "a", "job": "j"}, "sn"),
        ({"app": "a", "job": "j"}, "a"),
        ({"job": "j"}, "j"),
        ({"service": "", "app": "a"}, "a"),
    ],
)
def test_service_label_fallback_order(labels: dict[str, str], service: str) -> None:
    [incident] = incidents_from_payload(payload(alert(**labels)), CFG).incidents
    assert incident["spec"]["service"] == service


def test_configured_service_labels() -> None:
    cfg = AlertIntakeConfig(service_labels=("app_kubernetes_io_name", "app"))
    one = alert(app_kubernetes_io_name="cart", app="ignored", service="also-ignored")
    [incident] = incidents_from_payload(payload(one), cfg).incidents
    assert incident["spec"]["service"] == "cart"
    skipped = incidents_from_payload(payload(alert(service="x")), cfg)
    assert skipped.skipped and "none of app_kubernetes_io_name, app is set" in skipped.skipped[0]


def test_description_from_annotations() -> None:
    def description(annotations: dict[str, Any]) -> str:
        one = alert(service="svc")
        one["annotations"] = annotations
        [incident] = incidents_from_payload(payload(one), CFG).incidents
        return str(incident["spec"]["description"])

    assert description({"summary": "S", "description": "D", "runbook_url": "u"}) == "S\nD"
    assert description({"description": "only D"}) == "only D"
    assert description({"summary": " only S "}) == "only S"
    assert description({"summary": "same", "description": "same"}) == "same"
    assert description({}) == ""
    long = description({"summary": "x" * 1500, "description": "y" * 1500})
    assert len(long) == 2000 and long.startswith("x" * 1500 + "\ny") and long.endswith("…")


def test_missing_annotations_and_url() -> None:
    one = alert(service="svc")
    del one["annotations"], one["generatorURL"]
    [incident] = incidents_from_payload(payload(one), CFG).incidents
    assert incident["spec"]["description"] == ""
    assert incident["metadata"]["annotations"] == {}


def test_name_is_deterministic_and_dns_safe() -> None:
    start = "2026-11-01T10:40:00Z"
    name = incident_name("1A30BA71CCA2921F", start)
    assert name.startswith("alert-1a30ba71cca2921f-") and len(name) == len("alert-") + 16 + 9
    assert incident_name("1a30ba71cca2921fdeadbeef", start) == name
    odd = incident_name("Not/A Fingerprint!", start)
    assert odd == incident_name("Not/A Fingerprint!", start)
    assert DNS_1123.match(odd) and len(odd) == len(name)
    for fingerprint in ("1a30ba71cca2921f", "ABCDEF0123456789", "weird fp ☃", ""):
        name = incident_name(fingerprint, start)
        assert DNS_1123.match(name) and len(name) <= 63, name


def test_the_namespace_label_names_where_the_pods_run() -> None:
    [incident] = incidents_from_payload(payload(alert(service="svc", namespace="shop")), CFG).incidents
    assert incident["spec"]["targetNamespace"] == "shop"
    [odd] = incidents_from_payload(payload(alert(service="svc", namespace="Not A Name")), CFG).incidents
    assert "targetNamespace" not in odd["spec"]
    off = AlertIntakeConfig(namespace="thinkfl", namespace_label="")
    [none] = incidents_from_payload(payload(alert(service="svc", namespace="shop")), off).incidents
    assert "targetNamespace" not in none["spec"]


def test_an_alert_firing_again_after_it_resolved_gets_a_new_incident() -> None:
    first = alert(service="svc")
    again = {**first, "startsAt": "2099-01-01T00:00:00Z"}
    [one] = incidents_from_payload(payload(first), CFG).incidents
    [two] = incidents_from_payload(payload(again), CFG).incidents
    assert one["metadata"]["name"] != two["metadata"]["name"]
    assert one["metadata"]["labels"] == two["metadata"]["labels"]  # same fingerprint label


def test_same_alert_twice_gives_the_same_manifest() -> None:
    one = incidents_from_payload(payload(alert(service="svc")), CFG)
    two = incidents_from_payload(payload(alert(service="svc")), CFG)
    assert one == two


def test_labels_are_valid_label_values() -> None:
    one = alert("firing", "Weird:fingerprint/ü", service="svc")
    one["labels"]["alertname"] = "-High latency: p99 > 2s!" + "x" * 80
    [incident] = incidents_from_payload(payload(one), CFG).incidents
    labels = incident["metadata"]["labels"]
    assert labels["thinkfl.dev/alertname"].startswith("High-latency-p99-2s-x")
    assert labels["thinkfl.dev/fingerprint"] == "Weird-fingerprint"
    for value in labels.values():
        assert LABEL_VALUE.match(value) and len(value) <= 63, value
    assert DNS_1123.match(incident["metadata"]["name"])


def test_alert_without_alertname_has_no_alertname_label() -> None:
    one = alert(service="svc")
    del one["labels"]["alertname"]
    [incident] = incidents_from_payload(payload(one), CFG).incidents
    assert "thinkfl.dev/alertname" not in incident["metadata"]["labels"]


def test_missing_fingerprint_falls_back_to_a_label_hash() -> None:
    one = alert(service="svc")
    del one["fingerprint"]
    first = incidents_from_payload(payload(one), CFG).incidents[0]["metadata"]["name"]
    again = incidents_from_payload(payload(copy.deepcopy(one)), CFG).incidents[0]
    other = alert(service="other")
    del other["fingerprint"]
    second = incidents_from_payload(payload(other), CFG).incidents[0]["metadata"]["name"]
    assert first == again["metadata"]["name"] != second
    assert DNS_1123.match(first)


@pytest.mark.parametrize(
    ("starts_at", "utc"),
    [
        ("2023-01-30T11:59:21Z", "2023-01-30T11:59:21Z"),
        ("2018-08-03T09:52:26.739266876+02:00", "2018-08-03T07:52:26.739266Z"),
        ("2023-01-30T00:30:00.5-01:30", "2023-01-30T02:00:00.5Z"),
        ("2023-01-30t11:59:21.000z", "2023-01-30T11:59:21Z"),
    ],
)
def test_starts_at_becomes_rfc3339_utc(starts_at: str, utc: str) -> None:
    one = alert(service="svc")
    one["startsAt"] = starts_at
    [incident] = incidents_from_payload(payload(one), CFG).incidents
    assert incident["spec"]["time"] == utc


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "payload is not a JSON object (got array)"),
        ("firing", "payload is not a JSON object (got string)"),
        (None, "payload is not a JSON object (got null)"),
        ({"version": "4", "status": "firing"}, "payload has no 'alerts' field"),
        ({"alerts": {"0": {}}}, "'alerts' is not a list (got object)"),
        ({"alerts": None}, "'alerts' is not a list (got null)"),
    ],
)
def test_bad_payload_shapes(body: Any, problem: str) -> None:
    with pytest.raises(BadAlertPayload) as caught:
        incidents_from_payload(body, CFG)
    assert str(caught.value) == problem
    assert isinstance(caught.value, UserInputError)


def _broken(**changes: Any) -> dict[str, Any]:
    one = alert(service="svc")
    one.update(changes)
    return payload(alert("resolved", "cccccccccccccccc"), one)  # the bad one is alerts[1]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (payload(alert(service="svc"), "oops"), "alerts[1] is not an object (got string)"),
        (payload(alert(service="svc"), 42), "alerts[1] is not an object (got number)"),
        (_broken(startsAt="yesterday"), "alerts[1].startsAt 'yesterday' is not an RFC 3339 time"),
        (_broken(startsAt="2023-01-30 11:59:21"),
         "alerts[1].startsAt '2023-01-30 11:59:21' is not an RFC 3339 time"),
        (_broken(startsAt="2023-01-30T11:59:21"),
         "alerts[1].startsAt '2023-01-30T11:59:21' is not an RFC 3339 time"),
        (_broken(startsAt="2023-02-30T11:59:21Z"),
         ("alerts[1].startsAt '2023-02-30T11:59:21Z' is not a valid time: "
          "day is out of range for month")),
        (_broken(startsAt="0001-01-01T00:00:00Z"),
         "alerts[1].startsAt '0001-01-01T00:00:00Z' is not set (before 1970)"),
        (_broken(startsAt=None), "alerts[1].startsAt is missing"),
        (_broken(startsAt=1675079961), "alerts[1].startsAt is not a string (got number)"),
        (_broken(status="pending"), "alerts[1].status is 'pending', not 'firing' or 'resolved'"),
        (_broken(labels=["service=svc"]), "alerts[1].labels is not an object (got array)"),
        (_broken(annotations="x"), "alerts[1].annotations is not an object (got string)"),
        (_broken(fingerprint=7), "alerts[1].fingerprint is not a string (got number)"),
    ],
)
def test_bad_alerts_name_the_problem(body: Any, problem: str) -> None:
    with pytest.raises(BadAlertPayload) as caught:
        incidents_from_payload(body, CFG)
    assert str(caught.value) == problem


def test_empty_alert_list_is_fine() -> None:
    assert incidents_from_payload(payload(), CFG) == IntakeResult()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"service_labels": ()},
        {"service_labels": ("service", "")},
        {"namespace": "Not_A_Namespace"},
        {"namespace": ""},
        {"engine": "gpt"},
    ],
)
def test_bad_config_is_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(UserInputError):
        AlertIntakeConfig(**kwargs)


def test_config_accepts_a_list_of_labels() -> None:
    cfg = AlertIntakeConfig(service_labels=["app", "job"])  # type: ignore[arg-type]
    assert cfg.service_labels == ("app", "job")


def test_values_are_cut_to_what_the_crd_accepts() -> None:
    """A service label over 253 characters or holding a newline, and a 2 MB generator URL, got
    the whole group refused by the API server (413/422, retried forever): they are normalised."""
    crd = yaml.safe_load((Path(__file__).parents[2] / "crds" / "failureincidents.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    long_line = alert(service="ts-" + "x" * 400)
    multi = alert(fingerprint="2b30ba71cca2921f", service="ts-basic-service\nINJECTED: yes\t ")
    huge_url = alert(fingerprint="3c30ba71cca2921f", service="ts-route-service")
    huge_url["generatorURL"] = "http://prometheus:9090/graph?g0.expr=" + "a" * 2_000_000
    result = incidents_from_payload(payload(long_line, multi, huge_url), CFG)
    services = [m["spec"]["service"] for m in result.incidents]
    assert services == ["ts-" + "x" * 250, "ts-basic-service INJECTED: yes", "ts-route-service"]
    for manifest in result.incidents:
        service = manifest["spec"]["service"]
        assert len(service) <= spec["service"]["maxLength"]
        assert re.fullmatch(spec["service"]["pattern"], service)
        assert len(manifest["spec"]["description"]) <= spec["description"]["maxLength"]
    assert "thinkfl.dev/alert-url" not in result.incidents[2]["metadata"]["annotations"]
    assert "thinkfl.dev/alert-url" in result.incidents[1]["metadata"]["annotations"]


def test_alerts_past_max_alerts_are_counted_not_read() -> None:
    alerts = [alert(fingerprint=f"{i:016x}", service="ts-order-service") for i in range(5)]
    alerts.append("not even an alert")  # past the cap: never looked at
    result = incidents_from_payload(payload(*alerts), AlertIntakeConfig(max_alerts=5))
    assert len(result.incidents) == 5
    assert result.skipped == ["1 alerts past the first 5 of this payload were not read (alerts.maxAlerts)"]
