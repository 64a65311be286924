# syntax=docker/dockerfile:1
# ThinkFL Operator image: `thinkfl run` starts the operator (other subcommands: demo, diagnose,
# evaluate, bench). Build context: the repository root; .dockerignore keeps out all but what the
# build needs (pyproject.toml, README.md as the project's readme, operator/).
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
# The [otel] extra: the OpenTelemetry SDK and OTLP/HTTP exporter, used only when the pod's env
# sets OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).
RUN pip install --no-cache-dir --prefix=/install ".[otel]"

FROM python:3.11.11-slim-bookworm
# The root filesystem is read-only in the pod: no bytecode written at run time.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin thinkfl
COPY --from=build /install /usr/local
USER 10001:10001
ENTRYPOINT ["thinkfl"]
CMD ["run"]
