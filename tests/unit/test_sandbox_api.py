"""The pure pieces of the sandbox's kubectl-facing API: ages as apimachinery's HumanDuration
prints them, field and label selectors, the CRD's names, and the OpenAPI v2 protobuf framing.
The whole of it against a real kubectl: tests/integration/test_kubectl.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from thinkfl_operator.kube import crd, openapi_v2
from thinkfl_operator.kube.sandbox_tables import human_duration
from thinkfl_operator.kube.selectors import selected

CRD_SOURCE = Path(__file__).resolve().parents[2] / "crds" / "failureincidents.yaml"
H, D = 3600, 86400


@pytest.mark.parametrize(("seconds", "shown"), [
    (-2, "<invalid>"), (-1, "0s"), (1, "1s"), (70, "70s"), (190, "3m10s"), (180, "3m"),
    (70 * 60, "70m"), (5 * H + 60, "5h1m"), (5 * H, "5h"), (47 * H, "47h"), (49 * H, "2d1h"),
    (8 * D + 2 * H, "8d"), (367 * D, "367d"), (2 * 365 * D + D, "2y1d"), (8 * 365 * D + 2 * H, "8y"),
])
def test_ages_are_printed_as_apimachinery_does(seconds: int, shown: str) -> None:
    # The cases of k8s.io/apimachinery/pkg/util/duration's HumanDuration tests.
    assert human_duration(seconds) == shown


EVENT = {"metadata": {"name": "e1", "labels": {"team": "cart", "tier": "web"}},
         "involvedObject": {"kind": "FailureIncident", "name": "checkout-slow", "namespace": "default"}}


@pytest.mark.parametrize(("params", "chosen"), [
    ({}, True),
    ({"fieldSelector": "involvedObject.name=checkout-slow,involvedObject.kind=FailureIncident"}, True),
    ({"fieldSelector": "involvedObject.name==cart-slow"}, False),
    ({"fieldSelector": "involvedObject.name!=cart-slow"}, True),
    ({"fieldSelector": "involvedObject.uid=abc"}, False),  # a missing field is ""
    ({"labelSelector": "team=cart,tier"}, True),
    ({"labelSelector": "!team"}, False),
    ({"labelSelector": "team!=cart"}, False),
    ({"labelSelector": "team in (shop, cart),tier notin (db)"}, True),
    ({"labelSelector": "team notin (cart)"}, False),
    ({"labelSelector": "owner"}, False),
])
def test_field_and_label_selectors(params: dict[str, str], chosen: bool) -> None:
    assert selected(EVENT, params) is chosen


def test_discovery_names_come_from_the_crd() -> None:
    source = yaml.safe_load(CRD_SOURCE.read_text("utf-8"))["spec"]["names"]
    info = crd.resource_info()
    assert (info.kind, info.singular, info.shortnames, info.categories) == (
        source["kind"], source["singular"], set(source["shortNames"]), set(source["categories"]))
    assert info.subresources == {"status"} and info.namespaced


def test_openapi_v2_protobuf_starts_as_gnostic_document() -> None:
    """Field 1 (swagger, "2.0") first, then info (2); the schema's name inside. kubectl decoding
    the whole of it: tests/integration/test_kubectl.py with a kubectl before v1.27."""
    name, schema = crd.definition()
    document = openapi_v2.document({name: schema})
    assert document.startswith(b"\x0a\x032.0\x12") and name.encode() in document
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "thinkfl.dev", "version": "v1alpha1", "kind": "FailureIncident"}]
