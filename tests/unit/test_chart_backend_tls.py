"""The chart's certificate settings for the backends (``tls``): a CA bundle from a ConfigMap or a
Secret is mounted into the operator pod and named in ``THINKFL_TLS__CA_BUNDLE``;
``insecureSkipVerify`` is an explicit opt-in; the defaults add neither. Checked on the rendered
Deployment, and through the Settings the rendered environment gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import pytest
import yaml

from thinkfl_operator.config.settings import Settings

CHART = Path(__file__).resolve().parents[2] / "helm" / "thinkfl-operator"


def operator_pod(values: dict[str, Any]) -> dict[str, Any]:
    rendered = helm.Chart.load(CHART).render(values, name="thinkfl-operator", namespace="thinkfl")
    for path, text in rendered.items():
        for doc in yaml.safe_load_all(text) if path.endswith(".yaml") else ():
            if doc and doc["kind"] == "Deployment" and "vllm" not in doc["metadata"]["name"]:
                pod: dict[str, Any] = doc["spec"]["template"]["spec"]
                return pod
    raise AssertionError("no operator Deployment rendered")


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["containers"][0]["env"]}


def mounted_file(pod: dict[str, Any], path: str) -> dict[str, Any]:
    """The volume item a file path in the container comes from."""
    container = pod["containers"][0]
    for mount in container.get("volumeMounts", []):
        if path.startswith(mount["mountPath"] + "/"):
            volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
            name = path[len(mount["mountPath"]) + 1:]
            source = volume.get("configMap") or volume.get("secret") or {}
            item = next(i for i in source["items"] if i["path"] == name)
            return {"volume": volume, "key": item["key"]}
    raise AssertionError(f"{path} is not mounted")


def test_by_default_no_bundle_and_certificates_checked() -> None:
    pod = operator_pod({})
    env = env_of(pod)
    assert "THINKFL_TLS__CA_BUNDLE" not in env and "THINKFL_TLS__INSECURE_SKIP_VERIFY" not in env
    assert all(v["name"] != "backend-ca" for v in pod["volumes"])


@pytest.mark.parametrize(("source", "field"), [("configMap", "configMap"), ("secret", "secret")])
def test_a_ca_bundle_is_mounted_and_named(source: str, field: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pod = operator_pod({"tls": {"caBundle": {source: "corp-ca", "key": "bundle.pem"}}})
    path = env_of(pod)["THINKFL_TLS__CA_BUNDLE"]
    found = mounted_file(pod, path)
    origin = found["volume"][field]
    assert origin.get("name", origin.get("secretName")) == "corp-ca"
    assert found["key"] == "bundle.pem"
    monkeypatch.setenv("THINKFL_TLS__CA_BUNDLE", path)
    assert Settings().tls.ca_bundle == path and not Settings().tls.insecure_skip_verify


def test_insecure_skip_verify_is_an_explicit_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_of(operator_pod({"tls": {"insecureSkipVerify": True}}))
    monkeypatch.setenv("THINKFL_TLS__INSECURE_SKIP_VERIFY", env["THINKFL_TLS__INSECURE_SKIP_VERIFY"])
    assert Settings().tls.insecure_skip_verify is True


def test_the_schema_refuses_a_malformed_tls_section() -> None:
    schema = yaml.safe_load((CHART / "values.schema.json").read_text("utf-8"))
    defaults = yaml.safe_load((CHART / "values.yaml").read_text("utf-8"))
    jsonschema.validate(defaults, schema)
    for wrong in ({"insecureSkipVerify": "yes"}, {"caBundle": {"configMap": "Not_A_Name"}},
                  {"caBundle": {"file": "/etc/ca.pem"}}):
        values = {**defaults, "tls": {**defaults["tls"], **wrong}}
        if "caBundle" in wrong:
            values["tls"]["caBundle"] = {**defaults["tls"]["caBundle"], **wrong["caBundle"]}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(values, schema)
