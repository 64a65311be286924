"""The operator's own metrics, read back from the exposition text, its OpenTelemetry spans, and\nthe SDK configured to export them (``observability.otel``)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import structlog.testing
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client.parser import text_string_to_metric_families

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.errors import UserInputError
from thinkfl_operator.core.models import Diagnosis, Incident, RootCause, Usage
from thinkfl_operator.demo.synthetic import generate
from thinkfl_operator.engines.diagnose import diagnose
from thinkfl_operator.evaluation.scores import accuracy_table
from thinkfl_operator.kube.metrics import OperatorMetrics
from thinkfl_operator.observability import otel
from thinkfl_operator.observability.tracing import span

Labels = frozenset[tuple[str, str]]


def _samples(metrics: OperatorMetrics) -> dict[tuple[str, Labels], float]:
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples}


def _value(metrics: OperatorMetrics, name: str, **labels: str) -> float:
    return _samples(metrics)[(name, frozenset(labels.items()))]


def _diagnosis(engine: str, notes: list[str] | None = None) -> Diagnosis:
    cause = RootCause(rank=1, node="node-1", service="cartservice", pod="cartservice-0",
                      reason="latency", score=90)
    usage = Usage(llm_calls=3, prompt_tokens=1200, completion_tokens=300, tool_calls=5)
    return Diagnosis(root_causes=[cause], engine=engine, usage=usage, notes=notes or [])


# metrics ---------------------------------------------------------------------------------------
def test_phase_gauge_follows_each_incident() -> None:
    metrics = OperatorMetrics()
    assert {_value(metrics, "thinkfl_incidents", phase=p)
            for p in ("Pending", "Diagnosing", "Diagnosed", "Failed")} == {0.0}
    metrics.set_phase(("ns", "a"), "Diagnosing")
    metrics.set_phase(("ns", "b"), "Diagnosing")
    metrics.set_phase(("ns", "a"), "Diagnosed")
    assert _value(metrics, "thinkfl_incidents", phase="Diagnosing") == 1
    assert _value(metrics, "thinkfl_incidents", phase="Diagnosed") == 1
    metrics.forget(("ns", "a"))
    assert _value(metrics, "thinkfl_incidents", phase="Diagnosed") == 0


def test_diagnoses_failures_and_backend_errors_are_counted() -> None:
    metrics = OperatorMetrics()
    metrics.observe_diagnosis(_diagnosis("thinkfl"), 12.0)
    metrics.observe_diagnosis(_diagnosis("heuristic", ["LLMFallback: timeout; deterministic"]), 0.3)
    metrics.observe_failure("NoEvidence")
    metrics.observe_backend_error("jaeger")
    metrics.observe_backend_error("jaeger")
    samples = _samples(metrics)
    assert samples[("thinkfl_diagnosis_seconds_count", frozenset({("engine", "thinkfl")}))] == 1
    assert samples[("thinkfl_diagnosis_seconds_sum", frozenset({("engine", "thinkfl")}))] == 12.0
    assert samples[("thinkfl_diagnosis_seconds_bucket",
                    frozenset({("engine", "heuristic"), ("le", "0.5")}))] == 1
    assert _value(metrics, "thinkfl_diagnoses_total", engine="thinkfl", outcome="diagnosed") == 1
    assert _value(metrics, "thinkfl_llm_calls_total", engine="thinkfl") == 3
    assert _value(metrics, "thinkfl_llm_tokens_total", engine="thinkfl", kind="prompt") == 1200
    assert _value(metrics, "thinkfl_llm_tokens_total", engine="thinkfl", kind="completion") == 300
    assert _value(metrics, "thinkfl_tool_calls_total", engine="heuristic") == 5
    assert _value(metrics, "thinkfl_fallbacks_total") == 1
    assert _value(metrics, "thinkfl_diagnosis_failures_total", reason="NoEvidence") == 1
    assert _value(metrics, "thinkfl_backend_errors_total", backend="jaeger") == 2


def test_registries_are_independent() -> None:
    first, second = OperatorMetrics(), OperatorMetrics()
    first.observe_backend_error("tempo")
    assert ("thinkfl_backend_errors_total", frozenset({("backend", "tempo")})) not in _samples(second)


def test_accuracy_table_by_hand() -> None:
    [row] = accuracy_table({"thinkfl": [1, 2, None, 1]})
    assert row == {"engine": "thinkfl", "count": 4, "r1": 0.5, "r3": 0.75, "r5": 0.75,
                   "mrr": pytest.approx((1 + 0.5 + 0 + 1) / 4)}
    assert accuracy_table({}) == []


def test_accuracy_gauges_keep_the_latest_grade_per_incident() -> None:
    metrics = OperatorMetrics()
    for name, rank in (("a", 1), ("b", 2), ("c", None), ("d", 4), ("d", 1)):  # d re-graded
        metrics.observe_grade(("ns", name), "thinkfl", rank)
    metrics.observe_grade(("ns", "e"), "heuristic", 3)
    assert _value(metrics, "thinkfl_confirmed_incidents", engine="thinkfl") == 4
    assert _value(metrics, "thinkfl_accuracy_recall", engine="thinkfl", k="1") == 0.5
    assert _value(metrics, "thinkfl_accuracy_recall", engine="thinkfl", k="3") == 0.75
    assert _value(metrics, "thinkfl_accuracy_mrr", engine="thinkfl") == pytest.approx(2.5 / 4)
    assert _value(metrics, "thinkfl_accuracy_recall", engine="heuristic", k="1") == 0
    assert _value(metrics, "thinkfl_accuracy_recall", engine="heuristic", k="3") == 1
    metrics.forget(("ns", "e"))
    assert ("thinkfl_confirmed_incidents", frozenset({("engine", "heuristic")})) not in _samples(metrics)


def test_a_rank_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="1-based"):
        OperatorMetrics().observe_grade(("ns", "a"), "thinkfl", 0)


# spans -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def provider() -> TracerProvider:
    """The SDK provider of this process (the global one can be set only once)."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    fresh = TracerProvider()
    trace.set_tracer_provider(fresh)
    return fresh


