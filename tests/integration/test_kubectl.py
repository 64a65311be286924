"""The real ``kubectl`` against the API of ``thinkfl demo --operator`` (``kube.sandbox``).

kmock's emulator with the operator running against it, and kubectl pointed at it through a
kubeconfig: ``get``, ``describe``, ``wait``, ``apply`` (validation on), ``explain`` and
``get events --field-selector`` as a user types them. Without kubectl on PATH the tests skip,
or fail when ``CI`` or ``THINKFL_REQUIRE_KUBECTL=1`` is set (.ci/run installs Debian's
``kubernetes-client`` where it is missing).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import yaml

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.demo.synthetic import SyntheticIncident, generate
from thinkfl_operator.kube.sandbox import Cluster, sandbox
from thinkfl_operator.kube.sandbox_api import kubeconfig

ROOT = Path(__file__).parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "failureincidents.yaml").read_text("utf-8"))
README = (ROOT / "README.md").read_text("utf-8")
SPEC = {"service": "frontend", "time": "2026-11-01T10:40:00Z"}
KUBECTL_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def incident() -> SyntheticIncident:
    return generate(fault="cpu_contention", service="cartservice", minutes=12, traces_per_minute=8)


def _kubectl_binary() -> str:
    found = shutil.which("kubectl")
    if found:
        return found
    reason = "kubectl not found on PATH (apt-get install -y --no-install-recommends kubernetes-client)"
    if os.environ.get("CI") or os.environ.get("THINKFL_REQUIRE_KUBECTL") == "1":
        pytest.fail(f"{reason}; CI requires it")
    pytest.skip(reason)


class Kubectl:
    """kubectl with a kubeconfig (and a discovery cache) of its own in the test's tmp_path."""

    def __init__(self, binary: str, config: Path) -> None:
        self.args = [binary, f"--kubeconfig={config}", f"--cache-dir={config.parent / 'kube-cache'}"]

    async def __call__(self, *args: str, ok: bool = True) -> str:
        process = await asyncio.create_subprocess_exec(
            *self.args, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(process.communicate(), KUBECTL_TIMEOUT_S)
        text = out.decode()
        assert (process.returncode == 0) == ok, f"kubectl {' '.join(args)} → {process.returncode}:\n{text}"
        return text

    async def minor(self) -> int:
        """kubectl's minor version (32 for v1.32)."""
        version = json.loads(await self("version", "--client", "-o", "json"))["clientVersion"]
        return int(re.sub(r"\D", "", version["minor"]))

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *self.args, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)


@pytest_asyncio.fixture
async def api(tmp_path: Path, incident: SyntheticIncident) -> AsyncIterator[tuple[Cluster, Kubectl]]:
    binary = _kubectl_binary()
    async with sandbox(Settings(), lambda *_: incident.store()) as cluster:
        config = tmp_path / "kubeconfig"
        config.write_text(kubeconfig(cluster.url), "utf-8")
        yield cluster, Kubectl(binary, config)


def _section(described: str, head: str) -> list[str]:
    """The stripped lines under ``head`` in kubectl describe's output, up to the next field of
    the same depth."""
    lines = described.split(f"\n{head}\n", 1)[1].splitlines()
    depth = len(head) - len(head.lstrip()) + 2
    inner = [line for line in lines[: next((i for i, line in enumerate(lines)
                                            if len(line) - len(line.lstrip()) < depth), len(lines))]]
    return [line.strip() for line in inner]


