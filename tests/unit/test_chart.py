"""The Helm chart, the plain manifests, the example incidents and the image, checked offline.

The chart is rendered and linted by the real Helm library (``helm-python-sdk`` bundles Helm v4's
Go SDK; no binary, no cluster), with its values checked against ``values.schema.json``; every
rendered object is validated against the Kubernetes OpenAPI schemas in strict mode (unknown
fields fail) by ``kubernetes-validate``, for every Kubernetes minor it ships (1.25 to 1.37). The
one exception is the ServiceMonitor: a prometheus-operator CRD type, which kubernetes-validate has
no schema for (a test proves it), so it is checked against a hand-written excerpt of the
``monitoring.coreos.com/v1`` schema instead. The example incidents are validated with jsonschema
against the CRD's ``openAPIV3Schema`` (``x-kubernetes-*`` keys removed) and parsed by the
operator's own spec parser (which mirrors the CEL rules).
"""

from __future__ import annotations

import base64
import json
import os
import posixpath
import re
import tomllib
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
from kubernetes_validate.utils import all_versions
from packaging.version import Version

from tests.modules import from_file
from thinkfl_operator.config.settings import Settings
from thinkfl_operator.incident.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "thinkfl-operator"
CRD_SOURCE = ROOT / "crds" / "failureincidents.yaml"
MANIFESTS = ROOT / "manifests"
EXAMPLES = sorted((MANIFESTS / "examples").glob("*.yaml"))
RELEASE, NAMESPACE = "thinkfl-operator", "thinkfl"
RBAC_NAME = f"{RELEASE}-{NAMESPACE}"  # ClusterRole, Roles and bindings: fullname-namespace
# Every Kubernetes version kubernetes-validate ships schemas for (1.25.0 ... 1.37.0).
KUBE_VERSIONS = tuple(sorted(set(all_versions()), key=Version))
# Objects of CRD types (not Kubernetes' own API): kubernetes-validate has no schema for them, so
# they are checked against SERVICE_MONITOR_SCHEMA below instead.
FOREIGN_TYPES = {("monitoring.coreos.com/v1", "ServiceMonitor")}
CLUSTER_KINDS = {"ClusterRole", "ClusterRoleBinding", "Namespace", "CustomResourceDefinition"}
PROFILES = ["defaults"] + sorted(p.name.removesuffix("-values.yaml")
                                 for p in (CHART / "ci").glob("*-values.yaml"))
# Values unlike every default and unlike one another (a swapped wire shows), with numbers that
# Helm prints as 1e+06 unless they go through `int`; rendered like a profile.
DISTINCT = {
    "engine": "thinkfl", "concurrency": 63, "watchNamespaces": ["team-a", "team-b"],
    "topology": {"readPods": True},
    "budgets": {"deadlineSeconds": 1234567, "retries": 99, "retryDelaySeconds": 2.5},
    "traces": {"backend": "tempo", "url": "http://tempo.observability:3200", "api": "v3",
               "searchLimit": 9999, "timeoutSeconds": 7.5},
    "prometheus": {"url": "http://prometheus:9090", "catalog": {"cpu": "rate(x{pod=~\"{pods}\"}[1m])"},
                   "timeoutSeconds": 3, "spanMetrics": "on"},
    "llm": {"requestTimeoutSeconds": 45, "conversation": {
        "thinkSteps": 3, "rethinkSteps": 0, "finalSteps": 5, "maxTokens": 1000000,
        "deadlineSeconds": 2000000}},
    "logging": {"level": "DEBUG", "format": "console"},
    "alerts": {"serviceLabels": ["svc", "app"], "namespace": "team-b", "engine": "heuristic",
               "namespaceLabel": "kubernetes_namespace"},
    "logs": {"enabled": False, "podLogs": True, "historyMinutes": 45.5, "maxLines": 1234567,
             "loki": {"url": "http://loki-gateway.monitoring", "tenant": "team-b", "labels": {
                 "namespace": "k8s_namespace_name", "pod": "k8s_pod_name",
                 "service": ["k8s_deployment_name"]}}},
}
# pods/log without Loki and without topology.readPods, the whole cluster watched.
POD_LOGS = {"logs": {"podLogs": True}}
# HTTPS and mutual TLS on the webhook, the client certificate alone authenticating.
WEBHOOK_MTLS = {"alerts": {"tls": {"secretName": "thinkfl-webhook-tls", "requireToken": False,
                                   "clientCA": {"secretName": "alertmanager-ca", "key": "bundle.pem"}}},
                "serviceMonitor": {"enabled": True, "tlsConfig": {"serverName": "thinkfl-operator.thinkfl.svc"}}}
# vLLM in the chart with every default (the gpu-vllm profile overrides some).
VLLM_DEFAULTS = {"vllm": {"enabled": True}}
EXTRA_PROFILES: dict[str, dict[str, Any]] = {"distinct": DISTINCT, "pod-logs": POD_LOGS,
                                             "webhook-mtls": WEBHOOK_MTLS, "vllm-defaults": VLLM_DEFAULTS}
# Each value the operator's environment carries as is → the Settings field it becomes.
VALUE_SETTINGS = {
    "watchNamespaces": "operator.namespaces",
    "concurrency": "operator.concurrency",
    "topology.readPods": "operator.pod_nodes_from_api",
    "budgets.deadlineSeconds": "operator.deadline_s",
    "budgets.retries": "operator.retries",
    "budgets.retryDelaySeconds": "operator.retry_delay_s",
    "traces.backend": "traces.backend",
    "traces.url": "traces.url",
    "traces.api": "traces.api",
    "traces.searchLimit": "traces.search_limit",
    "traces.timeoutSeconds": "traces.timeout_s",
    "prometheus.url": "prometheus.url",
    "prometheus.catalog": "prometheus.catalog",
    "prometheus.timeoutSeconds": "prometheus.timeout_s",
    "prometheus.spanMetrics": "prometheus.span_metrics",
    "llm.requestTimeoutSeconds": "llm.request_timeout_s",
    "llm.conversation.thinkSteps": "llm.think_steps",
    "llm.conversation.rethinkSteps": "llm.rethink_steps",
    "llm.conversation.finalSteps": "llm.final_steps",
    "llm.conversation.maxTokens": "llm.max_tokens",
    "llm.conversation.deadlineSeconds": "llm.deadline_s",
    "logging.level": "log_level",
    "logging.format": "log_format",
    "alerts.serviceLabels": "alerts.service_labels",
    "alerts.engine": "alerts.engine",
    "alerts.namespaceLabel": "alerts.namespace_label",
    "alerts.tls.requireToken": "alerts.require_token",
    "logs.enabled": "logs.enabled",
    "logs.loki.url": "logs.loki_url",
    "logs.loki.tenant": "logs.loki_tenant",
    "logs.loki.labels.namespace": "logs.namespace_label",
    "logs.loki.labels.pod": "logs.pod_label",
    "logs.loki.labels.service": "logs.service_labels",
    "logs.podLogs": "logs.pod_logs",
    "logs.historyMinutes": "logs.history_minutes",
    "logs.maxLines": "logs.max_lines",
}
# RBAC, after kopf's docs/deployment-rbac.yaml. Framework: what kopf 1.45 itself calls -- CRDs
# listed and watched (resource observation), namespaces listed and watched only when given
# namespaces are watched (namespace observer), Events POSTed. The operator runs kopf standalone:
# no peering. Application: what the operator does with its own resource -- list, watch and patch
# (progress annotations), create (the Alertmanager webhook), and the status patched; the
# diagnosis records' ConfigMaps created, read and patched; pods listed
# for their nodes (topology.readPods) or for their logs, read through pods/log (logs.podLogs).
FRAMEWORK_CLUSTER_RULES = {("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"}}
FRAMEWORK_NAMESPACE_RULES = {("", "namespaces"): {"list", "watch"}}  # namespaced installs only
FRAMEWORK_NAMESPACED_RULES = {("", "events"): {"create"}}
APPLICATION_RULES = {("thinkfl.dev", "failureincidents"): {"list", "watch", "patch", "create"},
                     ("thinkfl.dev", "failureincidents/status"): {"patch"},
                     ("", "configmaps"): {"create", "get", "patch"}}  # the diagnosis records
