"""``thinkfl``: demo, diagnose, evaluate and bench from the command line.

A user error (missing folder, malformed file, bad time) is one line on stderr naming the file or
value, and exit code 2; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from thinkfl_operator.cli import records, render
from thinkfl_operator.cli.files import write_json
from thinkfl_operator.cli.timeparse import iso, parse_time
from thinkfl_operator.diagnosis import ENGINES, diagnose, make_engine
from thinkfl_operator.errors import BackendError, NoEvidence, UserInputError
from thinkfl_operator.evaluation import runner
from thinkfl_operator.evaluation.labels import read_faults
from thinkfl_operator.incident_spec import HEX_ID_PATTERN
from thinkfl_operator.logs import configure_logging
from thinkfl_operator.models import Incident
from thinkfl_operator.settings import Settings, get_settings
from thinkfl_operator.telemetry.live import live_logs, open_live
from thinkfl_operator.telemetry.open import open_dataset
from thinkfl_operator.telemetry.store import Store

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USER_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="thinkfl", description="Localize the root cause of microservice incidents.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser("demo", help="diagnose a bundled synthetic incident (no data, no cluster)")
    demo.add_argument("--fault", default="network_delay", help="network_delay | cpu_contention | return")
    demo.add_argument("--service", default="recommendationservice", help="service to break")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--json", type=Path, metavar="FILE", help="also write the result as JSON")
    demo.add_argument("--operator", action="store_true",
                      help="run the real operator against an in-process Kubernetes API (kmock) and "
                           "print the incident as kubectl get/describe show it")

    diag = sub.add_parser("diagnose", help="diagnose one incident from a dataset folder or live backends")
    diag.add_argument("data_dir", type=Path, metavar="DATA_DIR", nargs="?",
                      help="offline dataset folder (omit with --jaeger-url/--tempo-url)")
    diag.add_argument("--jaeger-url", default=None, metavar="URL", help="Jaeger query, e.g. http://localhost:16686")
    diag.add_argument("--tempo-url", default=None, metavar="URL", help="Tempo, e.g. http://localhost:3200")
    diag.add_argument("--prometheus-url", default=None, metavar="URL",
                      help="Prometheus, e.g. http://localhost:9090 (KPIs for the metrics tool)")
    diag.add_argument("--loki-url", default=None, metavar="URL",
                      help="Grafana Loki, e.g. http://localhost:3100 (log evidence)")
    diag.add_argument("--namespace", default="", help="namespace of the application's pods (Loki stream selector)")
    diag.add_argument("--time", help='incident time, e.g. "2023-01-30 11:51:46" (UTC) or RFC 3339')
    diag.add_argument("--trace-id", default="", help="diagnose this trace")
    diag.add_argument("--service", default="", help="the service that alerted (optional)")
    diag.add_argument("--window", type=float, default=None, metavar="SECONDS",
                      help="seconds after --time searched for anomalous spans")
    diag.add_argument("--engine", default=None, choices=ENGINES)
    _logs_option(diag)
    _llm_options(diag)
    diag.add_argument("--json", type=Path, metavar="FILE", help="write the full result as JSON")

    ev = sub.add_parser("evaluate", help="diagnose every labeled fault of a dataset and score it, "
                                         "or replay exported records (RECORDS.jsonl) through --llm-url")
    ev.add_argument("data_dir", type=Path, metavar="DATA_DIR")
    ev.add_argument("--engine", default=None, choices=ENGINES)
    _logs_option(ev)
    _llm_options(ev)
    ev.add_argument("--json", type=Path, metavar="FILE", help="write one entry per fault as JSON")

    sub.add_parser("run", help="run the Kubernetes operator (settings from THINKFL_* variables)")

    bench = sub.add_parser("bench", help="time and memory of evaluating a dataset folder")
    bench.add_argument("data_dir", type=Path, metavar="DATA_DIR")
    records.add_parsers(sub)
    return parser


def _logs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-logs", action="store_true",
                        help="leave log evidence out (traces and metrics only; THINKFL_LOGS__ENABLED=false)")


def _llm_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--llm-url", default=None, metavar="URL",
                        help="OpenAI-compatible endpoint serving ThinkFL, e.g. http://localhost:8000/v1")
    parser.add_argument("--model", default=None, help="served model name (default ThinkFL)")


def _with_overrides(settings: Settings, args: argparse.Namespace) -> Settings:
    """Command-line LLM options over the environment's settings."""
    update = {k: v for k, v in (("base_url", getattr(args, "llm_url", None)),
                                ("model", getattr(args, "model", None))) if v}
    if update:
        settings = settings.model_copy(update={"llm": settings.llm.model_copy(update=update)})
    logs = {k: v for k, v in (("enabled", False if getattr(args, "no_logs", False) else None),
                              ("loki_url", getattr(args, "loki_url", None))) if v is not None}
    if logs:
        settings = settings.model_copy(update={"logs": settings.logs.model_copy(update=logs)})
    return settings