def _rows(table: str) -> list[list[str]]:
    """The rows of kubectl's table, cells split on two or more spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in table.strip().splitlines()]


@pytest.mark.asyncio
async def test_get_describe_wait_and_events_of_diagnosed_incidents(api: tuple[Cluster, Kubectl]) -> None:
    cluster, kubectl = api
    for name in ("checkout-slow", "cart-slow"):
        await cluster.create(name, SPEC)
        await cluster.wait(name)
        await cluster.events_until(name)

    # Short name from the CRD, and the CRD's printer columns (a Table from the server).
    table = _rows(await kubectl("get", "fi"))
    assert table[0] == ["NAME", "PHASE", "TOP CAUSE", "ENGINE", "SERVICE", "AGE"]
    assert sorted(row[:5] for row in table[1:]) == [
        [name, "Diagnosed", "cartservice", "heuristic", "frontend"] for name in ("cart-slow", "checkout-slow")]
    assert all(re.fullmatch(r"\d+s", row[5]) for row in table[1:]), table
    wide = _rows(await kubectl("get", "failureincident", "checkout-slow", "-o", "wide"))
    assert wide[0][-2:] == ["SUMMARY", "TRACE"] and wide[1][-1].startswith("cartservice (cartservice-")

    obj = yaml.safe_load(await kubectl("get", "fi", "checkout-slow", "-o", "yaml"))
    assert (obj["kind"], obj["metadata"]["name"], obj["spec"]) == ("FailureIncident", "checkout-slow", SPEC)
    assert obj["status"]["phase"] == "Diagnosed" and obj["status"]["topCause"] == "cartservice"
    listed = yaml.safe_load(await kubectl("get", "failureincidents", "-o", "yaml"))
    assert listed["kind"] == "List" and len(listed["items"]) == 2  # kubectl's own wrapper

    # describe: the incident's own two Events, not the other incident's.
    described = await kubectl("describe", "fi", "checkout-slow")
    assert described.startswith("Name:         checkout-slow\nNamespace:    default\n"), described[:200]
    # ... and a short status: the path one line per call, the scored candidates (three at least)
    path = _section(described, "  Path:")
    assert 3 <= len(path) <= 6 and path[0].startswith("1. search_traces(parent_span_id="), path
    assert path[-1].startswith(f"{obj['status']['usage']['toolCalls']}. print_results(root_causes=")
    ranks = [line.split()[1] for line in _section(described, "  Root Causes:") if line.startswith("Rank:")]
    scored = sum(1 for c in obj["status"]["rootCauses"] if c["score"] > 0)
    assert ranks == [str(r) for r in range(1, max(3, scored) + 1)], described
    assert "  Steps:" not in described and "Stage Milliseconds:" not in described
    # ... usage without the seconds of each stage (in the record), no empty Log Evidence
    usage = obj["status"]["usage"]
    assert [" ".join(line.split()) for line in _section(described, "  Usage:")] == [
        "Llm Calls: 0", f"Tool Calls: {usage['toolCalls']}"]
    assert ("Log Evidence:" in described) == bool(obj["status"].get("logEvidence")), described
    events = _rows(described.split("\nEvents:\n", 1)[1])
    assert events[0] == ["Type", "Reason", "Age", "From", "Message"]
    assert [row[:2] for row in events[2:]] == [["Normal", "Started"], ["Normal", "Diagnosed"]], events

    assert (await kubectl("wait", "--for=condition=Done", "fi/checkout-slow", "--timeout=10s")).strip() \
        == "failureincident.thinkfl.dev/checkout-slow condition met"

    mine = _rows(await kubectl("get", "events", "--field-selector",
                               "involvedObject.kind=FailureIncident,involvedObject.name=cart-slow"))
    assert mine[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert [row[1:4] for row in mine[1:]] == [["Normal", "Started", "failureincident/cart-slow"],
                                             ["Normal", "Diagnosed", "failureincident/cart-slow"]], mine
    assert (await kubectl("label", "fi", "cart-slow", "team=cart")).strip() \
        == "failureincident.thinkfl.dev/cart-slow labeled"
    assert (await kubectl("get", "fi", "-l", "team=cart", "-o", "name")).split() == [
        "failureincident.thinkfl.dev/cart-slow"]
    assert (await kubectl("get", "fi", "-l", "!team", "-o", "name")).split() == [
        "failureincident.thinkfl.dev/checkout-slow"]
    assert (await kubectl("get", "fi", "-l", "team in (shop,cart)", "-o", "name")).split() == [
        "failureincident.thinkfl.dev/cart-slow"]
    every = _rows(await kubectl("get", "events"))
    assert len(every) == 1 + 4 and {row[3] for row in every[1:]} == {
        "failureincident/cart-slow", "failureincident/checkout-slow"}


@pytest.mark.asyncio
async def test_apply_is_validated_and_wait_sees_the_operator_finish(
        api: tuple[Cluster, Kubectl], tmp_path: Path) -> None:
    _, kubectl = api
    body = {"apiVersion": "thinkfl.dev/v1alpha1", "kind": "FailureIncident",
            "metadata": {"name": "applied"}, "spec": SPEC}
    good, typo, invalid = (tmp_path / f"{n}.yaml" for n in ("good", "typo", "invalid"))
    good.write_text(yaml.safe_dump(body), "utf-8")
    typo.write_text(yaml.safe_dump({**body, "metadata": {"name": "typo"},
                                    "spec": {"servce": "frontend", "time": SPEC["time"]}}), "utf-8")
    invalid.write_text(yaml.safe_dump({**body, "metadata": {"name": "invalid"},
                                       "spec": {**SPEC, "window": "forever"}}), "utf-8")

    # A dry run on the server (kubectl diff is one) answers and stores nothing. An older kubectl
    # (v1.20) looks for dry-run support in /openapi/v2's paths, which the sandbox does not publish.
    dry_runs = await kubectl.minor() >= 27
    if dry_runs:
        assert "+  service: frontend" in await kubectl("diff", "-f", str(good), ok=False)  # 1: differs
        assert (await kubectl("apply", "--dry-run=server", "-f", str(good))).strip() \
            == "failureincident.thinkfl.dev/applied created (server dry run)"
        assert (await kubectl("get", "fi", "-o", "name")).strip() == ""

    watch = await kubectl.start("get", "fi", "--watch")  # sees the incident through its phases
    try:
        assert (await kubectl("apply", "-f", str(good))).strip() == "failureincident.thinkfl.dev/applied created"
        assert "condition met" in await kubectl("wait", "--for=condition=Done", "fi/applied", "--timeout=60s")
        assert watch.stdout is not None
        seen: list[str] = []
        async with asyncio.timeout(KUBECTL_TIMEOUT_S):
            while not seen or not re.match(r"applied\s+Diagnosed\s+cartservice\s+heuristic", seen[-1]):
                seen.append((await watch.stdout.readline()).decode())
    finally:
        watch.terminate()
        await watch.wait()
    assert seen[0].split() == ["NAME", "PHASE", "TOP", "CAUSE", "ENGINE", "SERVICE", "AGE"], seen
    assert sum(line.split()[:2] == ["applied", "Diagnosed"] for line in seen) == 1, seen

    again = await kubectl("apply", "-f", str(good))
    assert again.strip() == "failureincident.thinkfl.dev/applied unchanged"

    refused = await kubectl("apply", "-f", str(typo), ok=False)
    if await kubectl.minor() >= 27:  # the server validates (the OpenAPI v3 offers fieldValidation)
        assert 'Error from server (BadRequest): error when creating "' in refused, refused
        assert 'strict decoding error: unknown field "spec.servce"' in refused, refused
        rejected = await kubectl("apply", "-f", str(invalid), ok=False)
        assert 'spec.window: Invalid value: "forever"' in rejected, rejected
    else:  # kubectl validates against /openapi/v2 (types and fields, not patterns)
        assert 'unknown field "servce" in dev.thinkfl.v1alpha1.FailureIncident.spec' in refused, refused
        await kubectl("apply", "-f", str(invalid))
        await kubectl("wait", "--for=condition=Done", "fi/invalid", "--timeout=60s")
        assert "Failed" in await kubectl("get", "fi", "invalid", "-o", "jsonpath={.status.phase}")
        await kubectl("delete", "fi", "invalid")
    names = (await kubectl("get", "fi", "-o", "name")).split()
    assert names == ["failureincident.thinkfl.dev/applied"]

    assert "annotated" in await kubectl("annotate", "fi", "applied", "example.com/ticket=INC-1")
    assert "patched" in await kubectl("patch", "fi", "applied", "--type", "merge",
                                      "-p", '{"spec":{"description":"checkout is slow"}}')
    obj = yaml.safe_load(await kubectl("get", "fi", "applied", "-o", "yaml"))
    assert obj["metadata"]["annotations"]["example.com/ticket"] == "INC-1"
    assert obj["spec"]["description"] == "checkout is slow"
    if dry_runs:
        assert "(server dry run)" in await kubectl("delete", "fi", "applied", "--dry-run=server")
        assert (await kubectl("get", "fi", "-o", "name")).strip() == "failureincident.thinkfl.dev/applied"
    assert (await kubectl("auth", "can-i", "delete", "fi")).strip() == "yes"  # no authorization here
    assert (await kubectl("delete", "fi", "applied")).strip() == 'failureincident.thinkfl.dev "applied" deleted'
    assert (await kubectl("get", "fi", "-o", "name")).strip() == ""


@pytest.mark.asyncio
async def test_explain_reads_the_crd_schema(api: tuple[Cluster, Kubectl]) -> None:
    _, kubectl = api
    spec = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    explained = await kubectl("explain", "fi.spec")
    head = [line.split() for line in explained.splitlines()[:3]]
    assert ["KIND:", "FailureIncident"] in head, explained
    assert ["VERSION:", "v1alpha1"] in head or ["VERSION:", "thinkfl.dev/v1alpha1"] in head  # v1.32; v1.20
    fields = dict(re.findall(r"^ +(\w+)\t<(\w+)>", explained, re.MULTILINE))
    assert fields == {name: {"string": "string", "integer": "integer", "object": "Object"}[field["type"]]
                      for name, field in spec["properties"].items()}
    window = " ".join((await kubectl("explain", "failureincidents.spec.window")).split())
    assert " ".join(spec["properties"]["window"]["description"].split()) in window


def _readme_session() -> list[tuple[list[str], list[str]]]:
    """The README's kubectl example: each ``$ kubectl …`` command with the lines it shows."""
    block = README.split("$ export KUBECONFIG=$PWD/demo.kubeconfig\n", 1)[1].split("```", 1)[0]
    session: list[tuple[list[str], list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ kubectl "):
            session.append((shlex.split(line[2:])[1:], []))
        else:
            session[-1][1].append(line)
    return session


def _elided(line: str) -> bool:
    """A line the README leaves out (``…`` alone) or whose value changes with the clock
    (``Started At: …``); a ``…`` inside a value is what the operator wrote."""
    return line.strip() == "…" or line.rstrip().endswith(": …")


def _same(line: str) -> str:
    """A line with its spacing and its ages (``13s``) evened out."""
    return re.sub(r"\b\d+s\b", "0s", " ".join(line.split()))


@pytest.mark.asyncio
async def test_readme_example_is_real_kubectl_against_demo_serve(tmp_path: Path) -> None:
    """``thinkfl demo --operator --serve FILE``, then the README's kubectl commands: each line
    the README shows (but elisions, ``…``) is in what the real kubectl printed, and the README
    shows every line of ``describe`` (one screen); Ctrl-C ends it."""
    binary = _kubectl_binary()
    config = tmp_path / "demo.kubeconfig"
    demo = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "thinkfl_operator.cli.main", "demo", "--operator", "--serve", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert demo.stdout is not None
    printed: list[str] = []
    checked: list[str] = []
    try:
        async with asyncio.timeout(KUBECTL_TIMEOUT_S):
            while not printed or not printed[-1].startswith("kubectl describe fi checkout-slow"):
                line = (await demo.stdout.readline()).decode()
                assert line, "".join(printed)  # the demo ended before it printed the commands
                printed.append(line)
        assert f"export KUBECONFIG={config}\n" in printed, printed
        kubectl = Kubectl(binary, config)
        for args, shown in _readme_session():
            printed_lines = (await kubectl(*args)).splitlines()
            got = {_same(line) for line in printed_lines}
            if args[0] == "describe":  # the whole output is shown, not a part of it
                assert len(shown) == len(printed_lines), (shown, printed_lines)
            expected = [line for line in shown if line.strip() and not _elided(line)]
            assert [line for line in expected if _same(line) not in got] == [], args
            checked += expected
    finally:
        demo.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(demo.wait(), KUBECTL_TIMEOUT_S)
    assert code == 0
    assert len(checked) > 60 and any("Normal  Diagnosed" in line for line in checked), checked
