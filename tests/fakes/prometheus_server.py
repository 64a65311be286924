"""The real Prometheus server (Debian's ``prometheus`` + ``promtool``) with backfilled data.

* ``nezha_to_openmetrics`` turns Nezha metric CSVs (``<pod>_metric.csv``) into OpenMetrics text:
  one gauge family per KPI column, named as ``NEZHA_CATALOG`` expects
  (``nezha_metric_name``), labelled ``pod`` and ``namespace``, plus one ``kube_pod_info`` series
  per pod whose ``node`` label is synthetic (``node-1`` … ``node-4`` by sorted pod index), so
  pod → node works. Sample times are the row's text ``Time`` truncated to whole seconds (UTC,
  zone offset applied), else ``TimeStamp``, exactly as ``NezhaStore`` reads them; a time seen
  twice in one file keeps its first row; NaN values are not written.
* ``spans_to_spanmetrics`` turns a span frame into the span metrics a collector would have
  written for it, in one of the namings ``telemetry/span_metrics.py`` reads (``otel``: the
  OpenTelemetry Collector spanmetrics connector's ``traces_span_metrics_calls_total`` and
  ``traces_span_metrics_duration_milliseconds`` with its default buckets; ``tempo``: the Tempo
  metrics-generator's ``traces_spanmetrics_calls_total``, ``traces_spanmetrics_latency`` in
  seconds with its default buckets, and ``traces_service_graph_request_total``): cumulative
  counters and histogram buckets per (service, span name, kind, status), sampled every
  ``step_s`` at whole seconds, each span counted at its start. ``join_openmetrics`` puts
  several such files into one (promtool reads one file per backfill).
* ``RealPrometheus`` backfills such a file with ``promtool tsdb create-blocks-from openmetrics``
  into a temporary TSDB, starts ``prometheus`` on 127.0.0.1 with an empty scrape configuration
  and waits for ``/-/ready``. Missing binaries skip the test, or fail it when
  ``THINKFL_REQUIRE_PROMETHEUS=1`` (CI).

Learned on Prometheus 2.42: timestamps must be in seconds (milliseconds are accepted silently
and land in the far future), ``# EOF`` is required, and retention must be long (``100y``) or
the old dataset blocks are deleted at start-up.
"""

from __future__ import annotations

import csv
import math
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np
import pandas as pd
import pytest

from thinkfl_operator.telemetry.prometheus import nezha_metric_name

NAMESPACE = "train-ticket"
NODE_COUNT = 4
METRIC_SUFFIX = "_metric.csv"
_NON_KPI = ("Time", "TimeStamp", "PodName", "ServiceName")
_GO_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.\d*)?(?: ([+-])(\d{2})(\d{2}))?")


# --------------------------------------------------------------------------------------------
# Nezha CSV → OpenMetrics


def metric_pods(metric_dir: Path) -> list[str]:
    """Pods with a metric file, by file name (as ``NezhaStore`` names them)."""
    return sorted(p.name[: -len(METRIC_SUFFIX)] for p in metric_dir.glob(f"*{METRIC_SUFFIX}"))


def synthetic_nodes(pods: list[str]) -> dict[str, str]:
    """``node-1`` … ``node-4`` by sorted pod index: deterministic, independent of any filter."""
    return {pod: f"node-{i % NODE_COUNT + 1}" for i, pod in enumerate(sorted(pods))}


def text_seconds(text: str) -> float:
    """Epoch seconds of a Go time string (``2023-01-30 11:39:53.25 +0000 UTC m=+0.4``), whole
    seconds, zone offset applied; NaN when it does not parse."""
    match = _GO_TIME.match(text.strip())
    if match is None:
        return math.nan
    try:
        stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return math.nan
    if match.group(2):
        offset = timedelta(hours=int(match.group(3)), minutes=int(match.group(4)))
        stamp -= offset if match.group(2) == "+" else -offset
    return stamp.timestamp()


def _number(text: str | None) -> float:
    try:
        return float(text) if text is not None and text.strip() else math.nan
    except ValueError:
        return math.nan