POD_RULES = {("", "pods"): {"list"}}  # topology.readPods or logs.podLogs
LOG_RULES = {("", "pods/log"): {"get"}}  # logs.podLogs only
NAMESPACED_RULES = FRAMEWORK_NAMESPACED_RULES | APPLICATION_RULES
HEADINGS = {"Framework": FRAMEWORK_CLUSTER_RULES | FRAMEWORK_NAMESPACE_RULES
            | FRAMEWORK_NAMESPACED_RULES, "Application": APPLICATION_RULES | POD_RULES | LOG_RULES}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind",
               "impersonate", "*"}
# An excerpt of prometheus-operator's ServiceMonitor (monitoring.coreos.com/v1) CRD schema: the
# fields the chart writes, with their types and formats; unknown fields fail.
_DURATION = {"type": "string",
             "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
                        r"(([0-9]+)s)?(([0-9]+)ms)?)$"}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
SERVICE_MONITOR_SCHEMA = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name", "namespace"], "properties": {
            "name": {"type": "string"}, "namespace": {"type": "string"}, "labels": _LABELS}},
        "spec": {"type": "object", "required": ["selector", "endpoints"],
                 "additionalProperties": False, "properties": {
            "namespaceSelector": {"type": "object", "additionalProperties": False, "properties": {
                "any": {"type": "boolean"},
                "matchNames": {"type": "array", "items": {"type": "string"}}}},
            "selector": {"type": "object", "additionalProperties": False, "properties": {
                "matchLabels": _LABELS, "matchExpressions": {"type": "array"}}},
            "endpoints": {"type": "array", "minItems": 1, "items": {
                "type": "object", "additionalProperties": False, "properties": {
                    "port": {"type": "string"}, "path": {"type": "string"},
                    "scheme": {"enum": ["http", "https"]}, "interval": _DURATION,
                    "scrapeTimeout": _DURATION}}}}}}}
_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


# helpers -----------------------------------------------------------------------------------

def _script(name: str) -> ModuleType:
    """A module of scripts/ (not a package), imported from its file."""
    return from_file(ROOT / "scripts" / f"{name}.py")


@cache
def _chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def _values(profile: str) -> dict[str, Any]:
    """The user-supplied values of a profile, parsed as `helm -f` parses them."""
    if profile == "defaults":
        return {}
    if profile in EXTRA_PROFILES:
        return json.loads(json.dumps(EXTRA_PROFILES[profile]))  # a copy
    return helm.values_from_yaml((CHART / "ci" / f"{profile}-values.yaml").read_text("utf-8"))


@cache
def _render(profile: str) -> dict[str, str]:
    return _chart().render(_values(profile), name=RELEASE, namespace=NAMESPACE)


def _parse(rendered: dict[str, str]) -> list[dict[str, Any]]:
    objects = []
    for path, text in rendered.items():
        if path.endswith(".yaml"):
            objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def _objects(profile: str) -> list[dict[str, Any]]:
    return _parse(_render(profile))


@cache
def _objects_with_crds(profile: str) -> list[dict[str, Any]]:
    """The profile's objects as on a cluster serving monitoring.coreos.com/v1 (the offline render
    has no cluster capabilities; ``serviceMonitor.requireCRD=false`` stands in for them)."""
    values = _values(profile)
    values["serviceMonitor"] = {**values.get("serviceMonitor", {}), "requireCRD": False}
    return _parse(_chart().render(values, name=RELEASE, namespace=NAMESPACE))


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


def _at(tree: Any, dotted: str) -> Any:
    """The value at a dotted path of nested dicts (values) or models (Settings)."""
    for key in dotted.split("."):
        tree = tree[key] if isinstance(tree, dict) else getattr(tree, key)
    return tree


def _strip_x_kubernetes(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_x_kubernetes(v) for k, v in node.items()
                if not k.startswith("x-kubernetes-")}
    if isinstance(node, list):
        return [_strip_x_kubernetes(v) for v in node]
    return node


def _dockerfile() -> list[str]:
    """The Dockerfile's instructions, one per item (continuation lines joined, comments out)."""
    instructions, pending = [], ""
    for raw in (ROOT / "Dockerfile").read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        instructions.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends in a continuation line"
    return instructions


def _stages() -> list[list[str]]:
    """The instructions of each build stage, its FROM first."""
    stages: list[list[str]] = []
    for line in _dockerfile():
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def _image_uid() -> int:
    users = [line.split()[1] for line in _stages()[-1] if line.startswith("USER ")]
    return int(users[-1].split(":")[0])


def _copied_sources(stage: list[str]) -> list[str]:
    """The build-context paths the stage's COPY/ADD instructions take (not --from= copies)."""
    sources = []
    for line in stage:
        instruction, _, rest = line.partition(" ")
        if instruction.upper() not in ("COPY", "ADD"):
            continue
        if rest.lstrip().startswith("["):
            words = json.loads(rest)
        else:
            words = rest.split()
        if any(w.startswith("--from=") for w in words):
            continue
        paths = [w for w in words if not w.startswith("--")]
        sources += [posixpath.normpath(s.lstrip("/")) for s in paths[:-1]]
    return sources