_TRACE_ID = re.compile(HEX_ID_PATTERN)


def check_arguments(args: argparse.Namespace) -> None:
    """Every flag checked before any work: ``UserInputError`` naming the flag (a diagnosis is
    never run only to fail at the end on a path it cannot write)."""
    window = getattr(args, "window", None)
    if window is not None and not (window > 0 and math.isfinite(window)):
        raise UserInputError(f"--window {window:g}: give the seconds after --time to search, above 0")
    trace_id = (getattr(args, "trace_id", "") or "").strip()
    if trace_id and not _TRACE_ID.match(trace_id):
        raise UserInputError(f"--trace-id {trace_id!r}: a trace ID is 1 to 32 hexadecimal digits")
    target = getattr(args, "json", None)
    if target is not None:
        folder = Path(target).parent
        if not folder.is_dir():
            raise UserInputError(f"--json {target}: no such folder {folder}")
        if not os.access(folder, os.W_OK):
            raise UserInputError(f"--json {target}: the folder {folder} is not writable")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_arguments(args)
        settings = _with_overrides(get_settings(), args)
    except UserInputError as exc:
        sys.stderr.write(f"thinkfl: error: {exc}\n")
        return EXIT_USER_ERROR
    configure_logging(settings.log_level, settings.log_format)
    try:
        return int(_COMMANDS[args.command](args, settings))
    except UserInputError as exc:
        sys.stderr.write(f"thinkfl: error: {exc}\n")
        return EXIT_USER_ERROR
    except NoEvidence as exc:
        sys.stderr.write(f"thinkfl: nothing to diagnose: {exc}\n")
        return 1
    except BackendError as exc:
        sys.stderr.write(f"thinkfl: {exc}\n")
        return 1


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from thinkfl_operator.synthetic import generate

    try:
        incident_data = generate(seed=args.seed, fault=args.fault, service=args.service)
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    if args.operator:
        return _demo_operator(args, incident_data, settings)
    store = incident_data.store()
    incident = Incident(time_s=incident_data.time_s, description="synthetic demo incident")
    started = time.perf_counter()
    result = diagnose(store, incident, "heuristic", settings)
    elapsed = time.perf_counter() - started
    print(f"Synthetic OnlineBoutique-like incident: {incident_data.fault} injected into "
          f"{incident_data.faulty_pod} at {iso(incident_data.time_s)}\n")
    print(render.describe(incident, result, f"synthetic generator (seed {args.seed})"))
    print(f"\nDiagnosed in {elapsed * 1000:.0f} ms. Injected: {incident_data.faulty_service}; "
          f"top-1: {result.top.service if result.top else '-'}")
    if args.json:
        write_json(args.json, result.as_dict())
    return 0


