"""``feedback.home``: the diagnosis record kept in a ConfigMap the incident owns, read back for
feedback and ``thinkfl export`` (from files of ``kubectl get`` output here; from a cluster in
``tests/integration/test_export_cluster.py``), and ``status.record`` of older versions still read."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from thinkfl_operator.cli.main import main
from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.models import Incident
from thinkfl_operator.demo.synthetic import generate
from thinkfl_operator.engines.heuristic.engine import HeuristicEngine
from thinkfl_operator.feedback.export import read_jsonl
from thinkfl_operator.feedback.home import (
    KEY,
    configmap_name,
    inline_records,
    may_replace,
    record_configmap,
    record_text,
    text_of,
)
from thinkfl_operator.feedback.record import (
    InvalidRecord,
    build_record,
    decode_record,
    encode_record,
)
from thinkfl_operator.kube.confirm import confirm

META = {"name": "checkout-slow", "namespace": "shop", "uid": "0b7c-11"}
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@cache
def diagnosed() -> tuple[str, dict[str, Any]]:
    """The encoded record and the status of the synthetic incident's deterministic diagnosis."""
    incident = generate(fault="network_delay", service="recommendationservice")
    spec = Incident(time_s=incident.time_s, service="frontend")
    diagnosis = HeuristicEngine(Settings()).diagnose(incident.store(), spec)
    status = {"phase": "Diagnosed", "engine": "heuristic",
              "rootCauses": [c.as_dict() for c in diagnosis.root_causes],
              "conditions": [{"type": "Diagnosed", "status": "True", "reason": "Diagnosed"},
                             {"type": "Confirmed", "status": "True", "reason": "FeedbackGraded"}]}
    return encode_record(build_record(diagnosis, spec)), status


def incident(where: str) -> dict[str, Any]:
    """A confirmed FailureIncident whose record is in its ConfigMap (``where="configmap"``) or,
    as older versions kept it, in ``status.record`` (``"status"``)."""
    text, status = diagnosed()
    kept = {"recordConfigMap": configmap_name(META["name"])} if where == "configmap" else {"record": text}
    return {"apiVersion": "thinkfl.dev/v1alpha1", "kind": "FailureIncident", "metadata": dict(META),
            "spec": {"service": "frontend", "feedback": {"service": "recommendationservice"}},
            "status": {**status, **kept}}


def test_the_configmap_is_owned_by_the_incident_and_holds_the_record_as_written() -> None:
    text, _ = diagnosed()
    configmap = record_configmap(META, text)
    assert configmap["metadata"]["name"] == "checkout-slow-record"
    assert configmap["metadata"]["namespace"] == "shop"
    [owner] = configmap["metadata"]["ownerReferences"]
    assert owner == {"apiVersion": "thinkfl.dev/v1alpha1", "kind": "FailureIncident",
                     "name": "checkout-slow", "uid": "0b7c-11", "controller": True}
    assert configmap["metadata"]["labels"]["thinkfl.dev/record"] == "true"
    assert text_of(configmap) == configmap["binaryData"][KEY] == text
    assert decode_record(text_of(configmap))["answer"][0]["service"] == "recommendationservice"


def test_a_name_too_long_for_the_suffix_is_cut_and_kept_apart_by_a_hash() -> None:
    first, second = "a" * 250, "a" * 249 + "b"
    names = {configmap_name(first), configmap_name(second)}
    assert len(names) == 2
    for name in names:
        assert len(name) <= 253 and name.endswith("-record") and _DNS_SUBDOMAIN.match(name)
    assert configmap_name("x.y") == "x.y-record"


def test_only_this_incidents_configmap_or_a_predecessors_is_replaced() -> None:
    text, _ = diagnosed()
    ours = record_configmap(META, text)
    assert may_replace(ours, META)
    assert may_replace(ours, {**META, "uid": "new-uid"})  # the same name recreated: GC pending
    assert not may_replace({"metadata": {"name": "checkout-slow-record"}}, META)  # someone's own
    foreign = record_configmap({**META, "name": "other"}, text)
    assert not may_replace(foreign, {**META, "uid": "new-uid"})