def _build_inputs() -> set[str]:
    """The files and folders pyproject.toml's build reads besides itself: the readme, license
    files, the package folders (setuptools' packages.find)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    project, setuptools = pyproject["project"], pyproject.get("tool", {}).get("setuptools", {})
    inputs = {"pyproject.toml"}
    readme = project.get("readme")
    if readme:
        inputs.add(readme if isinstance(readme, str) else readme["file"])
    license_ = project.get("license")
    if isinstance(license_, dict) and "file" in license_:
        inputs.add(license_["file"])
    for pattern in project.get("license-files", []):
        inputs |= {str(p.relative_to(ROOT)) for p in ROOT.glob(pattern)}
    inputs |= set(setuptools.get("packages", {}).get("find", {}).get("where", []))
    return inputs


def _dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, regex) of each .dockerignore line, with Docker's matching: `**` spans folders,
    `*` and `?` stay within one; a leading `/` and `./` are dropped."""
    rules = []
    for raw in (ROOT / ".dockerignore").read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = posixpath.normpath(line.removeprefix("!").strip().lstrip("/"))
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i:end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negated, re.compile(f"^{regex}$")))
    return rules


def _docker_ignored(path: str) -> bool:
    """Whether the build context leaves the path out: the last rule matching the path or one of
    its parent folders decides (Docker's patternmatcher)."""
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for negated, regex in _dockerignore_rules():
        if any(regex.match(candidate) for candidate in candidates):
            ignored = not negated
    return ignored


def _namespaced_rules(profile: str) -> dict[tuple[str, str], set[str]]:
    """The namespaced rules the profile grants: pods listed only with topology.readPods or
    logs.podLogs, their logs read only with logs.podLogs."""
    merged = _merged(profile)
    logs = merged["logs"]["podLogs"]
    pods = POD_RULES if merged["topology"]["readPods"] or logs else {}
    return NAMESPACED_RULES | pods | (LOG_RULES if logs else {})


def _rules(objects: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] in ("ClusterRole", "Role"):
            for rule in obj["rules"]:
                yield obj, rule


def _granted(rules: list[dict[str, Any]], group: str, resource: str) -> set[str]:
    return {verb for rule in rules if group in rule["apiGroups"] and resource in rule["resources"]
            for verb in rule["verbs"]}


def _headed_rules(profile: str) -> list[tuple[str | None, dict[str, Any]]]:
    """(heading, rule) of every rule of the rendered Roles and ClusterRoles, the heading being
    the last `# Framework:` or `# Application:` comment above the rule (kopf's convention: a
    heading covers the rules below it until the next one)."""
    headed = []
    for document in _SEPARATOR.split(_render(profile)["thinkfl-operator/templates/rbac.yaml"]):
        obj = yaml.safe_load(document)
        if not obj or obj["kind"] not in ("ClusterRole", "Role"):
            continue
        heading, headings = None, []
        for line in document.splitlines():
            match = re.match(r"^\s*# (Framework|Application): \S", line)
            if match:
                heading = match.group(1)
            elif re.match(r"^\s*- apiGroups:", line):
                headings.append(heading)
        assert len(headings) == len(obj["rules"]), document
        headed += list(zip(headings, obj["rules"], strict=True))
    return headed


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
                {"vllm": {"gpu": {"count": 0}}}, {"watchNamespaces": ["Not_A_Namespace"]},
                {"traces": {"api": "v2"}}, {"llm": {"conversation": {"thinkSteps": 0}}},
                {"llm": {"conversation": {"rethinkSteps": -1}}},
                {"llm": {"conversation": {"maxTokens": 8}}},
                {"llm": {"conversation": {"deadlineSeconds": 0}}},
                {"llm": {"deadlineSeconds": 90}}, {"vllm": {"command": []}}):
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


def test_every_shipped_kubernetes_version_is_validated() -> None:
    minors = [Version(v).minor for v in KUBE_VERSIONS]
    assert {Version(v).major for v in KUBE_VERSIONS} == {1}
    assert minors == list(range(25, minors[-1] + 1)) and minors[-1] >= 37, KUBE_VERSIONS


_LOAD_SCHEMA = kubernetes_validate.utils.schema_contents


@cache
def _schema_file(filename: str, desired_version: str) -> Any:
    return _LOAD_SCHEMA(filename, desired_version)


@pytest.fixture
def cached_kubernetes_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    """kubernetes-validate parses its 1.8 MB definitions file on every call; with 13 versions
    that is most of the time. Parse each file once (the schemas are only read)."""
    monkeypatch.setattr(kubernetes_validate.utils, "schema_contents", _schema_file)


@pytest.mark.usefixtures("cached_kubernetes_schemas")
@pytest.mark.parametrize("profile", [*PROFILES, "distinct"])
def test_objects_are_valid_kubernetes_strictly_in_every_version(profile: str) -> None:
    for obj in _objects(profile):
        if (obj["apiVersion"], obj["kind"]) in FOREIGN_TYPES:
            # A CRD type kubernetes-validate cannot know: proven here, then checked by hand.
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(obj, KUBE_VERSIONS[-1], strict=True)
            jsonschema.validate(obj, SERVICE_MONITOR_SCHEMA)
            continue
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_service_monitors_are_validated_too() -> None:
    """Profiles with ServiceMonitors exist (so the by-hand check above runs), and that check
    catches a malformed one."""
    monitors = [o for p in PROFILES for o in _objects_with_crds(p) if o["kind"] == "ServiceMonitor"]
    assert {o["metadata"]["name"] for o in monitors} == {RELEASE, f"{RELEASE}-vllm"}
    for monitor in monitors:
        jsonschema.validate(monitor, SERVICE_MONITOR_SCHEMA)
    bad = json.loads(json.dumps(monitors[0]))
    bad["spec"]["endpoints"][0]["interval"] = "30 seconds"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SERVICE_MONITOR_SCHEMA)
    bad["spec"]["endpoints"][0] = {"port": "http", "scrape_timeout": "10s"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SERVICE_MONITOR_SCHEMA)


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


def test_service_monitors_wait_for_the_prometheus_operator_crds() -> None:
    """Asked for, but the cluster (here: the offline render) serves no monitoring.coreos.com/v1:
    nothing that would fail the install."""
    for profile in ("tempo", "gpu-vllm"):
        assert _merged(profile)["serviceMonitor"]["requireCRD"] is True
        assert not [o for o in _objects(profile) if o["kind"] == "ServiceMonitor"]
        assert [o for o in _objects_with_crds(profile) if o["kind"] == "ServiceMonitor"]


@pytest.mark.parametrize("profile", PROFILES)
def test_services_and_monitors_select_what_exists(profile: str) -> None:
    objects = _objects_with_crds(profile)
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
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["THINKFL_OPERATOR__HTTP_PORT"], env["THINKFL_OPERATOR__HEALTH_PORT"]) == ("8080", "8081")
    # Liveness: kopf's endpoint on the health port. Readiness: the webhook's /healthz on the http
    # port, so the Service gets an endpoint only once the webhook listens.
    probe = container["livenessProbe"]["httpGet"]
    assert (probe["path"], probe["port"]) == ("/healthz", "health")
    probe = container["readinessProbe"]["httpGet"]
    assert (probe["path"], probe["port"]) == ("/healthz", "http")
    [tmp] = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    [volume] = [v for v in pod["volumes"] if v["name"] == tmp["name"]]
    assert "emptyDir" in volume
    assert container["resources"]["limits"]["memory"]  # a limit in every profile


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