def _demo_operator(args: argparse.Namespace, incident_data: Any, settings: Settings) -> int:
    """The incident as a FailureIncident created through the API, diagnosed by the operator."""
    import asyncio
    from datetime import UTC, datetime

    from thinkfl_operator.incident_view import describe, get_table
    from thinkfl_operator.kube.sandbox import diagnose_one

    name = "checkout-slow"
    spec = {"service": "frontend",
            "time": datetime.fromtimestamp(incident_data.time_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    settings = settings.model_copy(update={"engine": "heuristic"})  # as the plain demo
    obj, events, seconds = asyncio.run(diagnose_one(settings, lambda *_: incident_data.store(), name, spec))
    status = obj.get("status") or {}
    print(f"Synthetic OnlineBoutique-like incident: {incident_data.fault} injected into "
          f"{incident_data.faulty_pod} at {iso(incident_data.time_s)}; the real operator (kopf) "
          "against an in-process Kubernetes API (kmock on 127.0.0.1)\n")
    print(f"$ kubectl create -f -   # FailureIncident {name}, spec {json.dumps(spec)}")
    print("$ kubectl get fi")
    print(get_table([obj], [f"{int(seconds)}s"]))  # AGE: created that long before Diagnosed
    print(f"$ kubectl describe fi {name}")
    print(describe(obj, events))
    print(f"\n{status.get('phase', '?')} {seconds * 1000:.0f} ms after the create. "
          f"Injected: {incident_data.faulty_service}; top cause: {status.get('topCause') or '-'}")
    if args.json:
        write_json(args.json, obj)
    return 0 if status.get("phase") == "Diagnosed" else 1


def cmd_diagnose(args: argparse.Namespace, settings: Settings) -> int:
    if not args.time and not args.trace_id:
        raise UserInputError("give --time or --trace-id")
    incident = Incident(
        time_s=parse_time(args.time) if args.time else None,
        trace_id=args.trace_id.strip(),
        service=args.service.strip(),
        window_s=args.window,
    )
    store, source = _store(args, settings, incident)
    engine = args.engine or settings.engine
    started = time.perf_counter()
    result = diagnose(store, incident, engine, settings)
    elapsed = time.perf_counter() - started
    print(render.describe(incident, result, source))
    print(f"\nDiagnosed in {elapsed * 1000:.0f} ms.")
    if args.json:
        payload = result.as_dict()
        payload["incident"] = {"time": iso(incident.time_s) if incident.time_s else None,
                               "traceID": incident.trace_id, "service": incident.service}
        payload["seconds"] = round(elapsed, 4)
        payload["steps"] = [s.as_dict(with_output=True) for s in result.steps]
        write_json(args.json, payload)
    return 0


def _store(args: argparse.Namespace, settings: Settings, incident: Incident) -> tuple[Store, str]:
    """The offline folder, or the live backends from the flags (over the settings)."""
    live = args.jaeger_url or args.tempo_url or args.prometheus_url or args.loki_url
    if args.data_dir is not None and live:
        raise UserInputError("give either DATA_DIR or live backends "
                             "(--jaeger-url/--tempo-url/--prometheus-url/--loki-url)")
    if args.data_dir is not None:
        return open_dataset(args.data_dir), str(args.data_dir)
    traces = settings.traces
    if args.jaeger_url or args.tempo_url:
        backend = "jaeger" if args.jaeger_url else "tempo"
        traces = traces.model_copy(update={"backend": backend, "url": args.jaeger_url or args.tempo_url})
    prometheus = settings.prometheus
    if args.prometheus_url:
        prometheus = prometheus.model_copy(update={"url": args.prometheus_url})
    logs = live_logs(settings.logs, args.namespace)
    if not traces.url and logs is None and not prometheus.url:
        raise UserInputError("give DATA_DIR, or live backends: --jaeger-url/--tempo-url URL, "
                             "--prometheus-url URL, --loki-url URL")
    if not traces.url and incident.trace_id:
        raise UserInputError("--trace-id needs a tracing backend: --jaeger-url URL or --tempo-url URL")
    store = open_live(traces, prometheus, incident.service, incident.time_s, logs=logs)
    parts = [store.name] if traces.url else []
    parts += [f"Prometheus at {prometheus.url}"] if prometheus.url else []
    parts += [f"Loki at {settings.logs.loki_url}"] if logs is not None else []
    return store, ", ".join(parts)


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    faults = read_faults(args.data_dir)
    store = open_dataset(args.data_dir)
    engine = make_engine(args.engine or settings.engine, settings)
    results = runner.run(store, faults, engine)
    summary = runner.summarize(results)
    print(render.evaluation(results, summary))
    if args.json:
        write_json(args.json, [_entry(r) for r in results])
    return 0


def _entry(result: runner.FaultResult) -> dict[str, Any]:
    entry: dict[str, Any] = {"inject_time": result.fault.time_text, "inject_pod": result.fault.pod or
                             result.fault.service, "ranked": []}
    if result.diagnosis is None:
        entry["error" if result.error else "skipped"] = result.error or result.skipped
        return entry
    entry["ranked"] = [{"service": c.service, "pod": c.pod, "node": c.node, "score": c.score}
                       for c in result.diagnosis.root_causes]
    entry["traces"] = list(result.diagnosis.traces)
    entry["logEvidence"] = list(result.diagnosis.log_evidence)
    return entry


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from thinkfl_operator.evaluation.bench import bench_dataset

    print(bench_dataset(args.data_dir, settings))
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from thinkfl_operator.kubeapi.client import api_client

    try:  # before kopf starts: it would print six tracebacks and go on retrying
        api_client()
    except BackendError as exc:
        raise UserInputError(f"run needs a cluster: {exc}. Run it in a pod, or point KUBECONFIG at a "
                             f"cluster (thinkfl demo --operator needs none)") from None
    from thinkfl_operator import kube  # registers the handlers on kopf's default registry

    kube.run(settings)
    return 0


_COMMANDS = {"run": cmd_run, "demo": cmd_demo, "diagnose": cmd_diagnose,
             "evaluate": records.replaying(cmd_evaluate), "bench": cmd_bench,
             "export": records.cmd_export, "report": records.cmd_report}


if __name__ == "__main__":
    raise SystemExit(main())
