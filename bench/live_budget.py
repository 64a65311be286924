"""A live diagnosis as a new user runs it: no trace ID, no service, only the incident time.

Serves a labeled day's traces from the Jaeger or Tempo query API stand-in (its own process,
every request delayed by ``--latency-ms``, as a real backend's storage would) and its KPIs from
a real Prometheus (Debian package, backfilled), then diagnoses ``--faults`` labeled faults with
the deterministic engine through a fresh LiveStore each, as ``thinkfl diagnose --jaeger-url J
--prometheus-url P --time T`` does. ``--scale K`` replays the day with every trace copied K
times under new trace IDs (K times the span rate). ``--span-metrics otel|tempo`` also backfills
the span metrics a collector (OpenTelemetry spanmetrics connector) or Tempo's metrics-generator
would have written for the day's spans: the live store then reads its baseline from them and
searches no baseline traces. ``--traceql-metrics`` (Tempo) has the stand-in answer TraceQL
metrics queries, the baseline's other source when Prometheus has no span metrics; without
them Tempo's baseline comes from the span sets of its search (``--tempo-baseline traces``: from
fetched traces, as before). Prints, per incident and overall: wall time,
requests to the trace backend and to Prometheus, and whether the top cause is the offline
store's and the injected service. Usage:

    python bench/live_budget.py ../shared/datasets/nezha/rca_data/2023-01-30 \
        [--backend jaeger|tempo] [--latency-ms 8] [--scale 1] [--faults 3] \
        [--span-metrics none|otel|tempo] [--traceql-metrics] [--tempo-baseline auto|span_sets|traces]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.served_day import SPANS_AND_METRICS, served_day

from thinkfl_operator.config.settings import PrometheusSettings, TracesSettings
from thinkfl_operator.core.models import Incident
from thinkfl_operator.engines.heuristic.engine import HeuristicEngine
from thinkfl_operator.evaluation.labels import read_faults
from thinkfl_operator.telemetry.jaeger import JaegerClient
from thinkfl_operator.telemetry.live import open_live
from thinkfl_operator.telemetry.nezha import NezhaStore
from thinkfl_operator.telemetry.prometheus import NEZHA_CATALOG
from thinkfl_operator.telemetry.tempo import TempoClient


def scaled(frame: pd.DataFrame, copies: int) -> pd.DataFrame:
    """The day with every trace copied ``copies`` times under new trace IDs (same times)."""
    if copies <= 1:
        return frame
    parts = []
    for k in range(copies):
        part = frame.copy()
        prefix = f"{k:04x}"
        part["trace_id"] = prefix + part["trace_id"].astype(str).str.slice(4)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("day", type=Path)
    parser.add_argument("--backend", choices=("jaeger", "tempo"), default="jaeger")
    parser.add_argument("--latency-ms", type=float, default=8.0,
                        help="delay the stand-in adds to every request")
    parser.add_argument("--scale", type=int, default=1, help="copies of every trace")
    parser.add_argument("--faults", type=int, default=3, help="how many labeled faults")
    parser.add_argument("--search-limit", type=int, default=TracesSettings().search_limit,
                        help="traces per search near the incident")
    parser.add_argument("--max-requests", type=int, default=TracesSettings().max_requests,
                        help="the trace backend request budget per diagnosis")
    parser.add_argument("--span-metrics", choices=("none", "otel", "tempo"), default="none",
                        help="also backfill the day's span metrics in this naming")
    parser.add_argument("--traceql-metrics", action="store_true",
                        help="the Tempo stand-in answers TraceQL metrics (/api/metrics/query)")
    parser.add_argument("--tempo-baseline", choices=("auto", "span_sets", "traces"), default="auto",
                        help="where Tempo's baseline comes from without span metrics (THINKFL_TRACES__TEMPO_BASELINE)")
    args = parser.parse_args()

    offline = NezhaStore(args.day)
    faults = read_faults(args.day)[: args.faults]
    frame = scaled(offline.spans_between(0, 2**62).frame, args.scale)
    frame = frame.astype({c: str for c in frame.columns if c not in ("start_us", "duration_us")})
    with served_day(args.day, frame, args.backend, args.latency_ms / 1000,
                    args.span_metrics, args.traceql_metrics) as (traces_url, prometheus):
        # Let the stand-in build its search index before the clock runs (a real backend has one).
        first, last = frame["start_us"].min() / 1e6, frame["start_us"].max() / 1e6
        if args.backend == "jaeger":
            JaegerClient(traces_url).search(str(frame["service"].iloc[0]), first, last, limit=1)
        else:
            TempoClient(traces_url).search(first, last, limit=1)
        engine = HeuristicEngine(SPANS_AND_METRICS)
        walls, trace_requests, prom_requests, same, right = [], [], [], 0, 0
        for fault in faults:
            incident = Incident(time_s=fault.time_s)
            expected = engine.diagnose(offline, incident)
            store = open_live(TracesSettings(backend=args.backend, url=traces_url,
                                             max_requests=args.max_requests,
                                             search_limit=args.search_limit,
                                             tempo_baseline=args.tempo_baseline),
                              PrometheusSettings(url=prometheus.url, catalog=NEZHA_CATALOG,
                                                 span_metrics=args.span_metrics != "none"),
                              around_s=fault.time_s)
            started = time.perf_counter()
            result = HeuristicEngine(SPANS_AND_METRICS).diagnose(store, incident)
            walls.append(time.perf_counter() - started)
            assert store.traces is not None and store.prometheus is not None
            trace_requests.append(store.traces.requests)
            prom_requests.append(store.prometheus.requests)
            if args.span_metrics != "none" or args.traceql_metrics:
                assert store.span_baseline is not None, f"span metrics were not read: {result.notes}"
            top = result.root_causes[0].service if result.root_causes else "-"
            same += top == (expected.root_causes[0].service if expected.root_causes else "-")
            right += top == fault.service
            skipped = [n for n in result.notes if "budget" in n]
            print(f"  {fault.time_text} {fault.service:<28} top {top:<28} "
                  f"{walls[-1]:6.2f} s  {store.traces.requests:4d} trace req  "
                  f"{store.prometheus.requests:3d} Prometheus req"
                  + (f"  ({skipped[0]})" if skipped else ""), flush=True)
            store.close()
    print(f"{len(faults)} incidents, {args.backend} stand-in +{args.latency_ms:g} ms per request, "
          f"budget {args.max_requests} requests, "
          f"span rate x{args.scale}, real Prometheus"
          + (f" with span metrics ({args.span_metrics})" if args.span_metrics != "none" else "")
          + (", Tempo with TraceQL metrics" if args.traceql_metrics else "")
          + (f", Tempo baseline {args.tempo_baseline}" if args.backend == "tempo" else "")
          + "; no service, no trace ID given")
    print(f"wall per incident: median {statistics.median(walls):.2f} s, max {max(walls):.2f} s")
    print(f"trace backend requests per incident: max {max(trace_requests)}; "
          f"Prometheus: max {max(prom_requests)}")
    print(f"top cause as offline: {same}/{len(faults)}; top cause = injected: {right}/{len(faults)}")


if __name__ == "__main__":
    main()
