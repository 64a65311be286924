"""The kopf handlers: thin. Parse the object, call the use case (``runner``), write status.

``register(registry, settings, open_store)`` puts them on a registry, so tests run the real
operator with their own registry and ``kopf run -m thinkfl_operator.kube`` uses the default one.
The operator's HTTP port (Alertmanager webhook, metrics) starts and stops with the operator.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf

from thinkfl_operator.alert_server import CreateIncident
from thinkfl_operator.feedback.label import ANNOTATION as ROOT_CAUSE
from thinkfl_operator.incident_status import PENDING, diagnosing
from thinkfl_operator.kube import runner
from thinkfl_operator.kube.client import GROUP, PLURAL, VERSION, IncidentApi
from thinkfl_operator.kube.confirm import confirm
from thinkfl_operator.kube.metrics import OperatorMetrics
from thinkfl_operator.kube.web import HttpServer, build_app
from thinkfl_operator.settings import Settings

MAX_DELAY_S = 600.0
#: kopf's own bookkeeping annotations (progress, last handled spec). Not ``thinkfl.dev``: kopf
#: hides every annotation under its storage prefix from its diffs, which would make the user's
#: ``thinkfl.dev/rediagnose`` invisible to the update handlers.
KOPF_PREFIX = "operator.thinkfl.dev"


@dataclass(frozen=True)
class Registered:
    """What ``register`` set up: the metrics the handlers update and the HTTP server."""

    metrics: OperatorMetrics
    server: HttpServer


def register(registry: kopf.OperatorRegistry, settings: Settings, open_store: runner.StoreFactory,
             *, metrics: OperatorMetrics | None = None,
             create_incident: CreateIncident | None = None) -> Registered:
    """Attach the startup tuning, the HTTP port and the incident handlers to ``registry``.

    ``create_incident`` is how the webhook creates incidents (default: the Kubernetes API through
    the official client)."""
    metrics = metrics or OperatorMetrics()
    limit = asyncio.Semaphore(settings.operator.concurrency)
    # Requests already answered by this process: the create and resume handlers can both see an
    # object before the status one of them wrote is visible. One small tuple per request.
    answered: set[tuple[str, str, int, str]] = set()
    server = HttpServer(build_app(settings, metrics, create_incident or IncidentApi().create),
                        settings.operator.http_port)

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Events for every phase change, not only warnings: `kubectl describe fi` is the UI.
        settings.posting.level = logging.INFO
        # Handler progress in our own annotation prefix instead of kopf.zalando.org.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=KOPF_PREFIX)
        await server.start()

    @kopf.on.cleanup(registry=registry)
    async def stop_http(**_: Any) -> None:
        await server.stop()

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    def count_phase(type: str, body: kopf.Body, **_: Any) -> None:
        key = (body.metadata.namespace or "", body.metadata.name or "")
        if type == "DELETED":
            metrics.forget(key)
        else:
            metrics.set_phase(key, body.status.get("phase") or PENDING)

    @kopf.on.create(GROUP, VERSION, PLURAL, id="created", registry=registry)
    @kopf.on.resume(GROUP, VERSION, PLURAL, id="resumed", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="spec-changed", field="spec", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="rediagnose-asked", registry=registry,
                    field=("metadata", "annotations", runner.REDIAGNOSE))
    async def reconcile(body: kopf.Body, meta: kopf.Meta, spec: kopf.Spec, status: kopf.Status,
                        patch: kopf.Patch, retry: int, **_: Any) -> None:
        generation = runner.generation_of(meta)
        rediagnose = (meta.get("annotations") or {}).get(runner.REDIAGNOSE)
        request = (meta.get("namespace") or "", meta.get("name") or "", generation, rediagnose or "")
        if request in answered or not runner.needs_diagnosis(meta, spec, status):
            return
        if retry == 0:
            kopf.info(body, reason="Started", message="diagnosing")
        async with limit:
            outcome = await asyncio.to_thread(runner.run, dict(body), settings, open_store, retry)
        if outcome.backend:
            metrics.observe_backend_error(outcome.backend)
        if outcome.retry:
            delay = min(settings.operator.retry_delay_s * 2**retry, MAX_DELAY_S)
            patch.status.update(diagnosing(generation, datetime.now(UTC)))
            raise kopf.TemporaryError(outcome.retry, delay=delay)
        if outcome.diagnosis is not None:
            metrics.observe_diagnosis(outcome.diagnosis, outcome.seconds)
        if outcome.failure:
            metrics.observe_failure(outcome.failure)
        patch.status.update(outcome.status)
        answered.add(request)
        if rediagnose is not None:
            patch.metadata.setdefault("annotations", {})[runner.REDIAGNOSED] = rediagnose
        for kind, reason, message in outcome.events:
            kopf.event(body, type=kind, reason=reason, message=message)
        # Feedback given before the answer (or kept across a re-diagnosis) grades the new one.
        _confirmed(body, {**dict(body), "status": {**dict(status), **outcome.status}}, patch)

    @kopf.on.update(GROUP, VERSION, PLURAL, id="feedback-given", field="spec.feedback",
                    registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="root-cause-annotated", registry=registry,
                    field=("metadata", "annotations", ROOT_CAUSE))
    @kopf.on.resume(GROUP, VERSION, PLURAL, id="feedback-resumed", registry=registry)
    def feedback(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        _confirmed(body, dict(body), patch)

    def _confirmed(body: kopf.Body, current: dict[str, Any], patch: kopf.Patch) -> None:
        """Grade ``current`` (the object with the status being written) against its feedback."""
        result = confirm(current)
        key = (body.metadata.namespace or "", body.metadata.name or "")
        if result.graded:
            metrics.observe_grade(key, result.engine, result.rank)
        else:  # no label, or one refused: the incident leaves the live accuracy
            metrics.forget_grade(key)
        patch.status.update(result.status)
        for kind, reason, message in result.events:
            kopf.event(body, type=kind, reason=reason, message=message)

    return Registered(metrics, server)
