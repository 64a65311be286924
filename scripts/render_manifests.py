#!/usr/bin/env python3
"""Render the Helm chart's no-GPU profile into plain manifests for ``kubectl apply``.

Writes ``manifests/thinkfl-operator.yaml`` (a Namespace, then the chart's objects for
``helm/thinkfl-operator/ci/no-gpu-values.yaml``, release ``thinkfl-operator`` in namespace
``thinkfl``, in Helm's install order) and ``manifests/crd.yaml`` (the chart's CRD, the same bytes
as crds/failureincidents.yaml). Rendering is offline, with the Helm library of the
``helm-python-sdk`` package. Objects applied with kubectl are not managed by Helm, so their
``app.kubernetes.io/managed-by`` label says ``kubectl`` instead of the chart's ``Helm``.
``--check`` changes nothing and exits 1 when a file is stale; tests/unit/test_chart.py checks the
same.

    python scripts/render_manifests.py          # write the manifests
    python scripts/render_manifests.py --check  # fail when they are stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "thinkfl-operator"
PROFILE = CHART / "ci" / "no-gpu-values.yaml"
OUT = ROOT / "manifests" / "thinkfl-operator.yaml"
CRD_OUT = ROOT / "manifests" / "crd.yaml"
RELEASE = "thinkfl-operator"
NAMESPACE = "thinkfl"
MANAGED_BY = "kubectl"  # the app.kubernetes.io/managed-by label of the plain manifests

# Helm's install order (pkg/release/util/kind_sorter.go), for the kinds a chart may hold.
INSTALL_ORDER = (
    "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodDisruptionBudget",
    "ServiceAccount", "Secret", "ConfigMap", "StorageClass", "PersistentVolume",
    "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
    "Role", "RoleBinding", "Service", "DaemonSet", "Pod", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "Ingress", "APIService",
)

HEADER = f"""\
# ThinkFL Operator as plain manifests: the Helm chart helm/thinkfl-operator rendered with
# ci/no-gpu-values.yaml (release {RELEASE}, namespace {NAMESPACE}; deterministic engine, no GPU,
# Jaeger and Prometheus, every namespace watched) by scripts/render_manifests.py.
# Do not edit: change the chart or the profile and run the script again.
#
# No registry publishes the image yet: build and push it, then point the Deployment at it
# (its image: line below, or kubectl set image after applying), see manifests/README.md:
#
#   docker build -t REGISTRY/thinkfl-operator:0.1.0 . && docker push REGISTRY/thinkfl-operator:0.1.0
#   kubectl apply -f manifests/crd.yaml
#   kubectl apply -f manifests/thinkfl-operator.yaml
#   kubectl -n {NAMESPACE} set image deploy/{RELEASE} operator=REGISTRY/thinkfl-operator:0.1.0
#   kubectl apply -f manifests/examples/incident-by-service-time.yaml
#   kubectl get fi
"""

NAMESPACE_DOC = f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
  labels:
    app.kubernetes.io/managed-by: {MANAGED_BY}
    app.kubernetes.io/part-of: thinkfl
"""

_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)
_MANAGED_BY_HELM = re.compile(r"^(\s*app\.kubernetes\.io/managed-by:) Helm$", re.MULTILINE)


def profile_values() -> dict[str, Any]:
    """The no-GPU profile, parsed as `helm -f` parses a values file."""
    return helm.values_from_yaml(PROFILE.read_text(encoding="utf-8"))


def _documents(manifests: dict[str, str]) -> list[tuple[str, str]]:
    """(kind, text) of every non-empty rendered document, NOTES.txt left out."""
    documents = []
    for path in sorted(manifests):
        if not path.endswith((".yaml", ".yml")):
            continue
        for text in _SEPARATOR.split(manifests[path]):
            loaded = yaml.safe_load(text)
            if loaded:
                documents.append((str(loaded["kind"]), text.strip("\n") + "\n"))
    return documents


def _order(kind: str) -> int:
    return INSTALL_ORDER.index(kind) if kind in INSTALL_ORDER else len(INSTALL_ORDER)


def _managed_by_kubectl(text: str) -> str:
    """The document with every `app.kubernetes.io/managed-by: Helm` label set to kubectl."""
    relabeled, count = _MANAGED_BY_HELM.subn(rf"\1 {MANAGED_BY}", text)
    if not count:
        raise SystemExit("a rendered object has no `app.kubernetes.io/managed-by: Helm` label; "
                         "update scripts/render_manifests.py to the chart's labels")
    return relabeled


def render() -> tuple[str, bytes]:
    """The text of manifests/thinkfl-operator.yaml and the bytes of manifests/crd.yaml."""
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(profile_values(), name=RELEASE, namespace=NAMESPACE)
        crds = chart.crds
    documents = sorted(_documents(manifests), key=lambda doc: _order(doc[0]))  # stable sort
    text = HEADER + "---\n" + NAMESPACE_DOC + "".join(
        "---\n" + _managed_by_kubectl(doc) for _, doc in documents)
    if len(crds) != 1:
        raise SystemExit(f"expected one CRD in {CHART / 'crds'}, found {len(crds)}")
    return text, crds[0]["data"].encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when stale")
    args = parser.parse_args(argv)
    text, crd = render()
    wanted = {OUT: text.encode("utf-8"), CRD_OUT: crd}
    stale = [path for path, data in wanted.items()
             if not path.is_file() or path.read_bytes() != data]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale; run: python scripts/render_manifests.py",
                  file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(wanted[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
