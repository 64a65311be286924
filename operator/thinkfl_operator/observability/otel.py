"""Exporting the spans of ``tracing``: the OpenTelemetry SDK and its OTLP/HTTP exporter, switched
on by the standard environment variables, as every OpenTelemetry SDK reads them.

* ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (used as is) or ``OTEL_EXPORTER_OTLP_ENDPOINT`` (``/v1/traces``
  appended): where spans go, e.g. ``http://otel-collector.observability:4318``. Neither set:
  nothing is configured and the API stays a no-op (no SDK imported).
* ``OTEL_SERVICE_NAME`` (default ``thinkfl-operator``) and ``OTEL_RESOURCE_ATTRIBUTES``.
* The exporter's own: ``OTEL_EXPORTER_OTLP[_TRACES]_HEADERS``, ``_TIMEOUT``, ``_COMPRESSION``,
  ``_CERTIFICATE``; the batch processor's ``OTEL_BSP_*``; ``OTEL_SDK_DISABLED=true`` turns it off.

The SDK and exporter are the ``[otel]`` extra (``pip install 'thinkfl-operator[otel]'``; the image
has them): with an endpoint set and the extra missing, one warning says so and the operator runs
without exporting. Spans leave in batches (``BatchSpanProcessor``), off the diagnosis' thread.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import structlog
from opentelemetry import trace

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

log = structlog.get_logger(__name__)

ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
DEFAULT_SERVICE = "thinkfl-operator"
EXTRA = "pip install 'thinkfl-operator[otel]'"


def endpoint() -> str | None:
    """The OTLP endpoint the environment names, if it names one and the SDK is not disabled."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    return next((os.environ[name] for name in ENDPOINTS if os.environ.get(name, "").strip()), None)


def exporting_processor() -> BatchSpanProcessor:
    """Spans in batches to the OTLP/HTTP exporter, which reads its endpoint, headers, timeout
    and TLS files from the environment. ``ImportError`` when the SDK or the exporter is not
    installed."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(OTLPSpanExporter())


def tracer_provider() -> TracerProvider:
    """A provider exporting through ``exporting_processor``, its resource named after
    ``OTEL_SERVICE_NAME`` (default ``thinkfl-operator``). ``ImportError`` as there."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider

    processor = exporting_processor()
    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, the SDK's own
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = Resource.create({SERVICE_NAME: DEFAULT_SERVICE})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(processor)
    return provider


def configure_tracing() -> TracerProvider | None:
    """Install the exporting provider as the process's when an endpoint is set (see the module
    docstring); the provider, or None when nothing was installed (no endpoint, or the extra
    missing: then a warning says so). Once per process: the API keeps the first provider set."""
    where = endpoint()
    if where is None:
        return None
    try:
        provider = tracer_provider()
    except ImportError as exc:
        log.warning("OpenTelemetry export is off: an OTLP endpoint is set but the SDK or its "
                    f"OTLP/HTTP exporter is not installed ({EXTRA})", endpoint=where,
                    missing=exc.name or str(exc))
        return None
    trace.set_tracer_provider(provider)
    log.info("exporting spans over OTLP/HTTP", endpoint=where,
             service=provider.resource.attributes.get("service.name"))
    return provider