def _om_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _om_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _cell(record: list[str], index: int | None) -> str | None:
    return record[index] if index is not None and index < len(record) else None


def _read_pod(path: Path) -> tuple[list[str], list[tuple[int, list[float]]]]:
    """KPI names and (time, values) rows sorted by time, first row of a repeated time kept."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        kpi_cols = [i for i, h in enumerate(header) if h and h not in _NON_KPI]
        time_col = header.index("Time") if "Time" in header else None
        stamp_col = header.index("TimeStamp") if "TimeStamp" in header else None
        rows: list[tuple[int, list[float]]] = []
        for record in reader:
            text = _cell(record, time_col)
            seconds = text_seconds(text) if text is not None else math.nan
            if math.isnan(seconds):
                seconds = _number(_cell(record, stamp_col))
            if math.isnan(seconds) or math.isinf(seconds):
                continue
            rows.append((int(seconds), [_number(_cell(record, i)) for i in kpi_cols]))
    rows.sort(key=lambda r: r[0])  # stable: the first of a repeated time stays first
    unique = [r for i, r in enumerate(rows) if i == 0 or r[0] != rows[i - 1][0]]
    return [header[i] for i in kpi_cols], unique


def nezha_to_openmetrics(metric_dir: Path, out: Path, pods: list[str] | None = None) -> Path:
    """Write the Nezha metric files of ``pods`` (default: all) as one OpenMetrics text file."""
    everyone = metric_pods(metric_dir)
    nodes = synthetic_nodes(everyone)
    chosen = sorted(everyone if pods is None else set(pods) & set(everyone))
    data = {pod: _read_pod(metric_dir / f"{pod}{METRIC_SUFFIX}") for pod in chosen}
    kpis: list[str] = []
    for names, _ in data.values():
        kpis.extend(k for k in names if k not in kpis)
    ns = _om_label(NAMESPACE)
    lines: list[str] = []
    for kpi in kpis:
        family = nezha_metric_name(kpi)
        lines += [f"# HELP {family} Nezha KPI {_om_label(kpi)}", f"# TYPE {family} gauge"]
        for pod in chosen:
            names, rows = data[pod]
            if kpi not in names:
                continue
            j = names.index(kpi)
            series = f'{family}{{namespace="{ns}",pod="{_om_label(pod)}"}}'
            lines.extend(f"{series} {_om_value(v[j])} {t}" for t, v in rows if not math.isnan(v[j]))
    lines += ["# HELP kube_pod_info Pod to node (synthetic nodes).", "# TYPE kube_pod_info gauge"]
    for pod in chosen:
        series = f'kube_pod_info{{namespace="{ns}",node="{nodes[pod]}",pod="{_om_label(pod)}"}}'
        lines.extend(f"{series} 1 {t}" for t, _ in data[pod][1])
    lines.append("# EOF")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


# --------------------------------------------------------------------------------------------
# spans → span metrics

#: Default histogram buckets: the collector connector's (ms) and Tempo's (s).
OTEL_BUCKETS_MS = (2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000)
TEMPO_BUCKETS_S = (0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048,
                   4.096, 8.192, 16.384)
SPAN_NAMINGS = {
    # naming: (calls family, histogram family, service label, buckets, µs per unit, graph family)
    "otel": ("traces_span_metrics_calls", "traces_span_metrics_duration_milliseconds",
             "service_name", OTEL_BUCKETS_MS, 1e3, ""),
    "tempo": ("traces_spanmetrics_calls", "traces_spanmetrics_latency", "service",
              TEMPO_BUCKETS_S, 1e6, "traces_service_graph_request"),
}
_OK = {"", "0", "200", "ok", "unset", "status_code_ok", "status_code_unset", "false"}


def _status_code(status: str) -> str:
    text = status.strip().lower()
    if text in ("ok", "status_code_ok"):
        return "STATUS_CODE_OK"
    return "STATUS_CODE_UNSET" if text in _OK else "STATUS_CODE_ERROR"


def _span_kind(kind: str) -> str:
    text = kind.strip().upper()
    return f"SPAN_KIND_{text}" if text and not text.startswith("SPAN_KIND_") else text or "SPAN_KIND_UNSPECIFIED"


def spans_to_spanmetrics(frame: pd.DataFrame, out: Path, naming: str, start_s: float,
                         end_s: float, step_s: int = 60) -> Path:
    """The span metrics of ``frame``'s spans starting in [start, end), sampled every ``step_s``
    over that range, in ``naming`` (module docstring); OpenMetrics text without ``# EOF``."""
    calls, hist, service_label, buckets, unit_us, graph = SPAN_NAMINGS[naming]
    start_us = frame["start_us"].to_numpy(dtype="float64")
    part = frame[(start_us >= start_s * 1e6) & (start_us < end_s * 1e6)]
    times = np.arange(math.ceil(start_s / step_s) * step_s, end_s + step_s, step_s, dtype="int64")
    t_us = times * 1e6
    keys = pd.DataFrame({"service": part["service"].astype(str), "span": part["operation"].astype(str),
                         "kind": part["kind"].astype(str).map(_span_kind),
                         "status": part["status"].astype(str).map(_status_code)})
    bounds = np.array([*buckets, math.inf]) * unit_us
    calls_lines, hist_lines = [], []
    for (service, span, kind, status), rows in keys.groupby(list(keys.columns), sort=True).groups.items():
        starts = part["start_us"].to_numpy(dtype="float64")[part.index.get_indexer(rows)]
        durations = part["duration_us"].to_numpy(dtype="float64")[part.index.get_indexer(rows)]
        order = np.argsort(starts, kind="stable")
        starts, durations = starts[order], durations[order]
        seen = np.searchsorted(starts, t_us, side="left")  # spans started before each sample
        labels = (f'{service_label}="{_om_label(service)}",span_name="{_om_label(span)}",'
                  f'span_kind="{kind}",status_code="{status}"')
        calls_lines += [f"{calls}_total{{{labels}}} {n} {t}" for t, n in zip(times, seen, strict=True)]
        in_bucket = durations[None, :] <= bounds[:, None]  # bucket × span
        cumulative = np.concatenate([np.zeros((len(bounds), 1), dtype="int64"),
                                     np.cumsum(in_bucket, axis=1)], axis=1)[:, seen]
        total_s = np.concatenate([[0.0], np.cumsum(durations)])[seen] / unit_us
        les = [_om_value(float(b / unit_us)) for b in bounds]
        for j, t in enumerate(times):
            hist_lines += [f'{hist}_bucket{{{labels},le="{le}"}} {cumulative[i, j]} {t}'
                           for i, le in enumerate(les)]
            hist_lines += [f"{hist}_count{{{labels}}} {seen[j]} {t}",
                           f"{hist}_sum{{{labels}}} {float(total_s[j])!r} {t}"]
    lines = [f"# HELP {calls} Span calls.", f"# TYPE {calls} counter", *calls_lines,
             f"# HELP {hist} Span durations.", f"# TYPE {hist} histogram", *hist_lines]
    if graph:
        lines += [f"# HELP {graph} Service graph requests.", f"# TYPE {graph} counter",
                  *_service_graph(part, graph, times, t_us)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _service_graph(part: pd.DataFrame, family: str, times: np.ndarray, t_us: np.ndarray) -> list[str]:
    """Tempo's request counter per (client, server) edge: spans whose parent is another service's."""
    ids = part["trace_id"].astype(str) + "/" + part["span_id"].astype(str)
    parents = pd.Series(part["service"].astype(str).to_numpy(), index=ids.to_numpy())
    parents = parents[~parents.index.duplicated()]
    wanted = (part["trace_id"].astype(str) + "/" + part["parent_id"].astype(str)).to_numpy()
    client = parents.reindex(wanted).to_numpy(dtype=object)
    server = part["service"].to_numpy(dtype=object)
    edge = pd.notna(client) & (client != server)
    frame = pd.DataFrame({"client": client[edge], "server": server[edge],
                          "start": part["start_us"].to_numpy(dtype="float64")[edge]})
    lines = []
    for (c, s), rows in frame.groupby(["client", "server"], sort=True):
        seen = np.searchsorted(np.sort(rows["start"].to_numpy()), t_us, side="left")
        lines += [f'{family}_total{{client="{_om_label(str(c))}",server="{_om_label(str(s))}"}} {n} {t}'
                  for t, n in zip(times, seen, strict=True)]
    return lines


def join_openmetrics(out: Path, *parts: Path) -> Path:
    """One OpenMetrics file of several (each one's ``# EOF`` dropped, one at the end)."""
    with out.open("w", encoding="utf-8") as sink:
        for part in parts:
            for line in part.read_text(encoding="utf-8").splitlines():
                if line.strip() != "# EOF":
                    sink.write(line + "\n")
        sink.write("# EOF\n")
    return out


# --------------------------------------------------------------------------------------------
# the server


def missing_binaries() -> list[str]:
    return [name for name in ("prometheus", "promtool") if shutil.which(name) is None]


def require_binaries() -> None:
    """Skip (or fail, with ``THINKFL_REQUIRE_PROMETHEUS=1``) when the binaries are missing."""
    missing = missing_binaries()
    if not missing:
        return
    reason = (f"{' and '.join(missing)} not found on PATH: install the real server "
              "(apt-get install -y --no-install-recommends prometheus)")
    if os.environ.get("THINKFL_REQUIRE_PROMETHEUS") == "1":
        pytest.fail(f"{reason}; THINKFL_REQUIRE_PROMETHEUS=1 requires it")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RealPrometheus:
    """``with RealPrometheus(openmetrics_file) as prom: prom.url`` — a backfilled live server."""

    def __init__(self, openmetrics: Path | None = None, workdir: Path | None = None,
                 ready_timeout_s: float = 30.0) -> None:
        self.openmetrics = openmetrics
        self.ready_timeout_s = ready_timeout_s
        self._own_dir = workdir is None
        self.workdir = workdir
        self.url = ""
        self.backfill_s = 0.0
        self.startup_s = 0.0
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        require_binaries()
        self.workdir = self.workdir or Path(tempfile.mkdtemp(prefix="thinkfl-prometheus-"))
        tsdb = self.workdir / "tsdb"
        tsdb.mkdir(parents=True, exist_ok=True)
        try:
            if self.openmetrics is not None:
                self._backfill(self.openmetrics, tsdb)
            self._start(tsdb)
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._cleanup()

    def _backfill(self, source: Path, tsdb: Path) -> None:
        started = time.monotonic()
        done = subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(tsdb)],
            capture_output=True, text=True, timeout=600, check=False)
        self.backfill_s = time.monotonic() - started
        if done.returncode != 0:
            raise RuntimeError(f"promtool backfill of {source} failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-2000:]}")

    def _start(self, tsdb: Path) -> None:
        assert self.workdir is not None
        config = self.workdir / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1m\nscrape_configs: []\n", encoding="utf-8")
        log_path = self.workdir / "prometheus.log"
        for _ in range(3):  # the free port may be taken between probe and bind
            port = _free_port()
            started = time.monotonic()
            with log_path.open("wb") as log:
                self._proc = subprocess.Popen(
                    ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tsdb}",
                     "--storage.tsdb.retention.time=100y",
                     f"--web.listen-address=127.0.0.1:{port}"],
                    stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
            self.url = f"http://127.0.0.1:{port}"
            if self._wait_ready(log_path):
                self.startup_s = time.monotonic() - started
                return
            text = log_path.read_text(errors="replace")
            self._stop()
            if "address already in use" not in text:
                raise RuntimeError(f"prometheus did not become ready: {text.strip()[-2000:]}")
        raise RuntimeError("prometheus could not bind a free port on 127.0.0.1")

    def _wait_ready(self, log_path: Path) -> bool:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.02)
        return False

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def _cleanup(self) -> None:
        self._stop()
        if self._own_dir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
