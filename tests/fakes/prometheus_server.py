"""The real Prometheus server (Debian's ``prometheus`` + ``promtool``) with backfilled data.

* ``nezha_to_openmetrics`` turns Nezha metric CSVs (``<pod>_metric.csv``) into OpenMetrics text:
  one gauge family per KPI column, named as ``NEZHA_CATALOG`` expects
  (``nezha_metric_name``), labelled ``pod`` and ``namespace``, plus one ``kube_pod_info`` series
  per pod whose ``node`` label is synthetic (``node-1`` … ``node-4`` by sorted pod index), so
  pod → node works. Sample times are the row's text ``Time`` truncated to whole seconds (UTC,
  zone offset applied), else ``TimeStamp``, exactly as ``NezhaStore`` reads them; a time seen
  twice in one file keeps its first row; NaN values are not written.
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
