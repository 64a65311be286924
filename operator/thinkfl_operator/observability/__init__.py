"""The operator's own observability: Prometheus metrics (``metrics``) and OpenTelemetry spans
(``tracing``). Below every other layer but ``models``, so any layer may report through it."""
