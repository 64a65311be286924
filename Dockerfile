# syntax=docker/dockerfile:1
# ThinkFL Operator image: `thinkfl run` starts the operator (other subcommands: demo, diagnose,
# evaluate, bench).
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11.11-slim-bookworm
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin thinkfl
COPY --from=build /install /usr/local
USER 10001:10001
ENTRYPOINT ["thinkfl"]
CMD ["run"]