@pytest.fixture
def exporter(provider: TracerProvider) -> Iterator[InMemorySpanExporter]:
    exported = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exported)
    provider.add_span_processor(processor)
    yield exported
    # The provider has no remove, and a shut processor logs a warning for every later span (on
    # stderr, with the root logger's handler): the exporter is shut instead, and takes nothing.
    exported.shutdown()


def test_diagnose_span_has_the_tool_spans_as_children(exporter: InMemorySpanExporter) -> None:
    inc = generate(fault="network_delay", service="recommendationservice")
    result = diagnose(inc.store(), Incident(time_s=inc.time_s), "heuristic", Settings())
    spans = exporter.get_finished_spans()
    [root] = [s for s in spans if s.name == "thinkfl.diagnose"]
    tools = [s for s in spans if s.name == "thinkfl.tool"]
    assert root.attributes is not None and result.top is not None
    assert root.attributes["thinkfl.diagnose.engine_asked"] == "heuristic"
    assert root.attributes["thinkfl.diagnose.engine"] == result.engine == "heuristic"
    assert root.attributes["thinkfl.diagnose.top_cause"] == result.top.pod
    assert root.attributes["thinkfl.diagnose.root_causes"] == len(result.root_causes)
    assert root.attributes["thinkfl.diagnose.tool_calls"] == len(result.steps) == len(tools)
    assert root.attributes["thinkfl.diagnose.llm_calls"] == 0
    assert "thinkfl.diagnose.service" not in root.attributes  # unknown: left out
    assert all(t.parent is not None and t.parent.span_id == root.context.span_id for t in tools)
    assert [(t.attributes or {}).get("thinkfl.tool.name") for t in tools] == [s.tool for s in result.steps]
    last = tools[-1].attributes
    assert last is not None and last["thinkfl.tool.name"] == "print_results"
    assert last["thinkfl.tool.output_length"] == len("Results printed.")
    assert str(last["thinkfl.tool.arguments"]).startswith('{"root_causes":[{')


def test_a_failed_diagnosis_marks_its_span(exporter: InMemorySpanExporter) -> None:
    inc = generate(fault="network_delay", service="recommendationservice")
    with pytest.raises(UserInputError):
        diagnose(inc.store(), Incident(time_s=inc.time_s), "nonsense", Settings())
    [root] = exporter.get_finished_spans()
    assert root.status.status_code is StatusCode.ERROR
    assert [e.name for e in root.events] == ["exception"]


def test_span_drops_none_attributes(exporter: InMemorySpanExporter) -> None:
    with span("thinkfl.test", kept="x", dropped=None) as current:
        current.set(count=3, flag=False, ratio=0.5, missing=None)
    [finished] = exporter.get_finished_spans()
    assert dict(finished.attributes or {}) == {"thinkfl.test.kept": "x", "thinkfl.test.count": 3,
                                                "thinkfl.test.flag": False,
                                                "thinkfl.test.ratio": 0.5}


