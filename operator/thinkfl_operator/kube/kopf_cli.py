"""For kopf's own command line: ``kopf run --standalone -A -m thinkfl_operator.kube.kopf_cli``.

kopf's ``run -m`` imports a module and runs the handlers on its default registry, so importing
this one (and only this one: nothing in the package imports it) sets the logging of the
settings, taking off the plain-text handler kopf's command line put on the root logger, sets up
the span export as ``thinkfl`` does (``observability.otel``), and makes the operator's registry (``operator_registry``) kopf's default. Invalid settings are one
line naming the variable, and exit code 2, as with ``thinkfl run``, which needs none of this.
"""

from __future__ import annotations

import sys

import kopf

from thinkfl_operator.config.logs import configure_logging
from thinkfl_operator.config.settings import get_settings
from thinkfl_operator.core.errors import UserInputError
from thinkfl_operator.kube import operator_registry
from thinkfl_operator.observability.otel import configure_tracing

try:
    SETTINGS = get_settings()
except UserInputError as exc:
    sys.stderr.write(f"thinkfl: error: {exc}\n")
    raise SystemExit(2) from None
configure_logging(SETTINGS.log_level, SETTINGS.log_format)
configure_tracing()  # spans exported when OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT is set
kopf.set_default_registry(operator_registry(SETTINGS))