@pytest.mark.parametrize("profile", PROFILES)
def test_policy_every_container_has_limits_and_every_pod_a_network_policy(profile: str) -> None:
    """The chart's own policy check (kube-score and kube-linter are Go binaries, on neither PyPI
    nor npm): no container without a memory (or GPU) limit; with networkPolicy.enabled, every pod
    selected by a NetworkPolicy of its namespace that limits its ingress."""
    objects = _objects(profile)
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    enabled = _values(profile).get("networkPolicy", {}).get("enabled", True)
    for workload in (o for o in objects if o["kind"] == "Deployment"):
        pod = workload["spec"]["template"]
        for container in pod["spec"]["containers"]:
            limits = container.get("resources", {}).get("limits", {})
            assert "memory" in limits or any(k.endswith("/gpu") for k in limits), (
                workload["metadata"]["name"], container["name"])
        covering = [p for p in policies if p["metadata"]["namespace"] == workload["metadata"]["namespace"]
                    and _selects(p["spec"]["podSelector"], pod["metadata"]["labels"])]
        assert bool(covering) is enabled, workload["metadata"]["name"]
        for policy in covering:
            assert policy["spec"]["policyTypes"] == ["Ingress"]
            assert all(rule.get("from") for rule in policy["spec"]["ingress"])  # never "from anyone"


@pytest.mark.parametrize("profile", [*PROFILES, *EXTRA_PROFILES])
def test_policy_every_container_runs_unprivileged_on_a_read_only_root(profile: str) -> None:
    """The chart's own pod-security check, on every container of every workload: a non-root user
    and group given explicitly (an image without USER would run as root), a group owning the
    volumes, RuntimeDefault seccomp, a read-only root filesystem, no privilege escalation, every
    capability dropped and none added."""
    workloads = [o for o in _objects(profile) if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet")]
    assert workloads
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        pod_security = pod.get("securityContext", {})
        assert isinstance(pod_security.get("fsGroup"), int) and pod_security["fsGroup"] > 0
        for container in pod["containers"] + pod.get("initContainers", []):
            where = (profile, workload["metadata"]["name"], container["name"])
            security = container.get("securityContext", {})
            effective = {**pod_security, **security}
            assert effective.get("runAsNonRoot") is True, where
            for key in ("runAsUser", "runAsGroup"):
                assert isinstance(effective.get(key), int) and effective[key] > 0, (where, key)
            assert effective.get("seccompProfile") == {"type": "RuntimeDefault"}, where
            assert security.get("readOnlyRootFilesystem") is True, where
            assert security.get("allowPrivilegeEscalation") is False, where
            assert security.get("privileged", False) is False, where
            assert security.get("capabilities") == {"drop": ["ALL"]}, where  # and nothing added


#: Where vLLM 0.11 and the libraries it loads write, by the variable that moves it (vLLM's
#: ``envs.py``: VLLM_CACHE_ROOT and VLLM_CONFIG_ROOT default under XDG_CACHE_HOME and
#: XDG_CONFIG_HOME, VLLM_RPC_BASE_PATH under tempfile's TMPDIR; Hugging Face HF_HOME; PyTorch
#: TORCHINDUCTOR_CACHE_DIR; Triton TRITON_CACHE_DIR and TRITON_HOME; outlines OUTLINES_CACHE_DIR;
#: CUDA's JIT CUDA_CACHE_PATH; numba NUMBA_CACHE_DIR; FlashInfer's JIT and anything else under HOME).
VLLM_WRITE_ENV = ("HOME", "TMPDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "HF_HOME", "VLLM_CACHE_ROOT",
                  "TRITON_CACHE_DIR", "TRITON_HOME", "TORCHINDUCTOR_CACHE_DIR", "OUTLINES_CACHE_DIR",
                  "CUDA_CACHE_PATH", "NUMBA_CACHE_DIR")


@pytest.mark.parametrize("profile", ["gpu-vllm", "vllm-defaults"])
def test_vllm_writes_only_to_mounted_volumes(profile: str) -> None:
    """With a read-only root filesystem, every place vLLM writes is on a writable volume:
    /tmp, the home directory, /dev/shm and the model volume; the compile caches on the model
    volume (kept across restarts), the rest on size-limited emptyDirs."""
    deployment = _find(_objects(profile), "Deployment", f"{RELEASE}-vllm")
    pod = deployment["spec"]["template"]["spec"]
    container = _container(deployment)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]
                if not m.get("readOnly")}
    assert {"/tmp", "/dev/shm", "/data"} <= set(writable)
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    for name in VLLM_WRITE_ENV:
        path = env.get(name, "")
        assert posixpath.isabs(path), name
        assert any(path == m or path.startswith(m.rstrip("/") + "/") for m in writable), (name, path)
    assert env["HOME"] in writable and env["TMPDIR"] == "/tmp"
    for name in ("VLLM_CACHE_ROOT", "TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR"):
        assert env[name].startswith("/data/"), name
    for path in (env["HOME"], "/tmp"):
        assert writable[path]["emptyDir"]["sizeLimit"], path
    assert env["USER"]  # getpass.getuser() without a passwd entry for the uid


def test_webhook_tls_mounts_its_secrets_and_probes_over_https() -> None:
    plain = _operator("defaults")
    assert not {n for n in _env(plain) if "TLS" in n}
    assert "scheme" not in _container(plain)["readinessProbe"]["httpGet"]
    deployment = _operator("webhook-mtls")
    container, pod = _container(deployment), deployment["spec"]["template"]["spec"]
    env = {name: e.get("value") for name, e in _env(deployment).items()}
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    files = {}
    for name in ("THINKFL_ALERTS__TLS_CERT_FILE", "THINKFL_ALERTS__TLS_KEY_FILE",
                 "THINKFL_ALERTS__TLS_CLIENT_CA_FILE"):
        folder, file = posixpath.split(env[name])
        assert mounts[folder]["readOnly"] is True
        secret = volumes[mounts[folder]["name"]]["secret"]
        files[name] = (secret["secretName"], {i["path"]: i["key"] for i in secret["items"]}[file])
    assert files == {"THINKFL_ALERTS__TLS_CERT_FILE": ("thinkfl-webhook-tls", "tls.crt"),
                     "THINKFL_ALERTS__TLS_KEY_FILE": ("thinkfl-webhook-tls", "tls.key"),
                     "THINKFL_ALERTS__TLS_CLIENT_CA_FILE": ("alertmanager-ca", "bundle.pem")}
    assert env["THINKFL_ALERTS__REQUIRE_TOKEN"] == "false"
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    [endpoint] = _find(_objects_with_crds("webhook-mtls"), "ServiceMonitor", RELEASE)["spec"]["endpoints"]
    assert (endpoint["scheme"], endpoint["tlsConfig"]) == ("https", {"serverName": "thinkfl-operator.thinkfl.svc"})
    notes = _render("webhook-mtls")["thinkfl-operator/templates/NOTES.txt"]
    assert "https://thinkfl-operator.thinkfl:8080/alerts" in notes
    receiver = yaml.safe_load(notes[notes.index("  receivers:"):notes.index("\n\n", notes.index("  receivers:"))])
    http_config = receiver["receivers"][0]["webhook_configs"][0]["http_config"]
    assert "authorization" not in http_config  # requireToken=false: the certificate alone
    assert set(http_config["tls_config"]) == {"ca_file", "cert_file", "key_file"}


