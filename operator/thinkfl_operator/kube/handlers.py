"""The kopf handlers: thin. Parse the object, call the use case (``runner``), write status.

``register(registry, settings, open_store)`` puts them on a registry, so tests run the real
operator with their own registry and ``kopf run -m thinkfl_operator.kube`` uses the default one.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from thinkfl_operator.incident_status import diagnosing
from thinkfl_operator.kube import runner
from thinkfl_operator.settings import Settings

GROUP, VERSION, PLURAL = "thinkfl.dev", "v1alpha1", "failureincidents"
MAX_DELAY_S = 600.0
#: kopf's own bookkeeping annotations (progress, last handled spec). Not ``thinkfl.dev``: kopf
#: hides every annotation under its storage prefix from its diffs, which would make the user's
#: ``thinkfl.dev/rediagnose`` invisible to the update handlers.
KOPF_PREFIX = "operator.thinkfl.dev"


def register(registry: kopf.OperatorRegistry, settings: Settings, open_store: runner.StoreFactory) -> None:
    """Attach the startup tuning and the incident handlers to ``registry``."""
    limit = asyncio.Semaphore(settings.operator.concurrency)
    # Requests already answered by this process: the create and resume handlers can both see an
    # object before the status one of them wrote is visible. One small tuple per request.
    answered: set[tuple[str, str, int, str]] = set()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Events for every phase change, not only warnings: `kubectl describe fi` is the UI.
        settings.posting.level = logging.INFO
        # Handler progress in our own annotation prefix instead of kopf.zalando.org.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=KOPF_PREFIX)

    @kopf.on.create(GROUP, VERSION, PLURAL, id="created", registry=registry)
    @kopf.on.resume(GROUP, VERSION, PLURAL, id="resumed", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="spec-changed", field="spec", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="rediagnose-asked", registry=registry,
                    field=("metadata", "annotations", runner.REDIAGNOSE))
    async def reconcile(body: kopf.Body, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch,
                        retry: int, **_: Any) -> None:
        generation = runner.generation_of(meta)
        rediagnose = (meta.get("annotations") or {}).get(runner.REDIAGNOSE)
        request = (meta.get("namespace") or "", meta.get("name") or "", generation, rediagnose or "")
        if request in answered or not runner.needs_diagnosis(meta, status):
            return
        if retry == 0:
            kopf.info(body, reason="Started", message="diagnosing")
        async with limit:
            outcome = await asyncio.to_thread(runner.run, dict(body), settings, open_store, retry)
        if outcome.retry:
            delay = min(settings.operator.retry_delay_s * 2**retry, MAX_DELAY_S)
            patch.status.update(diagnosing(generation, datetime.now(UTC)))
            raise kopf.TemporaryError(outcome.retry, delay=delay)
        patch.status.update(outcome.status)
        answered.add(request)
        if rediagnose is not None:
            patch.metadata.setdefault("annotations", {})[runner.REDIAGNOSED] = rediagnose
        for kind, reason, message in outcome.events:
            kopf.event(body, type=kind, reason=reason, message=message)
