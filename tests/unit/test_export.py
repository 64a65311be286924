"""Training and evaluation records: export of confirmed incidents, JSONL, redaction, accuracy.

Incidents are real diagnoses of the synthetic generator's incidents by the deterministic engine,
kept as ``status.record`` text exactly as the operator writes it (``build_record`` then
``encode_record``), on objects shaped as ``kubectl get fi -o json`` prints them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.export_cases import CONFIRMED, FAULTS, confirmed_rows, fi, incident
from thinkfl_operator.cli.main import main
from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.errors import UserInputError
from thinkfl_operator.engines.thinkfl import prompt
from thinkfl_operator.evaluation.scores import accuracy_table
from thinkfl_operator.feedback.export import read_jsonl, records_from_objects, write_jsonl
from thinkfl_operator.feedback.opening import root_of
from thinkfl_operator.feedback.redact import redact
from thinkfl_operator.feedback.report import merge, ranks_from_objects, ranks_from_records
from thinkfl_operator.feedback.rows import check_row, record_of
from thinkfl_operator.telemetry.naming import service_of_pod

# export -----------------------------------------------------------------------------------------

def test_a_confirmed_incident_becomes_a_row_in_the_openrlhf_prompt_format() -> None:
    synthetic, _ = incident("slow-recs")
    [row] = records_from_objects([fi("slow-recs", annotation=f"pod/{synthetic.faulty_pod}")])[0]
    # OpenRLHF's PromptDataset with --input_key input --label_key label --apply_chat_template:
    # data["input"] is the chat the rollout starts from, data["label"] goes to the reward as is.
    record = record_of(row)
    assert [m["role"] for m in row["input"]] == ["system", "user"]
    assert row["input"][0]["content"] == prompt.SYSTEM_PROMPT
    assert row["input"][1]["content"].startswith(prompt.USER_PREFIX)
    assert row["input"] == record["conversations"][0][:2]
    [node] = [e["node"] for e in record["topology"] if e["pod"] == synthetic.faulty_pod]
    assert json.loads(row["label"]) == {"service": synthetic.faulty_service, "pod": synthetic.faulty_pod,
                                        "node": node}  # a pod label brings its service and node
    assert isinstance(row["label"], str) and isinstance(row["record"], str)
    assert row["id"] == "shop/slow-recs" and row["engine"] == "heuristic" and row["version"] == 2
    assert row["redacted"] is False and record["version"] == 2
    assert row["grade"]["rank"] == 1 and row["grade"]["score"] == 100
    assert row["grade"]["factors"]["pod"] == {"checked": True, "credit": 100}
    assert row["feedback"] == {"service": synthetic.faulty_service, "pod": synthetic.faulty_pod,
                               "node": node, "faultType": "", "note": "", "by": ""}
    assert record["incident"]["service"] == "frontend" and record["answer"][0]["rank"] == 1
    for conversation in record["conversations"]:  # the deterministic engine's steps, in the tool format
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
    assert check_row(rows[0]).record == record_of(rows[0])


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

def fold(text: str) -> str:
    """Case and ``-``/``_`` gone: ``Recommendation-Service`` → ``recommendationservice``."""
    return re.sub(r"[-_]", "", text).lower()


def visible(row: dict[str, Any]) -> str:
    """The row as JSON with its record opened, minus the fixed system prompt (its examples name
    node-1 and recommendationservice: public text of the paper, not the cluster's names)."""
    record = record_of(row)
    messages = [*row["input"], *(m for c in record["conversations"] for m in c)]
    assert all(m["content"] == prompt.SYSTEM_PROMPT for m in messages if m["role"] == "system")
    return json.dumps({**row, "record": record}).replace(json.dumps(prompt.SYSTEM_PROMPT), '""')


def names_in(row: dict[str, Any]) -> dict[str, set[str]]:
    """Every name of a row, by kind, operation names included."""
    record = record_of(row)
    topology = record["topology"]
    text = json.dumps(record)
    operations = {json.loads(f'"{m}"') for m in re.findall(r'\\"operation_name\\":\\"(.*?)\\"', text)}
    operations |= {root_of(c[1]["content"], {}).operation_name for c in record["conversations"]}
    return {"services": {e["service"] for e in topology} | {record["incident"]["service"]},
            "pods": {e["pod"] for e in topology}, "nodes": {e["node"] for e in topology} - {""},
            "operations": operations}


def chatty_rows() -> list[dict[str, Any]]:
    """Confirmed rows whose free text names services as code and people write them."""
    objects = [fi(name, label={"pod": incident(name)[0].faulty_pod, "by": "alice@example.com",
                               "note": "RecommendationService and hipstershop.CartService/GetCart "
                                       "were throttled; RECOMMENDATIONSERVICE p99 and "
                                       "ListRecommendations too; see CartServiceClient"})
               for name in FAULTS]
    return records_from_objects(objects)[0]


def test_redaction_hides_every_name_everywhere() -> None:
    rows = chatty_rows()
    names = {kind: set().union(*(names_in(row)[kind] for row in rows)) for kind in names_in(rows[0])}
    assert {"recommendationservice", "cartservice", "redis-cart", "frontend"} <= names["services"]
    assert "hipstershop.RecommendationService/ListRecommendations" in names["operations"]
    words = {w for op in names["operations"] for w in re.findall(r"[A-Za-z0-9_]+", op) if len(w) > 3}
    assert {"hipstershop", "ListRecommendations", "Recv"} <= words
    for row in rows:
        text = redact(row, "s3cret")
        shown = visible(text)
        assert not [s for s in names["services"] if fold(s) in fold(shown)]  # any case, any form
        assert not [p for p in names["pods"] | names["nodes"]
                    if re.search(rf"(?<![\w-]){re.escape(p)}(?![\w-])", shown, re.IGNORECASE)]
        assert not [w for w in words | names["operations"] if w in shown]
        assert "alice" not in shown and text["feedback"]["by"] == ""
        assert text["id"].startswith("fi-") and "slow-recs" not in shown and "busy-cart" not in shown
        assert "throttled" in shown and "p99" in shown  # free text stays, its names go
        assert text["grade"] == row["grade"] and text["redacted"] is True


def test_redaction_keeps_the_structure_and_the_topology() -> None:
    for row in confirmed_rows():
        out = redact(row, "s3cret")
        before, after = record_of(row), check_row(out).record  # still a row that replays
        assert [[m["role"] for m in c] for c in after["conversations"]] == \
            [[m["role"] for m in c] for c in before["conversations"]]
        assert [m["role"] for m in out["input"]] == [m["role"] for m in row["input"]]
        assert [(a["rank"], a["score"], a["padded"]) for a in after["answer"]] == \
            [(a["rank"], a["score"], a["padded"]) for a in before["answer"]]
        pods = {e["pod"]: e["service"] for e in after["topology"]}
        nodes = {e["pod"]: e["node"] for e in after["topology"]}
        assert len(after["topology"]) == len(before["topology"])
        assert all(service_of_pod(pod) == service for pod, service in pods.items())  # readable
        label = json.loads(out["label"])
        assert pods[label["pod"]] == label["service"] and nodes[label["pod"]] == label["node"]
        assert after["answer"][0]["service"] == label["service"]
        for conversation in after["conversations"]:
            root = root_of(conversation[1]["content"], pods)  # still a well-aligned pandas table
            assert root.cmdb_id in pods and root.operation_name.startswith("op-")
            for message in conversation:
                if message["role"] == "tool" and message["content"].startswith("["):
                    spans = json.loads(message["content"].split("\n(")[0])
                    assert all(span["cmdb_id"] in pods for span in spans)
                    assert all(re.fullmatch(r"[\w./ {}*-]+", s["operation_name"]) for s in spans)


def test_the_same_salt_gives_the_same_tokens_across_rows_and_another_salt_others() -> None:
    first, second = confirmed_rows()
    shared = "frontend-l4hc4tw67z-g7dpz"

    def tokens(row: dict[str, Any], salt: str) -> tuple[str, str, str]:
        before, after = record_of(row), record_of(redact(row, salt))
        index = [e["pod"] for e in before["topology"]].index(shared)
        entry = after["topology"][index]
        return entry["pod"], entry["service"], root_of(after["conversations"][0][1]["content"],
                                                       {}).operation_name

    assert tokens(first, "s3cret") == tokens(second, "s3cret")  # pod, service, operation
    assert tokens(first, "s3cret") != tokens(first, "other")
    assert redact(first, "s3cret") == redact(first, "s3cret")


def test_a_pods_token_does_not_depend_on_knowing_its_service() -> None:
    row = confirmed_rows()[0]
    record = record_of(row)
    pod = incident("slow-recs")[0].faulty_pod
    orphan = dict(row, record=json.dumps({**record, "topology": [
        {**e, "service": ""} if e["pod"] == pod else e for e in record["topology"]]}))
    index = [e["pod"] for e in record["topology"]].index(pod)
    tokens = [record_of(redact(r, "s"))["topology"][index]["pod"] for r in (row, orphan)]
    assert tokens[0] == tokens[1]


def test_a_redacted_row_is_marked_and_never_hashed_twice() -> None:
    row = confirmed_rows()[0]
    once = redact(row, "s3cret")
    assert once["redacted"] is True and row["redacted"] is False
    assert redact(once, "s3cret") == once and redact(once, "other") == once


def test_service_spellings_and_operation_words_in_free_text() -> None:
    from thinkfl_operator.feedback.names import Names
    from thinkfl_operator.feedback.tokens import (
        operation_token,
        service_token,
        tokens_for,
        word_token,
    )

    names = Names(services={"ts-order-service", "ts-order-other-service", "cart"},
                  operations={"/api/v1/orderservice/order/{orderId}", "GET /api/v1/orderOtherService/x"})
    substitute = tokens_for(names, "s").substitution()
    order, other, cart = (service_token(s, "s") for s in
                          ("ts-order-service", "ts-order-other-service", "cart"))
    text = ("ts-order-service, TsOrderServiceImpl, OrderService, order_service and orderservice; "
            "orderOtherService; /api/v1/orderservice/order/{orderId} slow; reorder-service-desk, "
            "cart and redis-cart and cartservice; orderId retried")
    assert substitute(text) == (
        f"{order}, {order}Impl, {order}, {order} and {order}; {other}; "
        f"{operation_token('/api/v1/orderservice/order/{orderId}', 's')} slow; "
        f"reorder-service-desk, {cart} and redis-cart and cartservice; "
        f"{word_token('orderId', 's')} retried")
    assert operation_token("GET /api/v1/orderOtherService/x", "s") == \
        f"GET /api/v1/{word_token('orderOtherService', 's')}/{word_token('x', 's')}"


# accuracy ---------------------------------------------------------------------------------------

def graded(name: str, engine: str, rank: int | None, confirmed: bool = True,
           namespace: str = "shop") -> dict[str, Any]:
    grade: dict[str, Any] = {"score": 0, "matched": [], "factors": {}}
    if rank is not None:
        grade["rank"] = rank
    conditions = CONFIRMED if confirmed else [{"type": "Diagnosed", "status": "True"}]
    return fi(name, engine=engine, grade=grade, conditions=conditions, record="x", namespace=namespace)


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
    rows = [{"engine": o["status"]["engine"], "grade": {"rank": o["status"]["grade"].get("rank", 0)}}
            for o in objects[:5]]  # a row says 0 where it missed
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


def report_lines(capsys: pytest.CaptureFixture[str], *argv: str) -> list[list[str]]:
    assert main(["report", *argv]) == 0
    return [line.split() for line in capsys.readouterr().out.splitlines()]


def test_export_and_report_from_kubectl_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kubectl_files(tmp_path / "fi")
    out = tmp_path / "records.jsonl"
    assert main(["export", "--from", str(tmp_path / "fi"), "--out", str(out)]) == 0
    assert "2 records written" in capsys.readouterr().out  # d has a record that cannot be read
    assert sorted(r["id"] for r in read_jsonl(out)) == ["shop/busy-cart", "shop/slow-recs"]
    report = report_lines(capsys, "--from", str(tmp_path / "fi"))
    assert report[0] == ["ENGINE", "CONFIRMED", "R@1", "R@3", "MRR"]
    assert report[1] == ["heuristic", "2", "100.00%", "100.00%", "1.0000"]
    assert report[2] == ["thinkfl", "1", "0.00%", "100.00%", "0.5000"]
    assert report_lines(capsys, "--from", str(out))[1][:2] == ["heuristic", "2"]  # from the records


def test_exporting_into_the_folder_read_never_doubles_rows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "fi"
    kubectl_files(folder)
    out = folder / "records.jsonl"
    for _ in range(3):  # the --out file of the run before is in the folder read
        assert main(["export", "--from", str(folder), "--out", str(out)]) == 0
        assert capsys.readouterr().out.startswith("2 records written")
    assert len(read_jsonl(out)) == 2
    # report reads the objects and their rows: each incident counts once.
    assert report_lines(capsys, "--from", str(folder))[1] == \
        ["heuristic", "2", "100.00%", "100.00%", "1.0000"]
    assert main(["export", "--from", str(folder), str(out), "--out", str(tmp_path / "again.jsonl")]) == 0
    assert "skipped: 4 duplicate" in capsys.readouterr().out  # rows in the folder and given again
    assert len(read_jsonl(tmp_path / "again.jsonl")) == 2


def test_an_object_wins_over_an_exported_row_of_the_same_incident(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = confirmed_rows()
    second = record_of(rows[0])["answer"][1]["service"]  # labeled otherwise before a correction
    stale = dict(rows[0], label=json.dumps({"service": second}))
    write_jsonl(tmp_path / "old.jsonl", [stale, rows[1]])
    live = graded("slow-recs", "heuristic", 1)
    (tmp_path / "live.json").write_text(json.dumps(live))
    report = report_lines(capsys, "--from", str(tmp_path / "old.jsonl"), str(tmp_path / "live.json"))
    assert report[1] == ["heuristic", "2", "100.00%", "100.00%", "1.0000"]  # not 3, and the live rank


def test_namespace_applies_to_exported_rows_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = confirmed_rows()
    write_jsonl(tmp_path / "rows.jsonl", rows + [redact(rows[0], "s")])
    assert report_lines(capsys, "--from", str(tmp_path), "--namespace", "shop")[1][:2] == ["heuristic", "2"]
    assert report_lines(capsys, "--from", str(tmp_path), "--namespace", "other") == \
        [["no", "confirmed", "and", "graded", "incidents"]]
    assert report_lines(capsys, "--from", str(tmp_path))[1][:2] == ["heuristic", "3"]


def test_export_redacted_from_records(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    plain, hidden, again = tmp_path / "plain.jsonl", tmp_path / "hidden.jsonl", tmp_path / "again.jsonl"
    write_jsonl(plain, confirmed_rows())
    assert main(["export", "--from", str(plain), "--out", str(hidden), "--redact", "--salt", "s"]) == 0
    rows = read_jsonl(hidden)
    assert rows == [redact(row, "s") for row in read_jsonl(plain)]
    assert "recommendationservice-5lgffp2rv8-9lgcj" not in hidden.read_text()
    # The salt may come from the environment (out of the shell history); a redacted row stays.
    monkeypatch.setenv("THINKFL_EXPORT_SALT", "s")
    assert main(["export", "--from", str(plain), str(hidden), "--out", str(again), "--redact"]) == 0
    assert read_jsonl(again) == rows + rows


def _broken(row: dict[str, Any], **changes: Any) -> str:
    return json.dumps({**row, **changes})


def test_every_row_is_checked_before_anything_is_done(tmp_path: Path) -> None:
    row = confirmed_rows()[0]
    record = record_of(row)
    cases = {
        "'label' is missing or not a JSON object string": {"label": "pod/x"},
        "'label' key 'cause' is not one of service, pod, node": {"label": '{"cause": "x"}'},
        'label pod "cartservice-9" is not in this incident\'s observed topology':
            {"label": '{"pod": "cartservice-9"}'},
        "label names no root cause": {"label": "{}"},
        "the record holds no conversation": {"record": json.dumps({**record, "conversations": []})},
        "'record' is not JSON": {"record": "{"},
        "record version None is not supported": {"record": "{}"},
    }
    for number, (problem, changes) in enumerate(cases.items()):
        path = tmp_path / f"rows{number}.jsonl"
        path.write_text(json.dumps(row) + "\n\n" + _broken(row, **changes) + "\n")
        for argv in (["report", "--from", str(path)], ["evaluate", str(path)],
                     ["export", "--from", str(path), "--out", str(tmp_path / "x.jsonl")]):
            with pytest.raises(UserInputError) as caught:
                _run(argv)
            assert str(caught.value).startswith(f"{path}:3: ") and problem in str(caught.value), argv
    assert not (tmp_path / "x.jsonl").exists()


def _run(argv: list[str]) -> int:
    """A command, its user errors raised (``main`` prints them)."""
    from thinkfl_operator.cli import records
    from thinkfl_operator.cli.main import build_parser

    args = build_parser().parse_args(argv)
    command = {"report": records.cmd_report, "export": records.cmd_export,
               "evaluate": records.cmd_evaluate_records}[argv[0]]
    return command(args, Settings())


@pytest.mark.parametrize(("argv", "message"), [
    (["report", "--from", "{tmp}/missing"], "missing: no such file or folder"),
    (["report", "--from", "{tmp}/bad.jsonl"], "bad.jsonl:1: not JSON"),
    (["report", "--from", "{tmp}/bad.yaml"], "bad.yaml: not YAML"),
    (["report", "--from", "{tmp}/rowless.jsonl"], "rowless.jsonl:1: 'record' is missing"),
    (["export", "--out", "{tmp}/x.jsonl", "--from", "{tmp}", "--redact"], "--redact needs a salt"),
    (["export", "--out", "{tmp}/x.jsonl", "--from", "{tmp}", "--salt", "s"], "--salt is only used with --redact"),
    (["export", "--out", "{tmp}/no/such/dir/x.jsonl", "--from", "{tmp}/bad.json"], "bad.json: not JSON"),
    (["export", "--out", "{tmp}/no/such/dir/x.jsonl", "--from", "{tmp}/empty.yaml"], "x.jsonl: cannot write"),
    (["evaluate", "{tmp}/bad.jsonl", "--engine", "heuristic"], "--engine does not apply to records"),
    (["evaluate", "{tmp}/good.jsonl"], "give --llm-url URL"),
    (["evaluate", "{tmp}/empty.jsonl", "--llm-url", "http://127.0.0.1:9/v1"], "empty.jsonl: no records"),
    (["evaluate", "{tmp}/bad.jsonl", "--llm-url", "http://127.0.0.1:9/v1"], "bad.jsonl:1: not JSON"),
    (["evaluate", "{tmp}/badlabel.jsonl", "--llm-url", "http://127.0.0.1:9/v1"],
     "badlabel.jsonl:1: 'label' is missing or not a JSON object string"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch,
                                             argv: list[str], message: str) -> None:
    monkeypatch.delenv("THINKFL_EXPORT_SALT", raising=False)
    monkeypatch.delenv("THINKFL_LLM__BASE_URL", raising=False)
    good = confirmed_rows()[0]
    (tmp_path / "bad.jsonl").write_text("{nope\n")
    (tmp_path / "good.jsonl").write_text(json.dumps(good) + "\n")
    (tmp_path / "badlabel.jsonl").write_text(_broken(good, label=7) + "\n")
    (tmp_path / "empty.jsonl").write_text("\n")
    (tmp_path / "rowless.jsonl").write_text('{"id": "x", "engine": "thinkfl", "grade": {"rank": 1}}\n')
    (tmp_path / "bad.yaml").write_text("a: [b\n")
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "empty.yaml").write_text("")
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    out = capsys.readouterr()
    assert code == 2, out
    assert len(out.err.splitlines()) == 1 and message in out.err and "Traceback" not in out.err


def test_rows_of_the_first_release_are_read_and_written_in_the_current_shape(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    row = confirmed_rows()[0]
    record = record_of(row)
    old = {"id": row["id"], "input": row["input"], "label": row["label"], "version": 1,
           "incident": {**record["incident"], "time": None}, "engine": record["engine"],
           "model": record["model"], "conversations": record["conversations"],
           "answer": [{k: a[k] for k in ("rank", "service", "pod", "node", "score")}
                      for a in record["answer"]],
           "topology": {"pods": {e["pod"]: e["service"] for e in record["topology"]},
                        "nodes": {e["pod"]: e["node"] for e in record["topology"] if e["node"]}},
           "grade": {"score": 100, "rank": 1, "matched": ["format", "service"],
                     "factors": {"format": 100, "service": 100}},
           "feedback": {k: v for k, v in row["feedback"].items() if v}}
    write_jsonl(tmp_path / "old.jsonl", [old])
    assert report_lines(capsys, "--from", str(tmp_path / "old.jsonl"))[1][:3] == ["heuristic", "1", "100.00%"]
    assert main(["export", "--from", str(tmp_path / "old.jsonl"), "--out", str(tmp_path / "new.jsonl")]) == 0
    [new] = read_jsonl(tmp_path / "new.jsonl")
    assert new == {**row, "record": new["record"]}
    no_usage = {"llmCalls": 0, "promptTokens": 0, "completionTokens": 0, "toolCalls": 0, "stages": []}
    assert record_of(new) == {**record, "incident": {**record["incident"], "time": ""},
                              "usage": no_usage}  # the first release kept no usage
