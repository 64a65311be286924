"""The operator's Prometheus metrics, in a registry of its own (tests can make several).

Series (counters also carry the ``_total`` suffix in the exposition):

    thinkfl_incidents{phase}                  incidents per phase (the four phases always shown)
    thinkfl_diagnosis_seconds{engine}         histogram: wall time of one diagnosis
    thinkfl_diagnoses_total{engine,outcome}   outcome="diagnosed", by the engine that answered
    thinkfl_diagnosis_failures_total{reason}  incidents Failed, by status reason (NoEvidence, ...)
    thinkfl_llm_calls_total{engine}           chat completions
    thinkfl_llm_tokens_total{engine,kind}     kind="prompt" | "completion"
    thinkfl_tool_calls_total{engine}          tool calls on diagnostic paths
    thinkfl_fallbacks_total                   diagnoses the deterministic engine gave for the LLM
    thinkfl_backend_errors_total{backend}     failed calls to jaeger, tempo, prometheus, llm
    thinkfl_confirmed_incidents{engine}       incidents whose true cause an SRE confirmed
    thinkfl_accuracy_recall{engine,k}         share of those with the true cause in the first k
    thinkfl_accuracy_mrr{engine}              their mean reciprocal rank

Failures have their own counter because a failed incident has a reason but no engine. Phases and
accuracy are computed at scrape time from per-incident state, so re-grading or moving an
incident never needs a decrement.
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from thinkfl_operator.core.models import Diagnosis
from thinkfl_operator.evaluation.scores import RECALL_KS, AccuracyRow, accuracy_table
from thinkfl_operator.incident.status import PHASES
from thinkfl_operator.kube.runner import Outcome

IncidentKey = tuple[str, str]  # (namespace, name)

#: From a cached deterministic diagnosis to a long LLM conversation.
SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class _IncidentState(Collector):
    """Per-incident phase and graded rank, turned into gauges at each scrape."""

    def __init__(self) -> None:
        # Handlers write from worker threads while the exposition reads: one lock for both maps.
        self.lock = threading.Lock()
        self.phases: dict[IncidentKey, str] = {}
        self.grades: dict[IncidentKey, tuple[str, int | None]] = {}

    def collect(self) -> Iterable[Metric]:
        with self.lock:
            phases = Tally(self.phases.values())
            ranks: dict[str, list[int | None]] = {}
            for engine, rank in self.grades.values():
                ranks.setdefault(engine, []).append(rank)
        incidents = GaugeMetricFamily("thinkfl_incidents", "Incidents per phase.", labels=["phase"])
        for phase in sorted(set(PHASES) | set(phases)):
            incidents.add_metric([phase], phases[phase])
        yield incidents
        yield from _accuracy_families(accuracy_table(ranks))


def _accuracy_families(rows: list[AccuracyRow]) -> Iterable[Metric]:
    count = GaugeMetricFamily("thinkfl_confirmed_incidents",
                              "Incidents whose true root cause was confirmed.", labels=["engine"])
    recall = GaugeMetricFamily("thinkfl_accuracy_recall",
                               "Share of confirmed incidents with the true cause in the first k.",
                               labels=["engine", "k"])
    mrr = GaugeMetricFamily("thinkfl_accuracy_mrr",
                            "Mean reciprocal rank of the true cause over confirmed incidents.",
                            labels=["engine"])
    for row in rows:
        count.add_metric([row["engine"]], row["count"])
        for k, value in zip(RECALL_KS, (row["r1"], row["r3"], row["r5"]), strict=True):
            recall.add_metric([row["engine"], str(k)], value)
        mrr.add_metric([row["engine"]], row["mrr"])
    return count, recall, mrr


class OperatorMetrics:
    """Every metric of one operator process, exposed by ``exposition()``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._state = _IncidentState()
        self.registry.register(self._state)
        self._seconds = Histogram("thinkfl_diagnosis_seconds", "Wall time of one diagnosis.",
                                  ["engine"], buckets=SECONDS_BUCKETS, registry=self.registry)
        self._diagnoses = self._counter("thinkfl_diagnoses", "Diagnoses by outcome.",
                                        "engine", "outcome")
        self._failures = self._counter("thinkfl_diagnosis_failures", "Incidents Failed.", "reason")
        self._llm_calls = self._counter("thinkfl_llm_calls", "Chat completions.", "engine")
        self._tokens = self._counter("thinkfl_llm_tokens", "LLM tokens.", "engine", "kind")
        self._tool_calls = self._counter("thinkfl_tool_calls", "Tool calls.", "engine")
        self._fallbacks = self._counter("thinkfl_fallbacks",
                                        "Diagnoses the deterministic engine answered for the LLM.")
        self._backend_errors = self._counter("thinkfl_backend_errors", "Failed backend calls.",
                                             "backend")
        self._alerts = self._counter("thinkfl_webhook_alerts", "Alerts and posts to the webhook by outcome "
                                     "(created, existing, rejected, failed; posts unauthorized, limited).",
                                     "outcome")

    def _counter(self, name: str, doc: str, *labels: str) -> Counter:
        return Counter(name, doc, labels, registry=self.registry)

    def set_phase(self, key: IncidentKey, phase: str) -> None:
        """Incident ``key`` (namespace, name) is now in ``phase``."""
        with self._state.lock:
            self._state.phases[key] = phase

    def phase(self, key: IncidentKey) -> str | None:
        """The phase incident ``key`` was last seen in; None when the operator has not seen it."""
        with self._state.lock:
            return self._state.phases.get(key)

    def forget(self, key: IncidentKey) -> None:
        """Incident ``key`` was deleted: it leaves the phase counts and the accuracy."""
        with self._state.lock:
            self._state.phases.pop(key, None)
            self._state.grades.pop(key, None)

    def forget_grade(self, key: IncidentKey) -> None:
        """Incident ``key`` has no (valid) label any more: it leaves the accuracy."""
        with self._state.lock:
            self._state.grades.pop(key, None)

    def observe_outcome(self, outcome: Outcome) -> None:
        """What one try of the use case gave: an answer, a failure, a failed backend."""
        if outcome.backend:
            self.observe_backend_error(outcome.backend)
        if outcome.diagnosis is not None:
            self.observe_diagnosis(outcome.diagnosis, outcome.seconds)
        if outcome.failure:
            self.observe_failure(outcome.failure)

    def observe_diagnosis(self, diagnosis: Diagnosis, seconds: float) -> None:
        """A diagnosis that took ``seconds``: its time, cost and whether the LLM fell back."""
        engine, usage = diagnosis.engine, diagnosis.usage
        self._seconds.labels(engine).observe(seconds)
        self._diagnoses.labels(engine, "diagnosed").inc()
        self._llm_calls.labels(engine).inc(usage.llm_calls)
        self._tokens.labels(engine, "prompt").inc(usage.prompt_tokens)
        self._tokens.labels(engine, "completion").inc(usage.completion_tokens)
        self._tool_calls.labels(engine).inc(usage.tool_calls)
        if diagnosis.fallback_reason is not None:
            self._fallbacks.inc()

    def observe_failure(self, reason: str) -> None:
        """An incident Failed with status reason ``reason`` (e.g. NoEvidence)."""
        self._failures.labels(reason).inc()

    def observe_alerts(self, outcome: str, count: int) -> None:
        self._alerts.labels(outcome).inc(count)

    def observe_backend_error(self, backend: str) -> None:
        """A call to ``backend`` (jaeger, tempo, prometheus, llm) failed."""
        self._backend_errors.labels(backend).inc()

    def observe_grade(self, key: IncidentKey, engine: str, rank: int | None) -> None:
        """Incident ``key`` confirmed: the true cause was at 1-based ``rank`` (None: absent).

        A later grade of the same incident replaces this one.
        """
        if rank is not None and rank < 1:
            raise ValueError(f"rank is 1-based, got {rank}")
        with self._state.lock:
            self._state.grades[key] = (engine, rank)

    def exposition(self) -> tuple[bytes, str]:
        """The body of a scrape and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
