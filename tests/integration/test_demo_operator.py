"""``thinkfl demo --operator``: the real operator against kmock's in-process Kubernetes API.

The command creates the bundled incident through the emulated API, waits for the operator's
status and prints ``kubectl get fi`` and ``kubectl describe fi`` with the Events the operator
posted; nothing is patched.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from thinkfl_operator.cli.main import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    started = time.monotonic()
    code = main(["demo", "--operator", *args])
    assert time.monotonic() - started < 30
    return code, capsys.readouterr().out


def _events(out: str) -> list[tuple[str, str]]:
    block = out.split("\nEvents:\n", 1)[1].split("\n\n", 1)[0]
    return [(line.split()[0], line.split()[1]) for line in block.splitlines()[2:]]


def test_demo_operator_prints_get_and_describe_with_the_operators_events(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys)
    assert code == 0, out
    table = out.split("$ kubectl get fi\n", 1)[1].split("$ kubectl describe", 1)[0].splitlines()
    assert table[0].split() == ["NAME", "PHASE", "TOP", "CAUSE", "ENGINE", "SERVICE", "AGE"]
    assert re.fullmatch(r"checkout-slow\s+Diagnosed\s+recommendationservice\s+heuristic\s+frontend\s+\d+s",
                        table[1]), table[1]
    describe = out.split("$ kubectl describe fi checkout-slow\n", 1)[1]
    assert describe.startswith("Name:        checkout-slow\nNamespace:   default\n")
    assert "  Phase:               Diagnosed\n" in describe
    assert "    Service: recommendationservice\n" in describe  # the first root cause
    assert _events(out) == [("Normal", "Started"), ("Normal", "Diagnosed")]
    assert out.rstrip().endswith("Injected: recommendationservice; top cause: recommendationservice")


def test_demo_operator_finds_another_injected_fault_and_writes_the_object(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "fi.json"
    code, out = _run(capsys, "--fault", "cpu_contention", "--service", "cartservice", "--json", str(path))
    assert code == 0, out
    assert re.search(r"^checkout-slow\s+Diagnosed\s+cartservice\s", out, re.MULTILINE), out
    obj = json.loads(path.read_text("utf-8"))
    assert obj["kind"] == "FailureIncident" and obj["status"]["topCause"] == "cartservice"
    assert obj["metadata"]["uid"] and obj["metadata"]["creationTimestamp"].endswith("Z")
    assert ("Normal", "Diagnosed") in _events(out)


def test_plain_demo_is_unchanged_by_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "kubectl" not in out and "Injected: recommendationservice; top-1: recommendationservice" in out


@pytest.mark.asyncio
async def test_sandbox_serves_many_incidents_with_their_own_events() -> None:
    """Twenty incidents created at once through the sandbox's API: each Diagnosed with its own
    Started/Diagnosed Events (the emulator names kopf's Events from generateName), and the
    emulator keeps only the requests still being served (the open watches), not all of them."""
    import asyncio

    from thinkfl_operator.config.settings import Settings
    from thinkfl_operator.demo.synthetic import generate
    from thinkfl_operator.kube.sandbox import sandbox

    small = generate(fault="cpu_contention", service="cartservice", minutes=12, traces_per_minute=8)
    spec = {"service": "frontend", "time": "2026-11-01T10:40:00Z"}
    names = [f"many-{i:02d}" for i in range(20)]
    async with sandbox(Settings(), lambda *_: small.store()) as cluster:
        await asyncio.gather(*(cluster.create(name, spec) for name in names))
        objects = await asyncio.gather(*(cluster.wait(name, timeout_s=60) for name in names))
        events = [await cluster.events_until(name) for name in names]
        kept = list(cluster.api)
    assert {o["status"]["phase"] for o in objects} == {"Diagnosed"}
    assert {o["status"]["topCause"] for o in objects} == {"cartservice"}
    assert all([e["reason"] for e in evs] == ["Started", "Diagnosed"] for evs in events), events
    assert len({e["metadata"]["name"] for evs in events for e in evs}) == 2 * len(names)
    assert all(str(r.action).endswith("WATCH") for r in kept[:-1]), kept  # and the last one
    assert len(kept) < 10, kept  # of ~250 requests served
    assert all(cluster.first(name) is not None for name in names)


@pytest.mark.asyncio
async def test_a_diagnosed_demo_incident_is_small_on_the_watch_and_its_record_is_in_its_configmap() -> None:
    """The demo's incident through the sandbox's API, as ``kubectl get fi -w`` streams it: every
    watch event, the Diagnosed one included, is under 16 KiB (the full record is not in the
    status), and the record is read back from the ConfigMap the incident owns."""
    import asyncio

    import aiohttp

    from thinkfl_operator.config.settings import Settings
    from thinkfl_operator.demo.synthetic import generate
    from thinkfl_operator.feedback.home import text_of
    from thinkfl_operator.feedback.record import decode_record
    from thinkfl_operator.kube.sandbox import sandbox

    demo = generate()  # the incident `thinkfl demo --operator` diagnoses
    spec = {"service": "frontend", "time": "2026-11-01T10:40:00Z"}
    sizes: dict[str, int] = {}  # phase → the largest event's bytes
    async with sandbox(Settings(engine="heuristic"), lambda *_: demo.store()) as cluster, \
            aiohttp.ClientSession() as session:
        watch = f"{cluster.url}/apis/thinkfl.dev/v1alpha1/failureincidents?watch=true"
        async with session.get(watch) as response, asyncio.timeout(30):
            await cluster.create("checkout-slow", spec)
            async for line in response.content:  # one JSON event per line
                if not line.strip():
                    continue
                status = json.loads(line)["object"].get("status") or {}
                phase = status.get("phase", "")
                sizes[phase] = max(sizes.get(phase, 0), len(line))
                if phase == "Diagnosed" and status.get("recordConfigMap"):
                    break
        obj = await cluster.get("checkout-slow")
        name = obj["status"]["recordConfigMap"]
        async with session.get(f"{cluster.url}/api/v1/namespaces/default/configmaps/{name}") as got:
            configmap = await got.json()
    print(f"largest watch event by phase (bytes): {sizes}")
    assert "Diagnosed" in sizes and max(sizes.values()) < 16 * 1024, sizes
    assert "record" not in obj["status"]
    [owner] = configmap["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("FailureIncident", "checkout-slow",
                                                            obj["metadata"]["uid"])
    record = decode_record(text_of(configmap))
    assert record["answer"][0]["service"] == obj["status"]["topCause"] == demo.faulty_service
    assert demo.faulty_pod in {e["pod"] for e in record["topology"]}
