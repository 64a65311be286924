"""One incident's log queries against the Loki stand-in: requests, lines and wall time.

The stand-in runs in its own process (no shared GIL, as a real Loki) with ~10 ms latency per
request and Loki's 5000-entry cap. The lines are TrainTicket 2023-01-29's (Nezha ``log/``, one
minute file after another on a contiguous timeline) when ../shared is there, else synthetic
lines at the same volume (~1850 a minute). The incident reads 30 min of history and a 3 min
window, first from a Loki without the pattern ingester, then from one with it. Usage:
    python bench/live_logs.py [../shared/datasets/nezha/rca_data/2023-01-29] [latency s]
Target: at most 40 requests and under 2 s per incident.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.background import in_own_process
from tests.fakes.loki_api import LokiApiServer

from thinkfl_operator.config.settings import LogsSettings
from thinkfl_operator.telemetry.loglines import covered_seconds
from thinkfl_operator.telemetry.loki import LokiLogs
from thinkfl_operator.telemetry.naming import service_of_pod

DAY = Path(__file__).resolve().parents[2] / "shared/datasets/nezha/rca_data/2023-01-29"
T0 = 1_674_982_800  # 2023-01-29 09:00 UTC
MINUTES = 33
PER_MINUTE = 1850


def dataset_lines(day: Path) -> pd.DataFrame:
    """The day's minute files laid one after another from T0 (their own offsets kept)."""
    frames = []
    for k, path in enumerate(sorted((day / "log").glob("*_log.csv"))[:MINUTES]):
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [row for r in csv.DictReader(handle) if (row := _row(r)) is not None]
        times = np.array([r[0] for r in rows], dtype=np.int64)
        offset = (times - times.min()) % (60 * 10**9)
        frames.append(pd.DataFrame({"time_ns": (T0 + 60 * k) * 10**9 + offset,
                                    "pod": [r[1] for r in rows], "line": [r[2] for r in rows]}))
    return _finish(pd.concat(frames, ignore_index=True))


def _row(record: dict[str, str]) -> tuple[int, str, str] | None:
    """(time, pod, line) of a CSV record; None for a broken one (spliced records exist)."""
    try:
        return int(record["TimeUnixNano"]), record["PodName"], json.loads(record["Log"])["log"]
    except (ValueError, KeyError, TypeError):
        return None


def synthetic_lines() -> pd.DataFrame:
    n = MINUTES * PER_MINUTE
    pods = [f"ts-{name}-service-5dc8d4f9fd-{i:05d}" for i, name in
            enumerate(("order", "seat", "basic", "travel", "config", "route", "station"))]
    return _finish(pd.DataFrame({
        "time_ns": T0 * 10**9 + np.arange(n, dtype=np.int64) * (60 * 10**9 // PER_MINUTE),
        "pod": [pods[i % len(pods)] for i in range(n)],
        "line": [f"09:00:00.000 INFO  c.Ctrl#{i % 50} TraceID: {i:032x} SpanID: {i:016x} "
                 f"[step {i}]" for i in range(n)]}))


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    frame["service"] = frame["pod"].map(service_of_pod)
    frame["trace_id"] = frame["span_id"] = ""
    frame["namespace"], frame["container"] = "train-ticket", "server"
    return frame


def loki_server(frame: pd.DataFrame, patterns: bool, latency_s: float) -> AbstractContextManager[str]:
    """The Loki stand-in in its own process, as a real Loki would be."""
    return in_own_process(lambda: LokiApiServer(frame, ("namespace", "pod", "container"),
                                                patterns=patterns, latency_s=latency_s))


def main() -> None:
    day = Path(sys.argv[1]) if len(sys.argv) > 1 else DAY
    latency_s = float(sys.argv[2]) if len(sys.argv) > 2 else 0.010
    frame = dataset_lines(day) if (day / "log").is_dir() else synthetic_lines()
    source = f"{day.name} lines" if (day / "log").is_dir() else "synthetic lines"
    start, end = T0, T0 + MINUTES * 60
    print(f"{source}: {len(frame)} lines over {MINUTES} min "
          f"({len(frame) / MINUTES:.0f}/min), {latency_s * 1000:.0f} ms per request")
    for patterns in (False, True):
        with loki_server(frame, patterns, latency_s) as url:
            client = LokiLogs(LogsSettings(loki_url=url, history_minutes=30,
                                           service_labels=["service_name", "app"]),
                              "train-ticket")
            started = time.perf_counter()
            batch = client.logs(start, end)
            wall = time.perf_counter() - started
            client.close()
        done = covered_seconds(batch.coverage, start, end)
        print(f"pattern ingester {'on ' if patterns else 'off'}: {batch.requests} requests, "
              f"{len(batch.lines)} lines, {len(batch.patterns)} pattern samples, "
              f"{done / 60:.1f} of {MINUTES} min complete, {wall:.2f} s")
        for note in batch.notes:
            print(f"    {note}")


if __name__ == "__main__":
    main()
