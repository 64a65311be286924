"""The Helm chart, the plain manifests, the example incidents and the image, checked offline.

The chart is rendered and linted by the real Helm library (``helm-python-sdk`` bundles Helm v4's
Go SDK; no binary, no cluster), with its values checked against ``values.schema.json``; every
rendered object is validated against the Kubernetes OpenAPI schemas in strict mode (unknown
fields fail) by ``kubernetes-validate``. The example incidents are validated with jsonschema
against the CRD's ``openAPIV3Schema`` (``x-kubernetes-*`` keys removed) and parsed by the
operator's own spec parser (which mirrors the CEL rules).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from thinkfl_operator.incident_spec import parse_spec
from thinkfl_operator.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "thinkfl-operator"
CRD_SOURCE = ROOT / "crds" / "failureincidents.yaml"
MANIFESTS = ROOT / "manifests"
EXAMPLES = sorted((MANIFESTS / "examples").glob("*.yaml"))
RELEASE, NAMESPACE = "thinkfl-operator", "thinkfl"
KUBE_VERSIONS = ("1.25.0", "1.31.0")  # the chart's kubeVersion floor, and a recent one
# Kinds outside Kubernetes' own API (no schema in kubernetes-validate): checked by hand below.
FOREIGN_KINDS = {"ServiceMonitor"}
CLUSTER_KINDS = {"ClusterRole", "ClusterRoleBinding", "Namespace", "CustomResourceDefinition"}
PROFILES = ["defaults"] + sorted(p.name.removesuffix("-values.yaml")
                                 for p in (CHART / "ci").glob("*-values.yaml"))
# kopf 1.45: Events are POSTed (create); its own resource is listed, watched and patched
# (progress annotations), its status patched; CRDs are listed and watched (resource observation);
# namespaces are listed and watched only when given namespaces are watched (namespace observer).
NAMESPACED_RULES = {("", "events"): {"create"},
                    ("thinkfl.dev", "failureincidents"): {"list", "watch", "patch", "create"},
                    ("thinkfl.dev", "failureincidents/status"): {"patch"}}
# The topology comes from Prometheus (kube_pod_info), so pods and nodes are not granted.
CLUSTER_RULES = {("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"}}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind",
               "impersonate", "*"}


# helpers -----------------------------------------------------------------------------------

def _script(name: str) -> ModuleType:
    """A module of scripts/ (not a package), imported from its file."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def _chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def _values(profile: str) -> dict[str, Any]:
    """The user-supplied values of a profile, parsed as `helm -f` parses them."""
    if profile == "defaults":
        return {}
    return helm.values_from_yaml((CHART / "ci" / f"{profile}-values.yaml").read_text("utf-8"))


@cache
def _render(profile: str) -> dict[str, str]:
    return _chart().render(_values(profile), name=RELEASE, namespace=NAMESPACE)


def _objects(profile: str) -> list[dict[str, Any]]:
    objects = []
    for path, text in _render(profile).items():
        if path.endswith(".yaml"):
            objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def _merged(profile: str) -> dict[str, Any]:
    return _chart().merge_values(_values(profile))


def _find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def _operator(profile: str) -> dict[str, Any]:
    return _find(_objects(profile), "Deployment", RELEASE)


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _env(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in _container(deployment).get("env", [])}


def _strip_x_kubernetes(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_x_kubernetes(v) for k, v in node.items()
                if not k.startswith("x-kubernetes-")}
    if isinstance(node, list):
        return [_strip_x_kubernetes(v) for v in node]
    return node


