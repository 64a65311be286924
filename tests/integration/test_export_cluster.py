"""``thinkfl export``, ``report`` and ``evaluate RECORDS.jsonl`` against a cluster: kmock's API.

The real kopf operator diagnoses incidents in kmock and grades the one an SRE labels; the
commands then read the cluster through the official ``kubernetes`` client and a kubeconfig (as
they would with ``kubectl``'s), and the exported records are replayed through the real
``openai`` client against a server playing the ThinkFL model.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from tests.fakes.openai_replay import ReplayServer
from tests.fakes.thinkfl_policy import WalkPolicy
from tests.integration.operator_harness import (
    INCIDENT,
    RESOURCE,
    Counting,
    diagnosed,
    merge_patch,
    operator,
    plain,
    wait_condition,
)
from thinkfl_operator.cli.main import main
from thinkfl_operator.engines.thinkfl import prompt
from thinkfl_operator.feedback.export import read_jsonl
from thinkfl_operator.feedback.home import text_of
from thinkfl_operator.feedback.rows import record_of


def kubeconfig(tmp_path: Path, server: str) -> Path:
    """A kubeconfig pointing at ``server``, as ``kubectl config`` would write it."""
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
        "clusters": [{"name": "kmock", "cluster": {"server": server}}],
        "users": [{"name": "sre", "user": {"token": "not-checked"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "sre"}}],
    }))
    return path


def use_kubeconfig(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """``KUBECONFIG=path``, and not in a pod. The client reads ``KUBECONFIG`` once, when it is
    imported (as a command starting with it set does); this process imported it long ago."""
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


@pytest.fixture
def cluster(api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """kmock, reached through a kubeconfig."""
    use_kubeconfig(monkeypatch, kubeconfig(tmp_path, str(api.url).rstrip("/")))
    return api


async def thinkfl(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    """The command's stdout lines (in a thread: kmock answers on this test's event loop)."""
    code = await asyncio.to_thread(main, list(argv))
    out = capsys.readouterr()
    assert code == 0, out
    return out.out.splitlines()


async def confirmed_and_not(api: Any) -> dict[str, Any]:
    """Two incidents diagnosed by the operator, one confirmed by an SRE; that one's object."""
    async with operator(api, Counting()):
        await diagnosed(api, "confirmed")
        await diagnosed(api, "unconfirmed")
        await merge_patch(api, "confirmed", {"metadata": {"annotations": {
            "thinkfl.dev/root-cause": f"pod/{INCIDENT.faulty_pod}"}}})
        assert (await wait_condition(api, "confirmed"))["status"] == "True"
    confirmed: dict[str, Any] = plain(api.objects[RESOURCE, "default", "confirmed"])
    return confirmed


@pytest.mark.asyncio
async def test_export_and_report_read_the_cluster(cluster: Any, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    confirmed = await confirmed_and_not(cluster)
    # Its record is in its ConfigMap; the copy's is in its status, as an older version kept it.
    configmap = plain(cluster.objects["v1/configmaps", "default", confirmed["status"]["recordConfigMap"]])
    assert configmap["metadata"]["ownerReferences"][0]["uid"] == confirmed["metadata"]["uid"]
    other = plain(confirmed)  # a copy
    other["metadata"].update(namespace="payments", name="elsewhere")
    other["status"]["record"] = text_of(configmap)
    del other["status"]["recordConfigMap"]
    cluster.objects[RESOURCE, "payments", "elsewhere"] = other
    engine = confirmed["status"]["engine"]

    out = tmp_path / "records.jsonl"
    assert await thinkfl(capsys, "export", "--out", str(out)) == \
        [f"2 records written to {out}; skipped: 1 unconfirmed"]
    rows = read_jsonl(out)
    assert sorted(r["id"] for r in rows) == ["default/confirmed", "payments/elsewhere"]
    assert json.loads(rows[0]["label"])["service"] == INCIDENT.faulty_service
    status_grade = confirmed["status"]["grade"]
    assert (rows[0]["grade"]["score"], rows[0]["grade"]["rank"]) == (status_grade["score"], status_grade["rank"])
    assert rows[0]["engine"] == engine

    await thinkfl(capsys, "export", "--out", str(out), "--namespace", "payments")
    assert [r["id"] for r in read_jsonl(out)] == ["payments/elsewhere"]

    report = await thinkfl(capsys, "report")
    assert [line.split() for line in report] == [["ENGINE", "CONFIRMED", "R@1", "R@3", "MRR"],
                                                 [engine, "2", "100.00%", "100.00%", "1.0000"]]
    report = await thinkfl(capsys, "report", "--namespace", "default")
    assert report[1].split()[:2] == [engine, "1"]


@pytest.mark.asyncio
async def test_exported_records_replay_as_an_evaluation_set_redacted_or_not(
        cluster: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await confirmed_and_not(cluster)
    plain, hidden = tmp_path / "plain.jsonl", tmp_path / "hidden.jsonl"
    await thinkfl(capsys, "export", "--out", str(plain))
    await thinkfl(capsys, "export", "--out", str(hidden), "--redact", "--salt", "s3cret")
    public = json.dumps(prompt.SYSTEM_PROMPT)  # its examples name recommendationservice
    opened = json.dumps([{**row, "record": record_of(row)} for row in read_jsonl(hidden)])
    assert INCIDENT.faulty_service not in opened.replace(public, "").lower()
    assert all(row["redacted"] for row in read_jsonl(hidden))

    # The scripted model walks to the deepest span (productcatalogservice) and names the true
    # service second: worse than what production answered, and the report says so.
    for records in (plain, hidden):
        with ReplayServer(when_exhausted=WalkPolicy()) as server:
            lines = await thinkfl(capsys, "evaluate", str(records), "--llm-url", server.base_url,
                                  "--model", "ThinkFL-next", "--json", str(tmp_path / "ranks.json"))
            assert server.calls > 0
        [entry] = json.loads((tmp_path / "ranks.json").read_text())
        assert (entry["recordedRank"], entry["replayedRank"]) == (1, 2), lines
        assert (entry["engine"], entry["paddingLeftOut"]) == ("heuristic", 0)
        truth = f"service/{INCIDENT.faulty_service}"
        assert lines[1].split() == (["default/confirmed", truth, "heuristic", "1", "2"] if records == plain
                                    else [entry["id"], entry["truth"], "heuristic", "1", "2"])
        assert records == plain or (entry["id"].startswith("fi-") and entry["truth"] != truth)
        assert lines[-2].split() == ["recorded", "(heuristic)", "1", "100.00%", "100.00%", "1.0000"]
        assert lines[-1].split() == ["replayed", "(ThinkFL-next)", "1", "0.00%", "100.00%", "0.5000"]


@pytest.mark.asyncio
async def test_an_unreachable_cluster_is_one_line_and_exit_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    use_kubeconfig(monkeypatch, kubeconfig(tmp_path, "http://127.0.0.1:9"))
    code = await asyncio.to_thread(main, ["report"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1 and "Kubernetes API unreachable" in err, err