def test_webhook_tls_values_that_cannot_work_fail_the_render() -> None:
    for values, why in (({"clientCA": {"secretName": "ca"}}, "needs alerts.tls.secretName"),
                        ({"requireToken": False}, "anyone could post")):
        with pytest.raises(helm.HelmRenderError, match=why):
            _chart().render({"alerts": {"tls": values}}, name=RELEASE, namespace=NAMESPACE)


def test_only_the_operator_may_reach_vllm_and_only_the_configured_peers_the_webhook() -> None:
    objects = _objects("gpu-vllm")
    vllm = _find(objects, "NetworkPolicy", f"{RELEASE}-vllm")
    [rule] = vllm["spec"]["ingress"]
    [peer] = rule["from"]
    operator_labels = _operator("gpu-vllm")["spec"]["template"]["metadata"]["labels"]
    assert _selects(peer["podSelector"], operator_labels) and "namespaceSelector" not in peer
    webhook = _find(objects, "NetworkPolicy", RELEASE)
    assert webhook["spec"]["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}], "from": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]}]


def test_the_webhook_token_comes_from_a_generated_secret_unless_one_is_brought() -> None:
    objects = _objects("defaults")
    secret = _find(objects, "Secret", f"{RELEASE}-webhook")
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert len(token) == 40 and token.isalnum()
    ref = _env(_operator("defaults"))["THINKFL_ALERTS__TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": f"{RELEASE}-webhook", "key": "token", "optional": True}
    notes = _render("defaults")["thinkfl-operator/templates/NOTES.txt"]
    assert "credentials_file: /etc/alertmanager/secrets/thinkfl-webhook/token" in notes
    brought = _chart().render({"alerts": {"token": {"create": False, "secretName": "mine", "secretKey": "t"}}},
                              name=RELEASE, namespace=NAMESPACE)
    assert not [o for o in _parse(brought) if o["kind"] == "Secret"]
    assert _env(_find(_parse(brought), "Deployment", RELEASE))["THINKFL_ALERTS__TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "mine", "key": "t", "optional": True}}
    assert "create secret generic mine --from-literal=t=" in brought["thinkfl-operator/templates/NOTES.txt"]


@pytest.mark.parametrize("profile", [*PROFILES, "distinct", "webhook-mtls"])
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
    for value, setting in VALUE_SETTINGS.items():
        assert _at(settings, setting) == _at(merged, value), (value, setting)
    assert settings.engine == (merged["engine"] or
                               ("auto" if merged["vllm"]["enabled"] else "heuristic"))
    watched = merged["watchNamespaces"]
    assert settings.alerts.namespace == (merged["alerts"]["namespace"]
                                         or (watched[0] if watched else NAMESPACE))


def _settings_field(setting: str) -> Any:
    section, _, name = setting.rpartition(".")
    model = Settings.model_fields[section].annotation if section else Settings
    return model.model_fields[name]  # type: ignore[union-attr]


@pytest.mark.parametrize("value", sorted(VALUE_SETTINGS))
def test_values_schema_enforces_the_settings_ranges(value: str) -> None:
    """The schema refuses at install time what the Settings would refuse at start: the same
    bounds, and an enum of exactly the alternatives of the Settings' pattern."""
    node = json.loads((CHART / "values.schema.json").read_text("utf-8"))
    for key in value.split("."):
        node = node["properties"][key]
    field = _settings_field(VALUE_SETTINGS[value])
    bounds, pattern = {}, None
    for meta in field.metadata:
        for attribute, keyword in (("ge", "minimum"), ("gt", "exclusiveMinimum"),
                                   ("le", "maximum"), ("lt", "exclusiveMaximum")):
            if getattr(meta, attribute, None) is not None:
                bounds[keyword] = getattr(meta, attribute)
        pattern = getattr(meta, "pattern", None) or pattern
    assert {k: node[k] for k in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
            if k in node} == bounds
    if pattern:
        alternatives = re.fullmatch(r"\^\((.*)\)\$", pattern)
        assert alternatives is not None, pattern
        assert set(node["enum"]) == set(alternatives.group(1).split("|"))
    expected_type = {int: "integer", float: "number", str: "string", list: "array",
                     dict: "object", bool: "boolean"}[getattr(field.annotation, "__origin__", field.annotation)]
    assert node.get("type", "string" if "enum" in node else None) == expected_type


def test_external_llm_key_comes_from_a_secret() -> None:
    env = _env(_operator("external-llm"))
    assert env["THINKFL_LLM__BASE_URL"]["value"] == "https://llm.example.com/v1"
    assert env["THINKFL_LLM__API_KEY"] == {"name": "THINKFL_LLM__API_KEY", "valueFrom": {
        "secretKeyRef": {"name": "thinkfl-llm", "key": "api-key"}}}
    assert env["THINKFL_ENGINE"]["value"] == "auto"
    assert "THINKFL_LLM__API_KEY" not in _env(_operator("defaults"))  # no Secret needed


# the Alertmanager webhook ------------------------------------------------------------------

@pytest.mark.parametrize("profile", [*PROFILES, "distinct"])
def test_webhook_creates_incidents_where_it_may_and_they_are_watched(profile: str) -> None:
    objects = _objects(profile)
    namespace = _env(_operator(profile))["THINKFL_ALERTS__NAMESPACE"]["value"]
    watched = _merged(profile)["watchNamespaces"]
    if watched:
        assert namespace in watched
        [rules] = [o["rules"] for o in objects if o["kind"] == "Role"
                   and o["metadata"]["namespace"] == namespace]
    else:
        rules = _find(objects, "ClusterRole", RBAC_NAME)["rules"]
    assert "create" in _granted(rules, "thinkfl.dev", "failureincidents")


def test_webhook_namespace_defaults_to_the_first_watched_namespace() -> None:
    env = _env(_operator("tempo"))
    assert _merged("tempo")["alerts"]["namespace"] == ""
    assert env["THINKFL_ALERTS__NAMESPACE"]["value"] == "online-boutique"
    assert _env(_operator("defaults"))["THINKFL_ALERTS__NAMESPACE"]["value"] == NAMESPACE


def test_webhook_namespace_outside_the_watched_ones_fails_the_render() -> None:
    values = _values("tempo")
    values["alerts"] = {"namespace": "train-ticket"}  # watched: fine
    rendered = _chart().render(values, name=RELEASE, namespace=NAMESPACE)
    env = _env(_find(_parse(rendered), "Deployment", RELEASE))
    assert env["THINKFL_ALERTS__NAMESPACE"]["value"] == "train-ticket"
    for bad in (NAMESPACE, "default"):
        values["alerts"] = {"namespace": bad}
        with pytest.raises(helm.HelmRenderError,
                           match=f'alerts.namespace "{bad}" is not among watchNamespaces'):
            _chart().render(values, name=RELEASE, namespace=NAMESPACE)


@pytest.mark.parametrize("release", [RELEASE, "prod"])
def test_notes_print_the_webhook_and_metrics_urls_of_the_service(release: str) -> None:
    rendered = _chart().render({"service": {"port": 9090}}, name=release, namespace=NAMESPACE)
    [service] = [o for o in _parse(rendered) if o["kind"] == "Service"]
    assert service["metadata"]["name"] == ("thinkfl-operator" if release == RELEASE
                                           else f"{release}-thinkfl-operator")
    url = f"http://{service['metadata']['name']}.{NAMESPACE}:{service['spec']['ports'][0]['port']}"
    notes = rendered["thinkfl-operator/templates/NOTES.txt"]
    assert f"{url}/alerts" in notes and f"{url}/metrics" in notes
    assert f"- url: {url}/alerts" in notes  # the Alertmanager receiver
    # traces.url is empty by default: the operator cannot diagnose without a trace backend.
    assert "incidents need a trace backend URL" in notes and "backend error" not in notes
    assert "trace backend URL" not in _render("no-gpu")["thinkfl-operator/templates/NOTES.txt"]


def test_values_document_the_webhook_url_with_the_service_name() -> None:
    text = (CHART / "values.yaml").read_text("utf-8")
    assert "`http://<fullname>.<namespace>:8080/alerts`" in text
    assert "<release>." not in text


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
    # The seed README's command line: python -m vllm.entrypoints.openai.api_server --model ...
    # --served-model-name ThinkFL --tensor-parallel-size=1 --port 8000, explicit whatever the
    # image's entrypoint; without --trust-remote-code (Llama is built into vLLM).
    assert container["command"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    args = container["args"]
    assert args[:4] == ["--model=Zhang-Lingzhe/ThinkFL-Llama3.2-3B", "--served-model-name=ThinkFL",
                        "--tensor-parallel-size=1", "--port=8000"]
    assert "--trust-remote-code" not in args
    for arg in ("--max-model-len=16384", "--gpu-memory-utilization=0.85",
                "--enable-prefix-caching"):
        assert arg in args
    assert container["ports"][0]["containerPort"] == 8000
    resources = container["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] == 1
    assert resources["limits"]["memory"] == "24Gi"  # user resources merged with the GPU
    startup = container["startupProbe"]
    assert startup["httpGet"] == {"path": "/health", "port": "http"}
    assert startup["failureThreshold"] * startup["periodSeconds"] >= 1800  # download + load
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
    # Optional: without the Secret the container still starts (no CreateContainerConfigError).
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "hf-token", "key": "token", "optional": True}
    service = _find(objects, "Service", f"{RELEASE}-vllm")
    assert service["spec"]["ports"][0]["port"] == 8000
    operator_env = _env(_operator("gpu-vllm"))
    assert operator_env["THINKFL_LLM__MODEL"]["value"] == "ThinkFL"
    assert operator_env["THINKFL_ENGINE"]["value"] == "auto"
    notes = _render("gpu-vllm")["thinkfl-operator/templates/NOTES.txt"]
    assert "kubectl --namespace thinkfl create secret generic hf-token --from-literal=token=" in notes
    # vLLM reports nothing outside, keeps its compile cache on the model volume, and answers
    # only the operator's key (the same generated Secret on both sides).
    assert (env["VLLM_NO_USAGE_STATS"]["value"], env["DO_NOT_TRACK"]["value"]) == ("1", "1")
    assert env["VLLM_CACHE_ROOT"]["value"].startswith(mounts_at(container, "/data"))
    key = {"secretKeyRef": {"name": f"{RELEASE}-llm", "key": "api-key"}}
    assert env["VLLM_API_KEY"]["valueFrom"] == operator_env["THINKFL_LLM__API_KEY"]["valueFrom"] == key
    secret = _find(objects, "Secret", f"{RELEASE}-llm")
    assert len(base64.b64decode(secret["data"]["api-key"])) == 48


def mounts_at(container: dict[str, Any], path: str) -> str:
    [mount] = [m["mountPath"] for m in container["volumeMounts"] if m["mountPath"] == path]
    return mount


def test_vllm_flags_are_ones_vllm_0_11_parses() -> None:
    """Every flag the chart passes is an argument of vLLM 0.11.0's OpenAI server (its
    ``vllm/engine/arg_utils.py`` and ``entrypoints/openai/cli_args.py``)."""
    known = {"--model", "--served-model-name", "--trust-remote-code", "--revision", "--tensor-parallel-size",
             "--port", "--max-model-len", "--gpu-memory-utilization", "--enable-prefix-caching", "--api-key"}
    values = {"vllm": {"enabled": True, "trustRemoteCode": True, "revision": "a1b2c3d"}}
    args = _container(_find(_parse(_chart().render(values, name=RELEASE, namespace=NAMESPACE)),
                            "Deployment", f"{RELEASE}-vllm"))["args"]
    assert "--revision=a1b2c3d" in args and "--trust-remote-code" in args
    assert {a.split("=")[0] for a in args} <= known


def test_a_context_longer_than_the_model_s_fails_the_render() -> None:
    values = {"vllm": {"enabled": True, "model": "Zhang-Lingzhe/ThinkFL-Llama3-8B", "maxModelLen": 16384}}
    with pytest.raises(helm.HelmRenderError, match="exceeds the 8192-token context"):
        _chart().render(values, name=RELEASE, namespace=NAMESPACE)
    values["vllm"]["maxModelLen"] = 8192
    _chart().render(values, name=RELEASE, namespace=NAMESPACE)


def test_an_external_key_secret_serves_both_sides_and_none_is_generated() -> None:
    values = {"vllm": {"enabled": True}, "llm": {"apiKey": {"secretName": "mine"}}}
    objects = _parse(_chart().render(values, name=RELEASE, namespace=NAMESPACE))
    assert not [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"].endswith("-llm")]
    vllm_env = {e["name"]: e for e in _container(_find(objects, "Deployment", f"{RELEASE}-vllm"))["env"]}
    assert vllm_env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "mine"


def test_vllm_startup_patience_is_a_value() -> None:
    values = {"vllm": {"enabled": True, "startupProbe": {"failureThreshold": 360}}}
    rendered = _chart().render(values, name=RELEASE, namespace=NAMESPACE)
    deployment = _find(_parse(rendered), "Deployment", f"{RELEASE}-vllm")
    startup = _container(deployment)["startupProbe"]
    assert (startup["failureThreshold"], startup["periodSeconds"]) == (360, 10)  # merged
    notes = rendered["thinkfl-operator/templates/NOTES.txt"]
    assert "waits up to 3600 seconds" in notes
    assert "hf-token --from-literal=token=" in notes  # how to add a token later
    assert "HF_TOKEN" not in json.dumps(deployment)  # no Secret named, none referenced


def test_vllm_without_model_cache_uses_an_empty_dir() -> None:
    objects = _parse(_chart().render(
        {"vllm": {"enabled": True, "modelCache": {"enabled": False}}}, name=RELEASE,
        namespace=NAMESPACE))
    assert not any(o["kind"] == "PersistentVolumeClaim" for o in objects)
    pod = _find(objects, "Deployment", f"{RELEASE}-vllm")["spec"]["template"]["spec"]
    assert {"name": "model-cache", "emptyDir": {}} in pod["volumes"]
    assert "runtimeClassName" not in pod


# RBAC ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", PROFILES)
def test_rbac_is_least_privilege(profile: str) -> None:
    objects = _objects(profile)
    known = HEADINGS["Framework"] | HEADINGS["Application"]
    for _, rule in _rules(objects):
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key], rule
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert set(rule["verbs"]) <= known.get((group, resource), set()), rule
                written = set(rule["verbs"]) & WRITE_VERBS
                assert written <= _namespaced_rules(profile).get((group, resource), set()), rule


@pytest.mark.parametrize("profile", PROFILES)
def test_rbac_rules_sit_under_their_framework_or_application_heading(profile: str) -> None:
    headed = _headed_rules(profile)
    assert headed
    for heading, rule in headed:
        assert heading in HEADINGS, rule  # every rule has a heading
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert (group, resource) in HEADINGS[heading], (heading, rule)


@pytest.mark.parametrize("profile", [*PROFILES, "distinct", "pod-logs"])
def test_rbac_scope_follows_the_watched_namespaces(profile: str) -> None:
    objects = _objects(profile)
    watched = _merged(profile)["watchNamespaces"]
    cluster = _find(objects, "ClusterRole", RBAC_NAME)["rules"]
    roles = {o["metadata"]["namespace"]: o for o in objects if o["kind"] == "Role"}
    bindings = [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    for (group, resource), verbs in FRAMEWORK_CLUSTER_RULES.items():
        assert _granted(cluster, group, resource) == verbs
    if not watched:
        assert roles == {}
        for (group, resource), verbs in FRAMEWORK_NAMESPACE_RULES.items():
            assert _granted(cluster, group, resource) == set()
        for (group, resource), verbs in _namespaced_rules(profile).items():
            assert _granted(cluster, group, resource) == verbs
    else:
        assert sorted(roles) == sorted(watched)
        for (group, resource), verbs in FRAMEWORK_NAMESPACE_RULES.items():
            assert _granted(cluster, group, resource) == verbs
        for role in roles.values():
            assert role["metadata"]["name"] == RBAC_NAME
            for (group, resource), verbs in _namespaced_rules(profile).items():
                assert _granted(cluster, group, resource) == set()
                assert _granted(role["rules"], group, resource) == verbs
    assert len(bindings) == 1 + len(watched)
    for binding in bindings:
        assert binding["metadata"]["name"] == binding["roleRef"]["name"] == RBAC_NAME
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]
        assert binding["roleRef"]["kind"] == (
            "Role" if binding["kind"] == "RoleBinding" else "ClusterRole")


@pytest.mark.parametrize("profile", [*PROFILES, "distinct", "pod-logs"])
def test_rbac_grants_each_call_once(profile: str) -> None:
    """topology.readPods and logs.podLogs both need pods listed: one rule grants it."""
    for obj in _objects(profile):
        if obj["kind"] in ("ClusterRole", "Role"):
            grants = [(group, resource, verb) for rule in obj["rules"]
                      for group in rule["apiGroups"] for resource in rule["resources"]
                      for verb in rule["verbs"]]
            assert len(grants) == len(set(grants)), obj["rules"]


def test_pod_logs_grant_reading_pods_and_their_logs_only_when_asked() -> None:
    def granted(values: dict[str, Any]) -> set[str]:
        objects = _parse(_chart().render(values, name=RELEASE, namespace=NAMESPACE))
        rules = [r for o in objects if o["kind"] in ("ClusterRole", "Role") for r in o["rules"]]
        return {f"{verb} {resource}" for resource in ("pods", "pods/log")
                for verb in _granted(rules, "", resource)}
    assert granted({}) == set()
    assert granted({"topology": {"readPods": True}}) == {"list pods"}
    assert granted(POD_LOGS) == {"list pods", "get pods/log"}
    assert granted({"logs": {"podLogs": True}, "watchNamespaces": ["shop"]}) == {
        "list pods", "get pods/log"}
    notes = _render("pod-logs")["thinkfl-operator/templates/NOTES.txt"]
    assert "Log evidence:         the pods' logs through the Kubernetes API" in notes


def test_notes_say_where_log_evidence_comes_from() -> None:
    def line(profile: str) -> str:
        notes = _render(profile)["thinkfl-operator/templates/NOTES.txt"]
        [found] = [n for n in notes.splitlines() if n.startswith("Log evidence:")]
        return found
    assert "none. Set logs.loki.url" in line("defaults")
    assert line("tempo").endswith(f"Grafana Loki at {_merged('tempo')['logs']['loki']['url']}.")
    assert "off (logs.enabled=false)" in line("distinct")


def test_rbac_names_of_same_named_releases_in_two_namespaces_differ() -> None:
    """The ClusterRole and ClusterRoleBinding are cluster-wide and a watched namespace may hold
    the Roles of two releases: their names carry the release namespace, within the limits."""
    def names(values: dict[str, Any], namespace: str) -> set[tuple[str, str | None, str]]:
        objects = _parse(_chart().render(values, name=RELEASE, namespace=namespace))
        return {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
                for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding",
                                                  "Role", "RoleBinding")}
    shared = {"watchNamespaces": ["shop"]}
    first, second = names(shared, "team-a"), names(shared, "team-b")
    assert len(first) == len(second) == 4 and not first & second
    assert {name for _, _, name in first} == {f"{RELEASE}-team-a"}
    longest = names({"fullnameOverride": "f" * 80, "watchNamespaces": ["shop"]}, "n" * 63)
    for kind, _, name in longest:
        assert len(name) <= 253 and _DNS_SUBDOMAIN.match(name), (kind, name)
        assert name == "f" * 57 + "-" + "n" * 63


# the CRD, the manifests, the examples ------------------------------------------------------

@pytest.mark.usefixtures("cached_kubernetes_schemas")
def test_chart_crd_is_the_crd_byte_for_byte() -> None:
    source = CRD_SOURCE.read_bytes()
    assert (CHART / "crds" / "failureincidents.yaml").read_bytes() == source
    assert (MANIFESTS / "crd.yaml").read_bytes() == source
    [crd] = _chart().crds
    assert crd["data"].encode("utf-8") == source
    assert _script("sync_crd").main(["--check"]) == 0
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(yaml.safe_load(source), version, strict=True)


@pytest.mark.usefixtures("cached_kubernetes_schemas")
def test_manifests_are_a_fresh_render_of_the_no_gpu_profile() -> None:
    render_manifests = _script("render_manifests")
    text, crd = render_manifests.render()
    assert (MANIFESTS / "thinkfl-operator.yaml").read_text("utf-8") == text, (
        "manifests/ is stale: run python scripts/render_manifests.py")
    assert crd == CRD_SOURCE.read_bytes()
    assert render_manifests.main(["--check"]) == 0
    objects = [o for o in yaml.safe_load_all(text) if o]
    assert [o["kind"] for o in objects][:3] == ["Namespace", "NetworkPolicy", "ServiceAccount"]
    chart_objects = _objects("no-gpu")
    assert len(objects) == 1 + len(chart_objects)
    for obj in objects:
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
        assert obj["metadata"].get("namespace", NAMESPACE) == NAMESPACE


def test_manifests_are_labeled_as_applied_with_kubectl() -> None:
    text = (MANIFESTS / "thinkfl-operator.yaml").read_text("utf-8")
    objects = [o for o in yaml.safe_load_all(text) if o]
    labeled = [o["metadata"]["labels"] for o in objects]
    labeled += [o["spec"]["template"]["metadata"]["labels"] for o in objects
                if o["kind"] == "Deployment"]
    assert all(labels["app.kubernetes.io/managed-by"] == "kubectl" for labels in labeled)
    assert "managed-by: Helm" not in text
    # Only that label differs from what Helm renders.
    helm_text = "".join(_render("no-gpu").values())
    assert helm_text.count("managed-by: Helm") == text.count("managed-by: kubectl") - 1


def test_manifests_readme_says_how_to_build_and_use_the_image() -> None:
    readme = (MANIFESTS / "README.md").read_text("utf-8")
    for step in ("docker build -t REGISTRY/thinkfl-operator:0.1.0 .",
                 "docker push REGISTRY/thinkfl-operator:0.1.0",
                 "--set image.repository=REGISTRY/thinkfl-operator",
                 "image: \"thinkfl-operator:0.1.0\""):
        assert step in readme, step
    deployment = _find([o for o in yaml.safe_load_all(
        (MANIFESTS / "thinkfl-operator.yaml").read_text("utf-8")) if o], "Deployment", RELEASE)
    assert _container(deployment)["image"] == "thinkfl-operator:0.1.0"  # what the README edits


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
    # A wrapped comment line starting with `--` (e.g. `# --set ...`) would open a new doc.
    assert [n for n in lines if n.lstrip().startswith("# --")
            and not n.lstrip().startswith("# -- ")] == []
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


def test_every_settings_value_names_its_variable() -> None:
    rows = {key: text for key, _, text in _script("values_doc").rows(
        (CHART / "values.yaml").read_text("utf-8"))}
    for value, setting in VALUE_SETTINGS.items():
        variable = "THINKFL_" + setting.upper().replace(".", "__")
        assert variable in rows[value], (value, variable)


# the image -----------------------------------------------------------------------------------

def test_dockerfile_is_multi_stage_pinned_non_root_and_runs_the_operator() -> None:
    stages = _stages()
    assert len(stages) >= 2  # build stage(s), then a runtime stage without the build tools
    for stage in stages:
        base = stage[0].split()[1]
        name, _, digest = base.partition("@")
        tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest) or re.fullmatch(
            r"\d+\.\d+\.\d+([-.][-.\w]+)?", tag), f"base image {base} is not pinned to a patch " \
                                                 "version or a digest"
    build_name = stages[0][0].split()[-1]
    assert stages[0][0].split()[-2].upper() == "AS"
    final = stages[-1]
    assert any(line.startswith(f"COPY --from={build_name} ") for line in final)
    users = [line for line in final if line.startswith("USER ")]
    assert users and re.fullmatch(r"USER \d+(:\d+)?", users[-1])
    assert _image_uid() != 0
    assert [line for line in final if line.startswith("ENTRYPOINT")] == ['ENTRYPOINT ["thinkfl"]']
    assert [line for line in final if line.startswith("CMD")] == ['CMD ["run"]']


def test_dockerfile_copies_everything_the_build_reads() -> None:
    inputs = _build_inputs()
    assert {"pyproject.toml", "README.md", "operator"} <= inputs
    copied = _copied_sources(_stages()[0])
    for path in inputs:
        assert any(source in (".", path) or path.startswith(source + "/")
                   for source in copied), f"{path} is not copied into the build stage"


def test_dockerignore_keeps_out_the_clutter_and_in_what_the_build_reads() -> None:
    for needed in _build_inputs():
        assert not _docker_ignored(needed), needed
    package = ROOT / "operator" / "thinkfl_operator"
    sources = [p.relative_to(ROOT).as_posix() for p in package.rglob("*") if p.is_file()
               and "__pycache__" not in p.parts]
    assert len(sources) > 20 and "operator/thinkfl_operator/py.typed" in sources
    assert [path for path in sources if _docker_ignored(path)] == []
    for clutter in (".git/HEAD", ".git/objects/ab/cdef", ".mypy_cache/3.11/cache.db",
                    ".pytest_cache/v/cache/nodeids", ".ruff_cache/0.17.6/x", ".hypothesis/x",
                    ".import_linter_cache/x", "operator/thinkfl_operator/__pycache__/a.pyc",
                    "operator/thinkfl_operator/x.pyc", "operator/thinkfl_operator.egg-info/PKG-INFO",
                    "tests/unit/test_chart.py", ".venv/bin/python", "venv/bin/python",
                    "build/lib/x.py", "dist/x.whl"):
        assert _docker_ignored(clutter), clutter


def test_log_values_default_to_the_settings_defaults() -> None:
    """The chart always renders the logs.* variables, so its defaults are the operator's
    defaults: a chart value left at its default must not silently retune the engine."""
    defaults = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))["logs"]
    logs = Settings.model_fields["logs"].default_factory()  # type: ignore[misc]
    assert defaults["enabled"] is logs.enabled and defaults["podLogs"] is logs.pod_logs
    assert defaults["historyMinutes"] == logs.history_minutes
    assert defaults["maxLines"] == logs.max_lines
    assert defaults["loki"]["url"] == logs.loki_url
    assert defaults["loki"]["labels"] == {"namespace": logs.namespace_label, "pod": logs.pod_label,
                                          "service": logs.service_labels}
