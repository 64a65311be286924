"""Logging: console for people, JSON for log pipelines, on stderr; one format for every logger.

Our structlog events and every standard-library logger's records (kopf's, aiohttp's, urllib3's,
the kubernetes client's) go through one handler on the root logger, whose structlog
``ProcessorFormatter`` renders them alike: ``event``, ``level``, ``logger``, ``timestamp``, and a
traceback as one ``exception`` field. A kopf record about an object carries it as ``object``
(apiVersion, kind, namespace, name, uid), where kopf's own JSON format puts it.

kopf's command line (``kopf run``) puts its own plain-text handler on the root logger before it
imports the operator's module; ``configure_logging`` takes it off (kopf's Python ``kopf.run``
installs none, so without a root handler its INFO was lost and its warnings came out as plain
text through ``logging.lastResort``).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor

#: The record attribute kopf keeps an object's reference in (``kopf._core.actions.loggers``).
KOPF_REF = "k8s_ref"


class _StderrHandler(logging.StreamHandler[TextIO]):
    """A handler on the current ``sys.stderr``, looked up per record: it may have been replaced
    (pytest's capture, a test's redirect) after logging was configured."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:  # StreamHandler.__init__ assigns it
        pass


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    """Every logger, ours and the libraries', to stderr at ``level`` in one format (``json`` or
    ``console``). Idempotent: a second call replaces the handler of the first."""
    numeric = logging.getLevelName(level.upper())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = _StderrHandler()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _kopf_object],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_rendering(fmt)],
    ))
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not _replaced(h)]
    root.addHandler(handler)
    root.setLevel(numeric)
    # A line per request to kopf's liveness endpoint (the kubelet probes every few seconds)
    # only when debugging.
    logging.getLogger("aiohttp.access").setLevel(logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING)
    pool = logging.getLogger("urllib3.connectionpool")
    pool.filters[:] = [f for f in pool.filters if not isinstance(f, _QuietRetries)]
    if numeric > logging.DEBUG:
        pool.addFilter(_QuietRetries())


class _QuietRetries(logging.Filter):
    """urllib3's line per retry of its own (the Kubernetes client retries a refused connection
    three times) only when debugging: what the last try ended in is said by the caller, once
    (``thinkfl: Kubernetes API unreachable ...``, a Failed reason)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Retrying (")


def _rendering(fmt: str) -> list[Processor]:
    if fmt == "json":  # the traceback as one string field: one line per record
        return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    # The traceback as Python prints it: rich's, the default, also prints local variables.
    return [structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)]


def _replaced(handler: logging.Handler) -> bool:
    """Ours from an earlier call, or the one kopf's command line installs (its class is
    private: ``kopf._core.actions.loggers._KopfStreamHandler``)."""
    return isinstance(handler, _StderrHandler) or (
        isinstance(handler, logging.StreamHandler) and type(handler).__module__.startswith("kopf."))


def _kopf_object(_: Any, __: str, event_dict: EventDict) -> EventDict:
    """The object a kopf record is about, as ``object``; kopf's other extras (its settings, the
    do-not-post flag) are left out."""
    record = event_dict.get("_record")
    ref = getattr(record, KOPF_REF, None)
    if isinstance(ref, dict):
        event_dict["object"] = {k: v for k, v in ref.items() if v}
    return event_dict