def test_the_diagnose_span_names_the_incidents_service_and_trace(exporter: InMemorySpanExporter) -> None:
    inc = generate(fault="network_delay", service="recommendationservice")
    diagnose(inc.store(), Incident(time_s=inc.time_s, service="frontend"), "heuristic", Settings())
    [root] = [s for s in exporter.get_finished_spans() if s.name == "thinkfl.diagnose"]
    assert (root.attributes or {})["thinkfl.diagnose.service"] == "frontend"
    assert root.status.status_code is not StatusCode.ERROR


# export: the SDK configured from the standard environment ---------------------------------------
ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                 "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_SDK_DISABLED")


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No OTEL_* variable of the outside world; the test sets its own."""
    for name in ENDPOINT_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _closed_port() -> int:
    """A port nothing listens on: nothing could be sent there."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_otlp_endpoint_gives_a_batch_processor_with_the_otlp_http_exporter(
        otel_env: pytest.MonkeyPatch) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    base = f"http://127.0.0.1:{_closed_port()}"
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base)
    assert otel.endpoint() == base
    processor = otel.exporting_processor()
    try:
        assert isinstance(processor, BatchSpanProcessor)
        assert isinstance(processor.span_exporter, OTLPSpanExporter)
        assert processor.span_exporter._endpoint == f"{base}/v1/traces"  # the SDK's own rule
    finally:
        processor.shutdown()  # no span was made: nothing is sent
    otel_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{base}/traces")
    assert otel.endpoint() == f"{base}/traces"  # the traces-only variable wins
    otel_env.setenv("OTEL_SDK_DISABLED", "true")
    assert otel.endpoint() is None and otel.configure_tracing() is None


@pytest.mark.parametrize(("env", "service"), [
    ({}, "thinkfl-operator"),
    ({"OTEL_SERVICE_NAME": "rca-prod"}, "rca-prod"),
    ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attributes,team=sre"}, "from-attributes"),
])
def test_the_exported_spans_name_the_service(otel_env: pytest.MonkeyPatch, env: dict[str, str],
                                             service: str) -> None:
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    for name, value in env.items():
        otel_env.setenv(name, value)
    built = otel.tracer_provider()
    try:
        assert built.resource.attributes["service.name"] == service
    finally:
        built.shutdown()


def test_without_an_endpoint_nothing_is_configured(otel_env: pytest.MonkeyPatch) -> None:
    before = trace.get_tracer_provider()
    assert otel.endpoint() is None and otel.configure_tracing() is None
    assert trace.get_tracer_provider() is before


def test_an_endpoint_without_the_extra_says_so_once_and_exports_nothing(
        otel_env: pytest.MonkeyPatch) -> None:
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    # The [otel] extra not installed: importing its exporter fails as it would.
    otel_env.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    before = trace.get_tracer_provider()
    with structlog.testing.capture_logs() as logs:
        assert otel.configure_tracing() is None
    assert trace.get_tracer_provider() is before
    [line] = logs
    assert line["log_level"] == "warning" and "thinkfl-operator[otel]" in line["event"]
    assert line["endpoint"].startswith("http://127.0.0.1:")


def test_configure_tracing_installs_the_exporting_provider_for_the_process(tmp_path: Path) -> None:
    """In a process of its own (the API keeps the first provider set): the SDK's provider with
    the OTLP/HTTP exporter becomes the process's, and its start is logged."""
    script = (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from thinkfl_operator.observability.otel import configure_tracing\n"
        "provider = configure_tracing()\n"
        "assert provider is not None and trace.get_tracer_provider() is provider\n"
        "assert isinstance(provider, TracerProvider)\n"
        "print('service', provider.resource.attributes['service.name'])\n"
        "provider.shutdown()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{_closed_port()}",
               OTEL_SERVICE_NAME="rca-test")
    done = subprocess.run([sys.executable, "-c", script], check=False, env=env, capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "service rca-test" in done.stdout
    assert "exporting spans over OTLP/HTTP" in done.stdout + done.stderr


def test_the_image_installs_the_otel_extra_with_the_sdk_and_the_otlp_exporter() -> None:
    root = Path(__file__).resolve().parents[2]
    extras = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["project"]["optional-dependencies"]
    names = {re.split(r"[<>=!~ \[]", requirement, maxsplit=1)[0] for requirement in extras["otel"]}
    assert names == {"opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"}
    installs = [line for line in (root / "Dockerfile").read_text("utf-8").splitlines()
                if line.startswith("RUN pip install")]
    assert installs and all('".[otel]"' in line for line in installs)

