"""``thinkfl run`` and ``kopf run -m thinkfl_operator.kube.kopf_cli`` as processes, as a container
runs them.

Each starts against kmock's emulator through a kubeconfig (as ``kubectl`` and the in-cluster
client find the API), with the settings in the environment. No tracing backend is configured, so
an incident ends Failed with ``InvalidConfiguration`` saying what to set: the whole path from the
process's own settings to the status, its liveness endpoint and its metrics port. With JSON logs
every line the process writes is one JSON object, kopf's own records included.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.net import free_port
from thinkfl_operator.kube.sandbox import RESOURCE

COMMANDS = {
    "thinkfl run": [sys.executable, "-m", "thinkfl_operator.cli.main", "run"],
    "kopf run -m": [sys.executable, "-m", "kopf", "run", "--standalone", "-A",
                    "-m", "thinkfl_operator.kube.kopf_cli", "--liveness", "http://127.0.0.1:{health}/healthz"],
}


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: kmock, cluster: {{server: "{server}"}}}}]
users: [{{name: tester, user: {{token: not-checked}}}}]
contexts: [{{name: kmock, context: {{cluster: kmock, user: tester}}}}]
current-context: kmock
""")
    return path


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def _until(url: str, seconds: float = 30.0) -> str:
    for _ in range(int(seconds / 0.1)):
        try:
            status, text = await _get(url)
            if status == 200:
                return text
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered 200")


@pytest.mark.asyncio
@pytest.mark.parametrize("command", sorted(COMMANDS))
async def test_the_operator_process_handles_an_incident(api: Any, tmp_path: Path,
                                                        command: str) -> None:
    http, health = free_port(), free_port()
    server = str(api.url).rstrip("/")
    env = {k: v for k, v in os.environ.items() if not k.startswith("THINKFL_")}
    env.update(KUBECONFIG=str(_kubeconfig(tmp_path / "kubeconfig", server)),
               THINKFL_OPERATOR__HTTP_PORT=str(http), THINKFL_OPERATOR__HEALTH_PORT=str(health),
               THINKFL_LOG_FORMAT="json")
    argv = [part.format(health=health) for part in COMMANDS[command]]
    log = (tmp_path / "operator.log").open("w")
    process = await asyncio.create_subprocess_exec(*argv, env=env, stdout=log, stderr=log)
    try:
        liveness = await _until(f"http://127.0.0.1:{health}/healthz")
        async with aiohttp.ClientSession() as session, session.post(
                f"{server}/apis/thinkfl.dev/v1alpha1/namespaces/default/failureincidents",
                json={"apiVersion": "thinkfl.dev/v1alpha1", "kind": "FailureIncident",
                      "metadata": {"name": "from-a-process", "namespace": "default"},
                      "spec": {"service": "frontend", "time": "2026-11-01T10:40:00Z"}}) as response:
            assert response.status in (200, 201), await response.text()
        status: dict[str, Any] = {}
        for _ in range(300):
            status = dict(api.objects[RESOURCE, "default", "from-a-process"].get("status") or {})
            if status.get("phase") == "Failed":
                break
            await asyncio.sleep(0.1)
        metrics = await _until(f"http://127.0.0.1:{http}/metrics")
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
        log.close()
    output = (tmp_path / "operator.log").read_text()
    assert status.get("phase") == "Failed", (status, output[-2000:])
    condition = {c["type"]: c for c in status["conditions"]}["Diagnosed"]
    assert condition["reason"] == "InvalidConfiguration"
    assert "THINKFL_TRACES__URL" in condition["message"]
    assert "diagnosesRunning" in liveness  # the probe reports the work in flight
    assert 'thinkfl_diagnosis_failures_total{reason="InvalidConfiguration"} 1.0' in metrics
    assert code == 0, output[-2000:]
    records = [json.loads(line) for line in output.splitlines()]  # nothing in plain text
    kopf_info = [r for r in records if r["logger"].startswith("kopf.") and r["level"] == "info"]
    handled = [r for r in kopf_info if r["logger"] == "kopf.objects"]
    assert handled and handled[0]["object"]["name"] == "from-a-process", kopf_info
    assert all(r["timestamp"] for r in records)


def test_run_without_a_cluster_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """No pod, no kubeconfig: one line naming what was tried, not kopf's tracebacks."""
    import subprocess

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("THINKFL_", "KUBERNETES_")) and k != "KUBECONFIG"}
    env["HOME"] = str(tmp_path)  # no ~/.kube/config
    done = subprocess.run(COMMANDS["thinkfl run"], check=False, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("thinkfl: error: run needs a cluster: no Kubernetes configuration")
    assert "KUBECONFIG" in lines[0]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unknown_log_level_is_one_line_naming_the_variable(command: str) -> None:
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("THINKFL_")}
    env["THINKFL_LOG_LEVEL"] = "verbose"
    argv = [part.format(health=free_port()) for part in COMMANDS[command]]
    done = subprocess.run(argv, check=False, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        ("thinkfl: error: invalid settings: THINKFL_LOG_LEVEL='verbose': Value error, "
         "choose one of DEBUG, INFO, WARNING, ERROR, CRITICAL")]
