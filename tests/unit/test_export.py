"""Training and evaluation records: export of confirmed incidents, JSONL, redaction, accuracy.

Incidents are real diagnoses of the synthetic generator's incidents by the deterministic engine,
kept as ``status.record`` text exactly as the operator writes it (``build_record`` then
``encode_record``), on objects shaped as ``kubectl get fi -o json`` prints them.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from thinkfl_operator.cli.main import main
from thinkfl_operator.engines.heuristic.engine import HeuristicEngine
from thinkfl_operator.engines.thinkfl import prompt
from thinkfl_operator.errors import UserInputError
from thinkfl_operator.evaluation.scores import accuracy_table
from thinkfl_operator.feedback.export import (
    diagnosis_record,
    read_jsonl,
    records_from_objects,
    write_jsonl,
)
from thinkfl_operator.feedback.opening import root_of
from thinkfl_operator.feedback.record import build_record, encode_record
from thinkfl_operator.feedback.redact import redact
from thinkfl_operator.feedback.report import merge, ranks_from_objects, ranks_from_records
from thinkfl_operator.models import Incident
from thinkfl_operator.settings import Settings
from thinkfl_operator.synthetic import SyntheticIncident, generate
from thinkfl_operator.telemetry.naming import service_of_pod

FAULTS = {"slow-recs": ("network_delay", "recommendationservice"),
          "busy-cart": ("cpu_contention", "cartservice")}
CONFIRMED = [{"type": "Diagnosed", "status": "True"}, {"type": "Confirmed", "status": "True"}]


@cache
def incident(name: str) -> tuple[SyntheticIncident, str]:
    """The synthetic incident behind ``name`` and its diagnosis record as status text."""
    fault, service = FAULTS[name]
    synthetic = generate(fault=fault, service=service)
    spec = Incident(time_s=synthetic.time_s, service="frontend", description=f"{service} is slow")
    diagnosis = HeuristicEngine(Settings()).diagnose(synthetic.store(), spec)
    return synthetic, encode_record(build_record(diagnosis, spec))


def fi(name: str, *, label: dict[str, str] | None = None, annotation: str | None = None,
       conditions: list[dict[str, str]] | None = None, record: str | None = None,
       grade: dict[str, Any] | None = None, engine: str = "heuristic") -> dict[str, Any]:
    """A FailureIncident as the API returns it, diagnosed from ``incident(name)``."""
    text = incident(name if name in FAULTS else "slow-recs")[1]
    spec: dict[str, Any] = {"service": "frontend"}
    if label is not None:
        spec["feedback"] = label
    annotations = {"thinkfl.dev/root-cause": annotation} if annotation else {}
    return {"apiVersion": "thinkfl.dev/v1alpha1", "kind": "FailureIncident",
            "metadata": {"name": name, "namespace": "shop", "annotations": annotations},
            "spec": spec,
            "status": {"phase": "Diagnosed", "engine": engine, "model": "",
                       "record": text if record is None else record,
                       "grade": grade or {"score": 100, "rank": 1, "matched": ["service"],
                                          "factors": {"service": 100}},
                       "conditions": CONFIRMED if conditions is None else conditions}}


def confirmed_rows() -> list[dict[str, Any]]:
    """One row per synthetic incident, labeled with its faulty pod by an SRE."""
    objects = [fi(name, label={"pod": incident(name)[0].faulty_pod, "faultType": FAULTS[name][0],
                               "by": "alice@example.com", "note": f"{FAULTS[name][1]} was throttled"})
               for name in FAULTS]
    rows, skipped = records_from_objects(objects)
    assert not skipped
    return rows


# export -----------------------------------------------------------------------------------------

def test_a_confirmed_incident_becomes_a_row_in_the_openrlhf_prompt_format() -> None:
    synthetic, _ = incident("slow-recs")
    [row] = records_from_objects([fi("slow-recs", annotation=f"pod/{synthetic.faulty_pod}")])[0]
    # OpenRLHF's PromptDataset with --input_key input --label_key label --apply_chat_template:
    # data["input"] is the chat the rollout starts from, data["label"] goes to the reward as is.
    assert [m["role"] for m in row["input"]] == ["system", "user"]
    assert row["input"][0]["content"] == prompt.SYSTEM_PROMPT
    assert row["input"][1]["content"].startswith(prompt.USER_PREFIX)
    assert row["input"] == row["conversations"][0][:2]
    node = row["topology"]["nodes"][synthetic.faulty_pod]
    assert json.loads(row["label"]) == {"service": synthetic.faulty_service, "pod": synthetic.faulty_pod,
                                        "node": node}  # a pod label brings its service and node
    assert isinstance(row["label"], str)
    assert row["id"] == "shop/slow-recs" and row["engine"] == "heuristic" and row["version"] == 1
    assert row["grade"]["rank"] == 1 and row["feedback"] == json.loads(row["label"])
    assert row["incident"]["service"] == "frontend" and row["answer"][0]["rank"] == 1
    for conversation in row["conversations"]:  # the deterministic engine's steps, in the tool format
        assert [m["role"] for m in conversation[:3]] == ["system", "user", "assistant"]
        assert conversation[2]["content"].startswith("<tool_call>")
        assert {m["role"] for m in conversation} == {"system", "user", "assistant", "tool"}


def test_only_confirmed_incidents_with_a_usable_record_and_label_are_exported() -> None:
    pod = incident("slow-recs")[0].faulty_pod
    objects = [
        fi("slow-recs", annotation=f"pod/{pod}"),
        fi("busy-cart", label={"service": "cartservice"}),
        fi("unconfirmed", annotation=f"pod/{pod}", conditions=[{"type": "Diagnosed", "status": "True"}]),
        fi("refused", annotation=f"pod/{pod}", conditions=[{"type": "Confirmed", "status": "False"}]),
        fi("no-record", annotation=f"pod/{pod}", record=""),
        fi("bad-record", annotation=f"pod/{pod}", record="not base64!"),
        fi("no-label"),
        fi("unknown-pod", annotation="pod/checkoutservice-0"),
    ]
    rows, skipped = records_from_objects(objects)
    assert [r["id"] for r in rows] == ["shop/slow-recs", "shop/busy-cart"]
    assert dict(skipped) == {"unconfirmed": 2, "no record": 1, "invalid record": 1, "no label": 1,
                             "invalid label": 1}


def test_rows_survive_a_jsonl_round_trip(tmp_path: Path) -> None:
    rows = confirmed_rows()
    rows[0]["feedback"]["note"] = "Ünïcode ✓ kept as is"
    path = tmp_path / "records.jsonl"
    write_jsonl(path, rows)
    assert read_jsonl(path) == rows
    assert len(path.read_text(encoding="utf-8").splitlines()) == len(rows)
    assert diagnosis_record(rows[0])["conversations"] == rows[0]["conversations"]


@pytest.mark.parametrize(("line", "problem"), [
    ('{"id": "a", "label": ', "records.jsonl:2: not JSON"),
    ("[1, 2]", "records.jsonl:2: expected a JSON object, got list"),
])
def test_a_bad_line_names_the_file_and_the_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text('{"id": "ok"}\n' + line + "\n\n", encoding="utf-8")
    with pytest.raises(UserInputError, match=re.escape(problem)):
        read_jsonl(path)


# redaction --------------------------------------------------------------------------------------

def names_of(row: dict[str, Any]) -> set[str]:
    """Every pod, service and node name of a row."""
    topology = row["topology"]
    names = set(topology["pods"]) | set(topology["pods"].values()) | set(topology["nodes"].values())
    names |= set(json.loads(row["label"]).values())
    return names | {row["incident"]["service"]}


def without_system_prompts(row: dict[str, Any]) -> str:
    """The row as JSON, minus the fixed system prompt (its examples name node-1 and
    recommendationservice: public text of the paper, not the cluster's names)."""
    messages = [*row["input"], *(m for c in row["conversations"] for m in c)]
    assert all(m["content"] == prompt.SYSTEM_PROMPT for m in messages if m["role"] == "system")
    return json.dumps(row).replace(json.dumps(prompt.SYSTEM_PROMPT), '""')


def whole(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def test_redaction_hides_every_name_everywhere() -> None:
    rows = confirmed_rows()
    redacted = [redact(row, "s3cret") for row in rows]
    names = set().union(*(names_of(row) for row in rows))
    assert {"recommendationservice", "cartservice", "redis-cart", "node-1", "frontend"} <= names
    for row in redacted:
        text = without_system_prompts(row)
        assert not [n for n in names if whole(n, text)]
        assert "alice" not in text and "by" not in row["feedback"]
        assert row["id"].startswith("fi-") and "slow-recs" not in text and "busy-cart" not in text
        assert "throttled" in text  # free text stays, its names go
        assert row["grade"] == rows[redacted.index(row)]["grade"]


def test_redaction_keeps_the_structure_and_the_topology() -> None:
    for row in confirmed_rows():
        out = redact(row, "s3cret")
        assert [[m["role"] for m in c] for c in out["conversations"]] == \
            [[m["role"] for m in c] for c in row["conversations"]]
        assert [m["role"] for m in out["input"]] == [m["role"] for m in row["input"]]
        assert [a["rank"] for a in out["answer"]] == [a["rank"] for a in row["answer"]]
        assert [a["score"] for a in out["answer"]] == [a["score"] for a in row["answer"]]
        pods, nodes = out["topology"]["pods"], out["topology"]["nodes"]
        assert len(pods) == len(row["topology"]["pods"]) and len(nodes) == len(row["topology"]["nodes"])
        assert all(service_of_pod(pod) == service for pod, service in pods.items())  # readable topology
        label = json.loads(out["label"])
        assert pods[label["pod"]] == label["service"] and nodes[label["pod"]] == label["node"]
        assert out["answer"][0]["service"] == label["service"]
        for conversation in out["conversations"]:
            opening = conversation[1]["content"]  # still a well-aligned pandas table
            assert root_of(opening, pods).cmdb_id in pods
            for message in conversation:
                if message["role"] == "tool" and message["content"].startswith("["):
                    spans = json.loads(message["content"])
                    assert all(span["cmdb_id"] in pods for span in spans)


def test_the_same_salt_gives_the_same_tokens_across_rows_and_another_salt_others() -> None:
    first, second = confirmed_rows()
    shared = "frontend-l4hc4tw67z-g7dpz"
    assert shared in first["topology"]["pods"] and shared in second["topology"]["pods"]

    def token(row: dict[str, Any], salt: str) -> tuple[str, str]:
        out = redact(row, salt)
        index = list(row["topology"]["pods"]).index(shared)
        pod = list(out["topology"]["pods"])[index]
        return pod, out["topology"]["pods"][pod]

    assert token(first, "s3cret") == token(second, "s3cret")
    assert token(first, "s3cret") != token(first, "other")
    assert redact(first, "s3cret") == redact(first, "s3cret")


def test_names_are_replaced_whole_never_inside_a_longer_name() -> None:
    row = {"topology": {"pods": {"cart-0": "cart", "redis-cart-0": "redis-cart"},
                        "nodes": {"cart-0": "node-1", "redis-cart-0": "node-10"}},
           "incident": {"service": "cart", "description": "cart and redis-cart slow on node-1; "
                                                          "see cartservice-dashboard, node-100"},
           "answer": [{"rank": 1, "service": "cart", "pod": "cart-0", "node": "node-1", "score": 90}]}
    out = redact(row, "s")
    tokens = dict(zip(["cart-0", "redis-cart-0"], out["topology"]["pods"], strict=True))
    cart, redis = (out["topology"]["pods"][tokens[p]] for p in ("cart-0", "redis-cart-0"))
    node1, node10 = (out["topology"]["nodes"][tokens[p]] for p in ("cart-0", "redis-cart-0"))
    assert out["incident"]["description"] == (f"{cart} and {redis} slow on {node1}; "
                                              "see cartservice-dashboard, node-100")
    assert len({cart, redis, node1, node10}) == 4 and out["incident"]["service"] == cart
    assert out["answer"][0] == {"rank": 1, "service": cart, "pod": tokens["cart-0"], "node": node1,
                                "score": 90}


# accuracy ---------------------------------------------------------------------------------------

def graded(name: str, engine: str, rank: int | None, confirmed: bool = True) -> dict[str, Any]:
    grade: dict[str, Any] = {"score": 0, "matched": [], "factors": {}}
    if rank is not None:
        grade["rank"] = rank
    conditions = CONFIRMED if confirmed else [{"type": "Diagnosed", "status": "True"}]
    return fi(name, engine=engine, grade=grade, conditions=conditions, record="x")


def test_accuracy_by_engine_on_a_hand_checked_set() -> None:
    objects = [graded("a", "heuristic", 1), graded("b", "heuristic", 2), graded("c", "heuristic", None),
               graded("d", "thinkfl", 1), graded("e", "thinkfl", 4),
               graded("f", "thinkfl", 1, confirmed=False)]  # not confirmed: not counted
    ranks = ranks_from_objects(objects)
    assert ranks == {"heuristic": [1, 2, None], "thinkfl": [1, 4]}
    heuristic, thinkfl = accuracy_table(ranks)
    assert heuristic["count"] == 3 and heuristic["r1"] == pytest.approx(1 / 3)
    assert heuristic["r3"] == pytest.approx(2 / 3) and heuristic["mrr"] == pytest.approx(0.5)
    assert thinkfl["count"] == 2 and thinkfl["r1"] == 0.5 and thinkfl["r3"] == 0.5
    assert thinkfl["mrr"] == pytest.approx((1 + 1 / 4) / 2)
    rows = [{"engine": o["status"]["engine"], "grade": o["status"]["grade"]} for o in objects[:5]]
    assert ranks_from_records(rows) == ranks
    assert merge(ranks, {"heuristic": [3]}) == {"heuristic": [1, 2, None, 3], "thinkfl": [1, 4]}


# command line -----------------------------------------------------------------------------------

def kubectl_files(folder: Path) -> None:
    """What ``kubectl get fi -o yaml`` (a List), ``-o json`` and a hand-kept multi-document YAML
    file hold; plus a manifest of another kind, ignored."""
    pod = incident("slow-recs")[0].faulty_pod
    folder.mkdir()
    items = [fi("slow-recs", annotation=f"pod/{pod}"),
             graded("unconfirmed", "heuristic", 1, confirmed=False)]
    (folder / "list.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    (folder / "one.json").write_text(json.dumps(fi("busy-cart", label={"service": "cartservice"})))
    (folder / "more.yml").write_text(yaml.safe_dump_all([
        graded("d", "thinkfl", 2), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}]))


def test_export_and_report_from_kubectl_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kubectl_files(tmp_path / "fi")
    out = tmp_path / "records.jsonl"
    assert main(["export", "--from", str(tmp_path / "fi"), "--out", str(out)]) == 0
    assert "2 records written" in capsys.readouterr().out  # d has a record that cannot be read
    assert sorted(r["id"] for r in read_jsonl(out)) == ["shop/busy-cart", "shop/slow-recs"]
    assert main(["report", "--from", str(tmp_path / "fi")]) == 0
    report = capsys.readouterr().out.splitlines()
    assert report[0].split() == ["ENGINE", "CONFIRMED", "R@1", "R@3", "MRR"]
    assert report[1].split() == ["heuristic", "2", "100.00%", "100.00%", "1.0000"]
    assert report[2].split() == ["thinkfl", "1", "0.00%", "100.00%", "0.5000"]
    assert main(["report", "--from", str(out)]) == 0  # from exported records
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["heuristic", "2"]


def test_export_redacted_from_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain, hidden = tmp_path / "plain.jsonl", tmp_path / "hidden.jsonl"
    write_jsonl(plain, confirmed_rows())
    assert main(["export", "--from", str(plain), "--out", str(hidden), "--redact", "--salt", "s"]) == 0
    rows = read_jsonl(hidden)
    assert rows == [redact(row, "s") for row in read_jsonl(plain)]
    assert "recommendationservice-5lgffp2rv8-9lgcj" not in hidden.read_text()


@pytest.mark.parametrize(("argv", "message"), [
    (["report", "--from", "{tmp}/missing"], "missing: no such file or folder"),
    (["report", "--from", "{tmp}/bad.jsonl"], "bad.jsonl:1: not JSON"),
    (["report", "--from", "{tmp}/bad.yaml"], "bad.yaml: not YAML"),
    (["report", "--from", "{tmp}/rowless.jsonl"], "rowless.jsonl: record 1 (x): record version None"),
    (["export", "--out", "{tmp}/x.jsonl", "--from", "{tmp}", "--redact"], "--redact and --salt"),
    (["export", "--out", "{tmp}/no/such/dir/x.jsonl", "--from", "{tmp}/bad.json"], "bad.json: not JSON"),
    (["export", "--out", "{tmp}/no/such/dir/x.jsonl", "--from", "{tmp}/empty.yaml"], "x.jsonl: cannot write"),
    (["evaluate", "{tmp}/bad.jsonl", "--engine", "heuristic"], "--engine does not apply to records"),
    (["evaluate", "{tmp}/bad.jsonl"], "give --llm-url URL"),
    (["evaluate", "{tmp}/bad.jsonl", "--llm-url", "http://127.0.0.1:9/v1"], "bad.jsonl:1: not JSON"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             argv: list[str], message: str) -> None:
    (tmp_path / "bad.jsonl").write_text("{nope\n")
    (tmp_path / "rowless.jsonl").write_text('{"id": "x", "engine": "thinkfl", "grade": {"rank": 1}}\n')
    (tmp_path / "bad.yaml").write_text("a: [b\n")
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "empty.yaml").write_text("")
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    out = capsys.readouterr()
    assert code == 2, out
    assert len(out.err.splitlines()) == 1 and message in out.err and "Traceback" not in out.err
