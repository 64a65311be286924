"""End to end on a kind cluster (opt-in: ``python3 -m pytest -m kind --kind``, see tests/conftest.py).

Creates a throwaway kind cluster, builds the image from the Dockerfile, loads it into the
cluster, installs the chart with its no-GPU profile (``ci/no-gpu-values.yaml``: deterministic
engine), applies the example incident in a fresh namespace and waits for a terminal phase.
There is no Jaeger in the cluster, so the honest outcome is Failed with reason
BackendUnavailable (or NoEvidence): what is checked is that the real operator in a real pod
watched, handled and reported the incident through a real API server, that ``kubectl get fi``
shows the printer columns and that the Events were posted. The cluster is deleted afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "thinkfl-operator"
VALUES = CHART / "ci" / "no-gpu-values.yaml"
EXAMPLE = ROOT / "manifests" / "examples" / "incident-by-service-time.yaml"
RELEASE, RELEASE_NAMESPACE = "thinkfl-operator", "thinkfl"
TERMINAL = ("Diagnosed", "Failed")

pytestmark = pytest.mark.kind


def run(*cmd: str, env: dict[str, str], timeout: float = 600, check: bool = True) -> str:
    """The command's stdout; an assertion naming the command and its output when it fails."""
    done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode:
        raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done.stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A fresh kind cluster: the environment (KUBECONFIG) to reach it; deleted afterwards."""
    name = f"thinkfl-e2e-{secrets.token_hex(3)}"
    kubeconfig = tmp_path_factory.mktemp("kind") / "kubeconfig"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KIND_CLUSTER_NAME": name}
    try:
        run("kind", "create", "cluster", "--name", name, "--kubeconfig", str(kubeconfig),
            "--wait", "180s", env=env, timeout=900)
        yield env
    finally:
        run("kind", "delete", "cluster", "--name", name, "--kubeconfig", str(kubeconfig),
            env=env, check=False, timeout=300)


@pytest.fixture(scope="module")
def operator(cluster: dict[str, str]) -> None:
    """The image built from the Dockerfile, loaded into kind, installed with the chart."""
    tag = f"e2e-{secrets.token_hex(3)}"
    image = f"thinkfl-operator:{tag}"
    run("docker", "build", "-t", image, str(ROOT), env=cluster, timeout=1800)
    run("kind", "load", "docker-image", image, "--name", cluster["KIND_CLUSTER_NAME"], env=cluster)
    run("helm", "install", RELEASE, str(CHART), "-n", RELEASE_NAMESPACE, "--create-namespace",
        "-f", str(VALUES), "--set", f"image.tag={tag}", "--set", "image.pullPolicy=Never",
        # No Jaeger here: fail after one quick retry instead of the default 15 minutes of backoff.
        "--set", "budgets.retries=1", "--set", "budgets.retryDelaySeconds=1",
        "--wait", "--timeout", "5m", env=cluster, timeout=600)


def _logs(env: dict[str, str]) -> str:
    return run("kubectl", "logs", "-n", RELEASE_NAMESPACE, "-l", f"app.kubernetes.io/name={RELEASE}",
               "--tail", "50", env=env, check=False)


def _terminal(env: dict[str, str], namespace: str, name: str, timeout_s: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        obj = json.loads(run("kubectl", "get", "fi", name, "-n", namespace, "-o", "json", env=env))
        status: dict[str, Any] = obj.get("status") or {}
        if status.get("phase") in TERMINAL:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"{namespace}/{name} still {status.get('phase')!r} after {timeout_s:.0f} s; "
                                 f"operator logs:\n{_logs(env)}")
        time.sleep(2)


def test_example_incident_reaches_a_terminal_phase_with_a_reason(
        cluster: dict[str, str], operator: None) -> None:
    namespace = f"e2e-{secrets.token_hex(3)}"  # one namespace per test
    name = yaml.safe_load(EXAMPLE.read_text("utf-8"))["metadata"]["name"]
    run("kubectl", "create", "namespace", namespace, env=cluster)
    run("kubectl", "apply", "-n", namespace, "-f", str(EXAMPLE), env=cluster)

    status = _terminal(cluster, namespace, name)
    condition = {c["type"]: c for c in status.get("conditions", [])}["Diagnosed"]
    if status["phase"] == "Diagnosed":
        assert condition["status"] == "True" and status["rootCauses"], status
    else:
        assert condition["status"] == "False", status
        assert condition["reason"] in ("BackendUnavailable", "NoEvidence"), status
        assert condition["message"], status

    table = run("kubectl", "get", "fi", "-n", namespace, env=cluster).splitlines()
    assert table[0].split() == ["NAME", "PHASE", "TOP", "CAUSE", "ENGINE", "SERVICE", "AGE"], table
    assert table[1].split()[:2] == [name, status["phase"]], table
    events = json.loads(run("kubectl", "get", "events", "-n", namespace, "-o", "json",
                            "--field-selector", f"involvedObject.name={name}", env=cluster))
    reasons = {e["reason"] for e in events["items"]}
    assert "Started" in reasons and reasons & {"Diagnosed", "Failed"}, reasons