def test_the_record_is_read_from_its_configmap_or_from_an_older_status() -> None:
    text, _ = diagnosed()
    stored = {("shop", "checkout-slow-record"): record_configmap(META, text)}
    read = lambda namespace, name: stored.get((namespace, name))
    assert record_text(incident("configmap"), read) == text
    assert record_text(incident("status"), lambda *_: None) == text  # never asks the API
    with pytest.raises(InvalidRecord, match="ConfigMap checkout-slow-record is not there"):
        record_text(incident("configmap"), lambda *_: None)
    with pytest.raises(InvalidRecord, match="has no binaryData.record.json.gz"):
        record_text(incident("configmap"), lambda *_: {"metadata": {"name": "checkout-slow-record"}})
    bare = incident("configmap")
    del bare["status"]["recordConfigMap"]
    with pytest.raises(InvalidRecord, match="has no record"):
        record_text(bare, read)


def test_feedback_is_graded_against_the_record_in_the_configmap() -> None:
    text, _ = diagnosed()
    now = datetime(2026, 11, 2, tzinfo=UTC)
    obj = incident("configmap")
    obj["status"]["conditions"] = obj["status"]["conditions"][:1]  # not confirmed yet
    graded = confirm(obj, now, record=lambda: text)
    assert graded.graded and graded.rank == 1
    missing = confirm(obj, now, record=lambda: record_text(obj, lambda *_: None))
    [condition] = [c for c in missing.status["conditions"] if c["type"] == "Confirmed"]
    assert condition["reason"] == "NoRecord" and "is not there" in condition["message"]


def test_inline_records_fills_only_the_wanted_objects_whose_configmap_is_there() -> None:
    text, _ = diagnosed()
    stored = {("shop", "checkout-slow-record"): record_configmap(META, text)}
    objects = [incident("configmap"), {**incident("configmap"), "metadata": {**META, "name": "gone"},
                                       "status": {**incident("configmap")["status"],
                                                  "recordConfigMap": "gone-record"}}]
    filled = inline_records(objects, lambda namespace, name: stored.get((namespace, name)))
    assert filled[0]["status"]["record"] == text and "record" not in filled[1]["status"]
    assert "record" not in objects[0]["status"]  # the objects given are not changed
    assert "record" not in inline_records(objects, lambda *_: None, lambda _: False)[0]["status"]


def test_export_from_files_joins_each_incident_with_its_configmap(tmp_path: Path) -> None:
    text, _ = diagnosed()
    incidents, configmaps = tmp_path / "fi.yaml", tmp_path / "records.yaml"
    # What `kubectl get fi -o yaml` and `kubectl get cm -l thinkfl.dev/record -o yaml` write.
    incidents.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List",
                                         "items": [incident("configmap")]}))
    configmaps.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List",
                                          "items": [record_configmap(META, text)]}))
    out = tmp_path / "rows.jsonl"
    assert main(["export", "--from", str(incidents), str(configmaps), "--out", str(out)]) == 0
    [row] = read_jsonl(out)
    assert row["id"] == "shop/checkout-slow" and json.loads(row["label"])["service"] == "recommendationservice"
    assert json.loads(row["record"]) == decode_record(text)
    assert main(["export", "--from", str(incidents), "--out", str(out)]) == 0  # no ConfigMap given
    assert read_jsonl(out) == []


def test_export_still_reads_the_record_an_older_version_kept_in_the_status(tmp_path: Path) -> None:
    text, _ = diagnosed()
    path, out = tmp_path / "old.json", tmp_path / "rows.jsonl"
    path.write_text(json.dumps(incident("status")))
    assert main(["export", "--from", str(path), "--out", str(out)]) == 0
    [row] = read_jsonl(out)
    assert json.loads(row["record"]) == decode_record(text)
