"""Read-only access to telemetry: offline dataset stores now, live backends later.

Every source yields the same two things: a ``SpanTable`` (columnar spans, indexed) and per-pod
KPI frames (``MetricFrames``), so the evidence tools and engines never know where data came from.
"""
