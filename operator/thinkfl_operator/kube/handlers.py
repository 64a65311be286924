"""The kopf handlers: thin. Parse the object, call the use case (``runner``), write status.

``register(registry, settings, open_store)`` puts them on a registry the caller made (never
kopf's default at import): ``thinkfl run`` builds one (``kube.operator_registry``), the sandbox
and the tests theirs. The operator's HTTP port (Alertmanager webhook, metrics) starts and stops
with the operator, and the Kubernetes API client it opened is closed when it stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import kopf
import structlog

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.errors import BackendError
from thinkfl_operator.engines.thinkfl.client import ChatClient
from thinkfl_operator.feedback.label import ANNOTATION as ROOT_CAUSE
from thinkfl_operator.incident.status import PENDING
from thinkfl_operator.kube import runner
from thinkfl_operator.kube.confirm import confirm
from thinkfl_operator.kube.metrics import OperatorMetrics
from thinkfl_operator.kube.web import HttpServer, build_app, tls_context
from thinkfl_operator.kube.workers import Diagnoser, Workers
from thinkfl_operator.kubeapi.client import GROUP, PLURAL, VERSION
from thinkfl_operator.kubeapi.incidents import IncidentApi

log = structlog.get_logger(__name__)

#: kopf's own bookkeeping annotations (progress, last handled spec). Not ``thinkfl.dev``: kopf
#: hides every annotation under its storage prefix from its diffs, which would make the user's
#: ``thinkfl.dev/rediagnose`` invisible to the update handlers. A ``kopf.`` prefix, so kopf
#: adds no ``kopf-managed`` marker annotation (one line less in ``kubectl describe``).
KOPF_PREFIX = "kopf.thinkfl.dev"
#: When a diagnosis is asked for: (decorator, handler id, its filter).
CAUSES: tuple[tuple[Any, str, dict[str, Any]], ...] = (
    (kopf.on.create, "created", {}),
    (kopf.on.resume, "resumed", {}),
    (kopf.on.update, "spec-changed", {"field": "spec"}),
    (kopf.on.update, "rediagnose-asked", {"field": ("metadata", "annotations", runner.REDIAGNOSE)}),
)


@dataclass(frozen=True)
class Registered:
    """What ``register`` set up: the metrics the handlers update, the HTTP server, and ``stop``:
    what the cleanup handler does (the HTTP server stopped, the workers' pool and the API client
    closed), for a caller that cancels the operator task, which runs no cleanup."""

    metrics: OperatorMetrics
    server: HttpServer
    stop: Callable[[], Awaitable[None]]


def register(registry: kopf.OperatorRegistry, settings: Settings, open_store: runner.StoreFactory,
             *, metrics: OperatorMetrics | None = None, api: IncidentApi | None = None,
             host: str = "0.0.0.0", chat: ChatClient | None = None,
             processes: bool | None = None) -> Registered:
    """Attach the startup tuning, the HTTP port and the incident handlers to ``registry``.

    ``api`` is how the webhook creates incidents and a queued diagnosis shows that it started
    (default: the Kubernetes API through the official client, in-cluster or the kubeconfig;
    closed when the operator stops, either way); ``host`` is the address the webhook port listens on;
    ``chat`` the LLM endpoint's client every diagnosis shares (its owner closes it; diagnoses
    in worker processes open their own); ``processes`` whether diagnoses run in worker processes
    (``open_store`` must pickle) or threads (default: ``operator.worker_processes``)."""
    metrics = metrics or OperatorMetrics()
    processes = settings.operator.worker_processes if processes is None else processes
    workers = Workers(settings.operator.concurrency, Diagnoser(settings, open_store, chat), processes)
    # Requests already answered by this process (uid, generation, rediagnose): the create and
    # resume handlers can both see an object before the status one of them wrote is visible.
    answered: set[tuple[str, int, str]] = set()
    api = api or IncidentApi()
    server = HttpServer(build_app(settings, metrics, api.create), settings.operator.http_port, host,
                        ssl_context=tls_context(settings.alerts))

    @kopf.on.startup(id="configure", registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Events for every phase change, not only warnings: `kubectl describe fi` is the UI.
        settings.posting.level = logging.INFO
        # Handler progress in our own annotation prefix instead of kopf.zalando.org.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=KOPF_PREFIX)
        await server.start()
        # Worker processes and the API client up before the first incident, not with it.
        await asyncio.gather(workers.start(), asyncio.to_thread(api.connect))

    async def stop() -> None:
        await server.stop()
        workers.close()
        runner.close_quietly(api)

    @kopf.on.cleanup(id="stop", registry=registry)
    async def stopping(**_: Any) -> None:
        await stop()

    @kopf.on.probe(id="diagnosesRunning", registry=registry)
    def running(**_: Any) -> int:
        return workers.running  # shown in kopf's /healthz answer

    @kopf.on.event(GROUP, VERSION, PLURAL, id="count-phase", registry=registry)
    async def count_phase(type: str, body: kopf.Body, **_: Any) -> None:  # on the loop: no lock
        key = (body.metadata.namespace or "", body.metadata.name or "")
        if type == "DELETED":
            metrics.forget(key)
            uid = runner.request_key(body.metadata)[0]
            answered.difference_update({r for r in answered if r[0] == uid})
        else:
            metrics.set_phase(key, body.status.get("phase") or PENDING)

    async def show(meta: kopf.Meta, spec: kopf.Spec, status: dict[str, Any], queued: bool) -> None:
        """Phase Pending while the incident waits for a worker, Diagnosing once it has one.

        Written through the API at once (kopf writes a handler's patch only when the handler
        returns), best effort: kopf writes the outcome either way. ``status`` is what the
        incident shows; it is updated with what was written."""
        shown = runner.starting(meta, spec, status, queued=queued)
        if shown is None:
            return
        try:
            await api.patch_status(meta.namespace or "", meta.name or "", shown)
        except BackendError as exc:
            log.warning("phase not shown", incident=meta.name, phase=shown["phase"], error=str(exc))
            return
        status.update(shown)

    async def reconcile(body: kopf.Body, meta: kopf.Meta, spec: kopf.Spec, status: kopf.Status,
                        patch: kopf.Patch, retry: int, **_: Any) -> None:
        request = runner.request_key(meta)
        if request in answered or not runner.needs_diagnosis(meta, spec, status):
            return
        if retry == 0:
            kopf.info(body, reason="Started", message="diagnosing")
        showing = dict(status)
        outcome = await workers.diagnose(dict(body), retry,
                                         on_queue=lambda: show(meta, spec, showing, queued=True),
                                         on_start=lambda: show(meta, spec, showing, queued=False))
        metrics.observe_outcome(outcome)
        if outcome.record:  # the full record: a ConfigMap the incident owns, named in status
            try:
                outcome.status["recordConfigMap"] = await api.save_record(meta, outcome.record)
            except BackendError as exc:
                outcome.events.append(("Warning", "RecordNotSaved", str(exc)))
        patch.status.update(outcome.status)
        for kind, reason, message in outcome.events:
            kopf.event(body, type=kind, reason=reason, message=message)
        if outcome.retry:
            raise kopf.TemporaryError(outcome.retry, delay=outcome.delay_s)
        answered.add(request)
        if request[2]:  # the rediagnose value this diagnosis answered
            patch.metadata.setdefault("annotations", {})[runner.REDIAGNOSED] = request[2]
        # Feedback given before the answer (or kept across a re-diagnosis) grades the new one.
        _confirmed(body, {**dict(body), "status": {**dict(status), **outcome.status}}, patch,
                   lambda: outcome.record)

    for on, handler_id, filters in CAUSES:
        on(GROUP, VERSION, PLURAL, id=handler_id, registry=registry, **filters)(reconcile)

    @kopf.on.update(GROUP, VERSION, PLURAL, id="feedback-given", field="spec.feedback",
                    registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="root-cause-annotated", registry=registry,
                    field=("metadata", "annotations", ROOT_CAUSE))
    @kopf.on.resume(GROUP, VERSION, PLURAL, id="feedback-resumed", registry=registry)
    def feedback(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        current = dict(body)
        _confirmed(body, current, patch, lambda: api.read_record(current))  # in kopf's thread

    def _confirmed(body: kopf.Body, current: dict[str, Any], patch: kopf.Patch,
                   record: Callable[[], str]) -> None:
        """Grade ``current`` (the object with the status being written) against its feedback;
        ``record`` gives its diagnosis record, when a label is to be checked against it."""
        result = confirm(current, record=record)
        key = (body.metadata.namespace or "", body.metadata.name or "")
        if result.graded:
            metrics.observe_grade(key, result.engine, result.rank)
        else:  # no label, or one refused: the incident leaves the live accuracy
            metrics.forget_grade(key)
        patch.status.update(result.status)
        for kind, reason, message in result.events:
            kopf.event(body, type=kind, reason=reason, message=message)

    return Registered(metrics, server, stop)
