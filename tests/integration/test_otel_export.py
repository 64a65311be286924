"""Spans leave the operator over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: the real
SDK and exporter (the ``[otel]`` extra, also a test dependency) post protobuf ``ExportTraceServiceRequest``s to a
receiver on 127.0.0.1 that decodes them with ``opentelemetry-proto``, as a collector would.

Each case runs in a process of its own, as a deployment does: the OpenTelemetry API keeps the
first provider a process sets, and the worker processes are forked from a server whose
environment is fixed when it starts.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.fakes.background import threaded_http


@dataclass
class Received:
    """The spans a receiver was sent: (service.name, span name, attributes) each."""

    spans: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    paths: set[str] = field(default_factory=set)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, name: str, timeout_s: float) -> list[tuple[str, str, dict[str, Any]]]:
        """The spans once one called ``name`` arrived; what there is after ``timeout_s``."""
        with self.changed:
            self.changed.wait_for(lambda: any(s[1] == name for s in self.spans), timeout_s)
            return list(self.spans)


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    """An OTLP/HTTP traces receiver on 127.0.0.1: its base URL and what it received."""
    received = Received()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = ExportTraceServiceRequest.FromString(body)
            with received.changed:
                received.paths.add(self.path)
                for resource_spans in request.resource_spans:
                    resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                    for scope in resource_spans.scope_spans:
                        received.spans += [(str(resource.get("service.name")), s.name,
                                            {a.key: _value(a.value) for a in s.attributes})
                                           for s in scope.spans]
                received.changed.notify_all()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    with threaded_http(Handler) as url:
        yield url, received


def _env(endpoint: str, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, **more)
    return env


def test_a_command_exports_the_diagnosis_spans(receiver: tuple[str, Received]) -> None:
    """``thinkfl demo`` (the CLI configures the SDK at start): the spans are flushed at exit."""
    endpoint, received = receiver
    done = subprocess.run([sys.executable, "-m", "thinkfl_operator.cli.main", "demo"], check=False,
                          env=_env(endpoint), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    spans = received.wait_for("thinkfl.diagnose", timeout_s=10)
    [diagnose] = [s for s in spans if s[1] == "thinkfl.diagnose"]
    tools = [s for s in spans if s[1] == "thinkfl.tool"]
    assert received.paths == {"/v1/traces"} and {s[0] for s in spans} == {"thinkfl-operator"}
    assert diagnose[2]["thinkfl.diagnose.engine"] == "heuristic"
    assert str(diagnose[2]["thinkfl.diagnose.top_cause"]).startswith("recommendationservice")
    assert diagnose[2]["thinkfl.diagnose.tool_calls"] == len(tools) > 0
    assert tools[-1][2]["thinkfl.tool.name"] == "print_results"


SANDBOX = """
import asyncio, sys
from thinkfl_operator.kube.sandbox import SameEvidence, sandbox
from thinkfl_operator.config.settings import OperatorSettings, Settings
from thinkfl_operator.demo.synthetic import generate

async def main():
    settings = Settings(engine="heuristic",
                        operator=OperatorSettings(concurrency=1, worker_processes=True))
    async with sandbox(settings, SameEvidence(generate().store), processes=True) as cluster:
        await cluster.create("traced", {"service": "frontend", "time": "2026-11-01T10:40:00Z"})
        obj = await cluster.wait("traced")
        print(obj["status"]["phase"], flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the test has the spans

asyncio.run(main())
"""


def test_the_operators_worker_processes_export_the_spans_of_their_diagnoses(
        receiver: tuple[str, Received]) -> None:
    """The operator diagnosing in worker processes (the default of ``thinkfl run``): each worker
    configures the SDK, so the spans come from it (this process configures nothing)."""
    endpoint, received = receiver
    env = _env(endpoint, OTEL_SERVICE_NAME="thinkfl-workers", OTEL_BSP_SCHEDULE_DELAY="100")
    with subprocess.Popen([sys.executable, "-c", SANDBOX], env=env, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "Diagnosed"
            spans = received.wait_for("thinkfl.diagnose", timeout_s=30)
        finally:
            process.communicate(input="", timeout=60)
    names = [s[1] for s in spans]
    assert names.count("thinkfl.diagnose") == 1, names
    assert "thinkfl.tool" in names and {s[0] for s in spans} == {"thinkfl-workers"}
