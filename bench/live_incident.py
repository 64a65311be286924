"""TrainTicket incidents through the live backends against the offline store, in one run.

Serves the day's traces with the Jaeger query API fake and its KPIs from a real Prometheus
(Debian package, backfilled), then diagnoses every labeled fault with the deterministic engine
through a fresh LiveStore per incident (as the operator does) and through the offline store.
Prints latency p50/p95 and HTTP requests per incident. Usage:
    python bench/live_incident.py ../shared/datasets/nezha/rca_data/2023-01-30 [jaeger|tempo]
        [traces per slice near the incident] [traces per baseline slice]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.served_day import SPANS_AND_METRICS, served_day

from thinkfl_operator.config.settings import PrometheusSettings, TracesSettings
from thinkfl_operator.core.models import Incident
from thinkfl_operator.engines.heuristic.engine import HeuristicEngine
from thinkfl_operator.evaluation.labels import read_faults
from thinkfl_operator.telemetry.jaeger import JaegerClient
from thinkfl_operator.telemetry.live import open_live
from thinkfl_operator.telemetry.naming import service_of_pod
from thinkfl_operator.telemetry.nezha import NezhaStore
from thinkfl_operator.telemetry.prometheus import NEZHA_CATALOG, PrometheusMetrics

ENTRY = "ts-gateway-service"  # the alerting (entry) service


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main(day: Path, backend: str, limit: int, baseline: int) -> None:
    offline = NezhaStore(day)
    faults = read_faults(day)
    frame = offline.spans_between(0, 2**62).frame
    with served_day(day, frame, backend) as (traces_url, prometheus):
        live_s, offline_s, requests, same, top = [], [], [], 0, 0
        engine = HeuristicEngine(SPANS_AND_METRICS)
        engine.diagnose(offline, Incident(time_s=faults[0].time_s, service=ENTRY))  # load once
        # Let the fake encode every trace once (a real Jaeger's cost is not ours to measure).
        first, last = frame["start_us"].min() / 1e6, frame["start_us"].max() / 1e6
        JaegerClient(traces_url, max_bytes=2**30).search(ENTRY, first, last, limit=100_000) \
            if backend == "jaeger" else None
        # Touch every series once, so no incident pays the server's first reads of its blocks.
        warm = PrometheusMetrics(prometheus.url, NEZHA_CATALOG)
        warm.blocks(warm.pods(first - 3600, last + 3600, service_of_pod), first - 3600, last + 3600)
        for fault in faults:
            incident = Incident(time_s=fault.time_s, service=ENTRY)
            started = time.perf_counter()
            expected = engine.diagnose(offline, incident)
            offline_s.append(time.perf_counter() - started)
            store = open_live(TracesSettings(backend=backend, url=traces_url, search_limit=limit, baseline_limit=baseline),
                              PrometheusSettings(url=prometheus.url, catalog=NEZHA_CATALOG),
                              service=ENTRY, around_s=fault.time_s)
            started = time.perf_counter()
            result = HeuristicEngine(SPANS_AND_METRICS).diagnose(store, incident)
            live_s.append(time.perf_counter() - started)
            print(f"  {fault.time_text} live {live_s[-1] * 1e3:.0f} ms", flush=True)
            assert store.traces is not None and store.prometheus is not None
            requests.append((store.traces.requests, store.prometheus.requests))
            same += [c.service for c in result.root_causes] == [c.service for c in expected.root_causes]
            top += result.root_causes[0].service == fault.service
    print(f"{len(faults)} incidents, live backend {backend} + Prometheus (localhost test servers), "
          f"search limit {limit} traces per slice near the incident, "
          f"{baseline} per baseline slice")
    print(f"live:    p50 {statistics.median(live_s) * 1e3:.0f} ms, p95 {p95(live_s) * 1e3:.0f} ms, "
          f"max {max(live_s) * 1e3:.0f} ms")
    print(f"offline: p50 {statistics.median(offline_s) * 1e3:.0f} ms, p95 {p95(offline_s) * 1e3:.0f} ms "
          "(store already loaded)")
    print(f"HTTP requests per incident: traces median {statistics.median(r[0] for r in requests):.0f}, "
          f"Prometheus median {statistics.median(r[1] for r in requests):.0f}")
    print(f"same ranked services live and offline: {same}/{len(faults)}; "
          f"live top-1 = injected service: {top}/{len(faults)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "jaeger",
         int(sys.argv[3]) if len(sys.argv) > 3 else TracesSettings().search_limit,
         int(sys.argv[4]) if len(sys.argv) > 4 else TracesSettings().baseline_limit)