def _dockerfile() -> list[str]:
    return [line.strip() for line in (ROOT / "Dockerfile").read_text("utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _image_uid() -> int:
    users = [line.split()[1] for line in _dockerfile() if line.startswith("USER ")]
    return int(users[-1].split(":")[0])


def _rules(objects: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] in ("ClusterRole", "Role"):
            for rule in obj["rules"]:
                yield obj, rule


def _granted(rules: list[dict[str, Any]], group: str, resource: str) -> set[str]:
    return {verb for rule in rules if group in rule["apiGroups"] and resource in rule["resources"]
            for verb in rule["verbs"]}


# rendering, schema, lint -------------------------------------------------------------------

def test_every_ci_profile_is_tested() -> None:
    assert set(PROFILES) >= {"defaults", "gpu-vllm", "external-llm", "no-gpu", "tempo"}


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_meets_the_values_schema_and_renders(profile: str) -> None:
    _chart().validate_schema(_values(profile))
    kinds = sorted(o["kind"] for o in _objects(profile))
    assert {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
            "Service"} <= set(kinds)
    notes = _render(profile)["thinkfl-operator/templates/NOTES.txt"]
    for what_next in ("kubectl apply", "kubectl get fi", "kubectl describe fi"):
        assert what_next in notes


def test_values_schema_refuses_bad_values() -> None:
    for bad in ({"engine": "gpt"}, {"traces": {"backend": "zipkin"}}, {"replicas": 2},
                {"vllm": {"gpu": {"count": 0}}}, {"watchNamespaces": ["Not_A_Namespace"]}):
        with pytest.raises(helm.HelmValuesError):
            _chart().validate_schema(bad)


def test_tensor_parallel_size_cannot_exceed_gpus() -> None:
    with pytest.raises(helm.HelmRenderError, match="tensorParallelSize"):
        _chart().render({"vllm": {"enabled": True, "tensorParallelSize": 2}}, name=RELEASE)


@pytest.mark.parametrize("profile", PROFILES)
def test_chart_lints_strictly(profile: str) -> None:
    report = helm.lint(CHART, _values(profile), strict=True, namespace=NAMESPACE,
                       kube_version="v1.31.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []  # 1 = info (icon)


@pytest.mark.parametrize("profile", PROFILES)
def test_objects_are_valid_kubernetes_strictly(profile: str) -> None:
    for obj in _objects(profile):
        if obj["kind"] in FOREIGN_KINDS:
            continue
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("profile", PROFILES)
def test_objects_carry_the_standard_labels_and_namespace(profile: str) -> None:
    for obj in _objects(profile):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "thinkfl-operator"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/version"] == _chart().metadata["appVersion"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == f"thinkfl-operator-{_chart().version}"
        assert labels["app.kubernetes.io/component"] in ("operator", "vllm")
        if obj["kind"] in CLUSTER_KINDS:
            assert "namespace" not in obj["metadata"]
        elif obj["kind"] not in ("Role", "RoleBinding"):
            assert obj["metadata"]["namespace"] == NAMESPACE


@pytest.mark.parametrize("profile", PROFILES)
def test_services_and_monitors_select_what_exists(profile: str) -> None:
    objects = _objects(profile)
    pods = [o["spec"]["template"] for o in objects if o["kind"] == "Deployment"]
    services = [o for o in objects if o["kind"] == "Service"]
    for service in services:
        selector = service["spec"]["selector"]
        [pod] = [p for p in pods if selector.items() <= p["metadata"]["labels"].items()]
        port_names = {p["name"] for c in pod["spec"]["containers"] for p in c["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    for monitor in (o for o in objects if o["kind"] == "ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        match = monitor["spec"]["selector"]["matchLabels"]
        [service] = [s for s in services if match.items() <= s["metadata"]["labels"].items()]
        ports = {p["name"] for p in service["spec"]["ports"]}
        assert all(e["port"] in ports and e["path"].startswith("/")
                   for e in monitor["spec"]["endpoints"])
    merged = _merged(profile)
    monitors = {o["metadata"]["name"] for o in objects if o["kind"] == "ServiceMonitor"}
    assert (RELEASE in monitors) == merged["serviceMonitor"]["enabled"]
    assert (f"{RELEASE}-vllm" in monitors) == (merged["vllm"]["enabled"]
                                               and merged["vllm"]["serviceMonitor"]["enabled"])


# the operator Deployment -------------------------------------------------------------------

@pytest.mark.parametrize("profile", PROFILES)
def test_operator_pod_is_locked_down(profile: str) -> None:
    deployment = _operator(profile)
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == RELEASE
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == _image_uid()  # the Dockerfile's USER
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = _container(deployment)
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert "command" not in container and "args" not in container  # ENTRYPOINT thinkfl, CMD run
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                                  {"name": "health", "containerPort": 8081, "protocol": "TCP"}]
    probe = container["livenessProbe"]["httpGet"]
    assert (probe["path"], probe["port"]) == ("/healthz", "health")  # kopf's liveness endpoint
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["THINKFL_OPERATOR__HTTP_PORT"], env["THINKFL_OPERATOR__HEALTH_PORT"]) == ("8080", "8081")
    [tmp] = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    [volume] = [v for v in pod["volumes"] if v["name"] == tmp["name"]]
    assert "emptyDir" in volume
    if profile == "defaults":
        assert "resources" not in container  # no default resources


@pytest.mark.parametrize("profile", PROFILES)
def test_operator_env_is_read_by_the_settings(profile: str, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    env = _env(_operator(profile))
    assert env.pop("POD_ID")["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    for name in env:
        assert name.startswith("THINKFL_")
        section, _, field = name.removeprefix("THINKFL_").lower().partition("__")
        assert section in Settings.model_fields, name
        if field:
            nested = Settings.model_fields[section].annotation
            assert field in nested.model_fields, name  # type: ignore[union-attr]
    plain = {name: e["value"] for name, e in env.items() if "value" in e}
    for name in [n for n in os.environ if n.startswith("THINKFL_")]:
        monkeypatch.delenv(name)
    for name, value in plain.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    merged = _merged(profile)
    assert settings.traces.backend == merged["traces"]["backend"]
    assert settings.traces.url == merged["traces"]["url"]
    assert settings.prometheus.url == merged["prometheus"]["url"]
    assert settings.prometheus.catalog == merged["prometheus"]["catalog"]
    assert settings.operator.namespaces == merged["watchNamespaces"]
    assert settings.operator.concurrency == merged["concurrency"]
    assert settings.operator.deadline_s == merged["budgets"]["deadlineSeconds"]
    assert settings.llm.deadline_s == merged["llm"]["deadlineSeconds"]
    assert settings.engine == (merged["engine"] or
                               ("auto" if merged["vllm"]["enabled"] else "heuristic"))


def test_external_llm_key_comes_from_a_secret() -> None:
    env = _env(_operator("external-llm"))
    assert env["THINKFL_LLM__BASE_URL"]["value"] == "https://llm.example.com/v1"
    assert env["THINKFL_LLM__API_KEY"] == {"name": "THINKFL_LLM__API_KEY", "valueFrom": {
        "secretKeyRef": {"name": "thinkfl-llm", "key": "api-key"}}}
    assert env["THINKFL_ENGINE"]["value"] == "auto"
    assert "THINKFL_LLM__API_KEY" not in _env(_operator("defaults"))  # no Secret needed


# vLLM ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", PROFILES)
def test_vllm_objects_only_when_enabled(profile: str) -> None:
    enabled = _merged(profile)["vllm"]["enabled"]
    vllm = [o for o in _objects(profile) if o["metadata"]["labels"].get(
        "app.kubernetes.io/component") == "vllm"]
    assert bool(vllm) == enabled
    gpu_profiles = {p for p in PROFILES if _merged(p)["vllm"]["enabled"]}
    assert gpu_profiles == {"gpu-vllm"}
    base_url = _env(_operator(profile))["THINKFL_LLM__BASE_URL"]["value"]
    if enabled:
        assert base_url == f"http://{RELEASE}-vllm:8000/v1"
    else:
        assert "vllm" not in base_url
        assert not any("nvidia.com/gpu" in json.dumps(o) for o in _objects(profile))


def test_vllm_deployment_serves_thinkfl_on_a_gpu() -> None:
    objects = _objects("gpu-vllm")
    deployment = _find(objects, "Deployment", f"{RELEASE}-vllm")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    container = _container(deployment)
    assert container["image"].startswith("docker.io/vllm/vllm-openai:v")
    args = container["args"]
    for arg in ("--model=Zhang-Lingzhe/ThinkFL-Llama3.2-3B", "--served-model-name=ThinkFL",
                "--trust-remote-code", "--tensor-parallel-size=1", "--port=8000",
                "--max-model-len=16384", "--gpu-memory-utilization=0.85",
                "--enable-prefix-caching"):
        assert arg in args
    resources = container["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] == 1
    assert resources["limits"]["memory"] == "24Gi"  # user resources merged with the GPU
    startup = container["startupProbe"]
    assert startup["httpGet"] == {"path": "/health", "port": "http"}
    assert startup["failureThreshold"] * startup["periodSeconds"] >= 1200  # model loading
    assert pod["runtimeClassName"] == "nvidia"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert volumes[mounts["/dev/shm"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "4Gi"}
    claim = volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"]
    assert _find(objects, "PersistentVolumeClaim", claim)["spec"]["resources"] == {
        "requests": {"storage": "20Gi"}}
    env = {e["name"]: e for e in container["env"]}
    assert env["HF_HOME"]["value"] == "/data"
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "token"}
    service = _find(objects, "Service", f"{RELEASE}-vllm")
    assert service["spec"]["ports"][0]["port"] == 8000
    operator_env = _env(_operator("gpu-vllm"))
    assert operator_env["THINKFL_LLM__MODEL"]["value"] == "ThinkFL"
    assert operator_env["THINKFL_ENGINE"]["value"] == "auto"


def test_vllm_without_model_cache_uses_an_empty_dir() -> None:
    objects = [o for path, text in _chart().render(
        {"vllm": {"enabled": True, "modelCache": {"enabled": False}}}, name=RELEASE,
        namespace=NAMESPACE).items() if path.endswith(".yaml")
        for o in yaml.safe_load_all(text) if o]
    assert not any(o["kind"] == "PersistentVolumeClaim" for o in objects)
    pod = _find(objects, "Deployment", f"{RELEASE}-vllm")["spec"]["template"]["spec"]
    assert {"name": "model-cache", "emptyDir": {}} in pod["volumes"]
    assert "runtimeClassName" not in pod


# RBAC ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", PROFILES)
def test_rbac_is_least_privilege(profile: str) -> None:
    objects = _objects(profile)
    for _, rule in _rules(objects):
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key], rule
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        written = set(rule["verbs"]) & WRITE_VERBS
        if written:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    assert written <= NAMESPACED_RULES.get((group, resource), set()), rule
    all_rules = [rule for _, rule in _rules(objects)]
    for resource in ("pods", "nodes"):
        assert _granted(all_rules, "", resource) == set()
    assert not any(r for r in all_rules if {"secrets", "configmaps"} & set(r["resources"]))


@pytest.mark.parametrize("profile", PROFILES)
def test_rbac_scope_follows_the_watched_namespaces(profile: str) -> None:
    objects = _objects(profile)
    watched = _merged(profile)["watchNamespaces"]
    cluster = _find(objects, "ClusterRole", RELEASE)["rules"]
    roles = {o["metadata"]["namespace"]: o["rules"] for o in objects if o["kind"] == "Role"}
    bindings = [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    for (group, resource), verbs in CLUSTER_RULES.items():
        assert _granted(cluster, group, resource) == verbs
    if not watched:
        assert roles == {}
        assert _granted(cluster, "", "namespaces") == set()
        for (group, resource), verbs in NAMESPACED_RULES.items():
            assert _granted(cluster, group, resource) == verbs
    else:
        assert sorted(roles) == sorted(watched)
        assert _granted(cluster, "", "namespaces") == {"list", "watch"}
        for rules in roles.values():
            for (group, resource), verbs in NAMESPACED_RULES.items():
                assert _granted(cluster, group, resource) == set()
                assert _granted(rules, group, resource) == verbs
    assert len(bindings) == 1 + len(watched)
    for binding in bindings:
        assert binding["roleRef"]["name"] == RELEASE
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]
        if binding["kind"] == "RoleBinding":
            assert binding["roleRef"]["kind"] == "Role"


def test_rbac_rules_are_commented_framework_or_application() -> None:
    text = (CHART / "templates" / "rbac.yaml").read_text("utf-8")
    rules = re.findall(r"^\s*- apiGroups:", text, re.MULTILINE)
    comments = re.findall(r"^\s*# (Framework|Application): ", text, re.MULTILINE)
    assert len(rules) == len(comments) >= 4


# the CRD, the manifests, the examples ------------------------------------------------------

def test_chart_crd_is_the_crd_byte_for_byte() -> None:
    source = CRD_SOURCE.read_bytes()
    assert (CHART / "crds" / "failureincidents.yaml").read_bytes() == source
    assert (MANIFESTS / "crd.yaml").read_bytes() == source
    [crd] = _chart().crds
    assert crd["data"].encode("utf-8") == source
    assert _script("sync_crd").main(["--check"]) == 0
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(yaml.safe_load(source), version, strict=True)


def test_manifests_are_a_fresh_render_of_the_no_gpu_profile() -> None:
    render_manifests = _script("render_manifests")
    text, crd = render_manifests.render()
    assert (MANIFESTS / "thinkfl-operator.yaml").read_text("utf-8") == text, (
        "manifests/ is stale: run python scripts/render_manifests.py")
    assert crd == CRD_SOURCE.read_bytes()
    objects = [o for o in yaml.safe_load_all(text) if o]
    assert [o["kind"] for o in objects][:2] == ["Namespace", "ServiceAccount"]
    assert len(objects) == 1 + len(_objects("no-gpu"))
    for obj in objects:
        kubernetes_validate.validate(obj, KUBE_VERSIONS[-1], strict=True)
        assert obj["metadata"].get("namespace", NAMESPACE) == NAMESPACE


def test_example_incidents_fit_the_crd() -> None:
    crd = yaml.safe_load(CRD_SOURCE.read_text("utf-8"))
    [version] = crd["spec"]["versions"]
    schema = _strip_x_kubernetes(version["schema"]["openAPIV3Schema"])
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    kinds = set()
    assert len(EXAMPLES) >= 2
    for path in EXAMPLES:
        [incident] = [d for d in yaml.safe_load_all(path.read_text("utf-8")) if d]
        assert incident["apiVersion"] == f"{crd['spec']['group']}/{version['name']}"
        assert incident["kind"] == crd["spec"]["names"]["kind"]
        assert "namespace" not in incident["metadata"]
        errors = [e.message for e in validator.iter_errors(incident)]
        assert errors == [], f"{path.name}: {errors}"
        parse_spec(incident["spec"], "2026-11-24T10:41:00Z")  # the CEL rules, as the operator
        kinds.add("trace" if "traceID" in incident["spec"] else "service-time")
    assert kinds == {"trace", "service-time"}


def test_a_bad_example_would_be_caught() -> None:
    crd = yaml.safe_load(CRD_SOURCE.read_text("utf-8"))
    schema = _strip_x_kubernetes(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    bad = {"apiVersion": "thinkfl.dev/v1alpha1", "kind": "FailureIncident",
           "metadata": {"name": "x"}, "spec": {"traceID": "not-hex", "engine": "gpt"}}
    assert len(list(jsonschema.Draft7Validator(schema).iter_errors(bad))) == 2


# values documentation ------------------------------------------------------------------------

def test_every_value_is_documented() -> None:
    """helm-docs style: each value has a `# --` comment right above it, or above an enclosing key
    whose whole object is the value (a probe, a security context)."""
    lines = (CHART / "values.yaml").read_text("utf-8").splitlines()
    documented: list[tuple[int, bool]] = []  # (indent, has `# --`) of the enclosing keys
    undocumented = []
    for index, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z][\w.]*):(.*)$", line)
        if not match:
            continue
        indent = len(match.group(1))
        while documented and documented[-1][0] >= indent:
            documented.pop()
        above = index - 1
        while above >= 0 and lines[above].lstrip().startswith("#") and not lines[
                above].lstrip().startswith("# --"):
            above -= 1
        has_doc = above >= 0 and lines[above].lstrip().startswith("# --")
        following = next((n for n in lines[index + 1:] if n.strip()
                          and not n.lstrip().startswith("#")), "")
        is_leaf = match.group(3).strip() != "" or len(following) - len(following.lstrip()) <= indent
        if is_leaf and not has_doc and not any(doc for _, doc in documented):
            undocumented.append(match.group(2))
        documented.append((indent, has_doc))
    assert undocumented == []


# the image -----------------------------------------------------------------------------------

def test_dockerfile_is_pinned_non_root_and_runs_the_operator() -> None:
    lines = _dockerfile()
    bases = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert bases
    for base in bases:
        tag = base.partition(":")[2]
        assert re.fullmatch(r"\d+\.\d+(\.\d+)?[-\w.]*", tag), f"unpinned base image {base}"
        assert "latest" not in tag
    users = [line for line in lines if line.startswith("USER ")]
    assert users and re.fullmatch(r"USER \d+(:\d+)?", users[-1])
    assert _image_uid() != 0
    assert [line for line in lines if line.startswith("ENTRYPOINT")] == ['ENTRYPOINT ["thinkfl"]']
    assert [line for line in lines if line.startswith("CMD")] == ['CMD ["run"]']
