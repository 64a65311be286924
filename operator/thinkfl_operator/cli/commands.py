"""The bodies of the ``thinkfl`` commands (``cli.main`` imports this module only once the
arguments are read, so that ``--help`` never waits for engines, pandas or openai)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from thinkfl_operator.cli import records, render
from thinkfl_operator.cli.files import write_json
from thinkfl_operator.cli.timeparse import iso, parse_time
from thinkfl_operator.cli.waits import shown_waits
from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.errors import BackendError, UserInputError
from thinkfl_operator.core.models import Incident
from thinkfl_operator.engines.diagnose import diagnose, make_engine
from thinkfl_operator.evaluation import runner
from thinkfl_operator.evaluation.labels import read_faults
from thinkfl_operator.telemetry.live import live_logs, open_live
from thinkfl_operator.telemetry.open import open_dataset
from thinkfl_operator.telemetry.store import Store


def with_overrides(settings: Settings, args: argparse.Namespace) -> Settings:
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


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from thinkfl_operator.demo.synthetic import generate

    try:
        incident_data = generate(seed=args.seed, fault=args.fault, service=args.service)
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    if args.operator or args.serve:
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

    from thinkfl_operator.incident.view import describe, get_table
    from thinkfl_operator.kube.sandbox import diagnose_one

    name = "checkout-slow"
    spec = {"service": "frontend",
            "time": datetime.fromtimestamp(incident_data.time_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    settings = settings.model_copy(update={"engine": "heuristic"})  # as the plain demo
    if args.serve:
        return asyncio.run(_serve(settings, incident_data, name, spec, args.serve))
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


async def _serve(settings: Settings, incident_data: Any, name: str, spec: dict[str, str], path: Path) -> int:
    """``demo --operator --serve``: the incident diagnosed, then the API kept for kubectl."""
    import asyncio
    import signal

    from thinkfl_operator.kube.sandbox import sandbox
    from thinkfl_operator.kube.sandbox_api import kubeconfig

    async with sandbox(settings, lambda *_: incident_data.store()) as cluster:
        await cluster.create(name, spec)
        status = (await cluster.wait(name)).get("status") or {}
        path.write_text(kubeconfig(cluster.url), "utf-8")
        print(f"Synthetic OnlineBoutique-like incident: {incident_data.fault} injected into "
              f"{incident_data.faulty_pod}; the real operator (kopf) against an in-process "
              f"Kubernetes API (kmock) at {cluster.url}\n\nFailureIncident {name}: "
              f"{status.get('phase')}, top cause {status.get('topCause') or '-'}. Every incident "
              "created here is diagnosed against the same synthetic data. Ctrl-C stops it.\n\n"
              f"export KUBECONFIG={path.resolve()}\nkubectl get fi\nkubectl describe fi {name}",
              flush=True)
        stopped = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):  # over kopf's, which would stop only kopf
            asyncio.get_running_loop().add_signal_handler(signum, stopped.set)
        await stopped.wait()
    return 0


def cmd_diagnose(args: argparse.Namespace, settings: Settings) -> int:
    if not args.time and not args.trace_id:
        raise UserInputError("give --time or --trace-id")
    incident = Incident(
        time_s=parse_time(args.time) if args.time else None,
        trace_id=args.trace_id.strip(),
        service=args.service.strip(),
        window_s=args.window,
    )
    with shown_waits():  # on a terminal: which backend a request has waited on over 2 s
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
    logs = live_logs(settings.logs, args.namespace, settings.tls)
    if not traces.url and logs is None and not prometheus.url:
        raise UserInputError("give DATA_DIR, or live backends: --jaeger-url/--tempo-url URL, "
                             "--prometheus-url URL, --loki-url URL")
    if not traces.url and incident.trace_id:
        raise UserInputError("--trace-id needs a tracing backend: --jaeger-url URL or --tempo-url URL")
    store = open_live(traces, prometheus, incident.service, incident.time_s, logs=logs,
                      tls=settings.tls)
    parts = [store.name] if traces.url else []
    parts += [f"Prometheus at {prometheus.url}"] if prometheus.url else []
    parts += [f"Loki at {settings.logs.loki_url}"] if logs is not None else []
    return store, ", ".join(parts)


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    faults = read_faults(args.data_dir)
    store = open_dataset(args.data_dir)
    engine = make_engine(args.engine or settings.engine, settings)
    rows = render.EvaluationTable(faults, {store.service_of(pod) for pod in store.metric_pods()})
    print(rows.header(), flush=True)  # each row as its fault is diagnosed, the summary at the end
    results = runner.run(store, faults, engine, on_result=lambda result: print(rows.row(result), flush=True),
                         jobs=args.jobs or runner.default_jobs())
    print(render.evaluation_summary(results, runner.summarize(results)))
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

    print(bench_dataset(args.data_dir, settings, jobs=args.jobs or runner.default_jobs()))
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from thinkfl_operator.kubeapi.client import api_client

    try:  # before kopf starts: it would print six tracebacks and go on retrying
        api_client()
    except BackendError as exc:
        raise UserInputError(f"run needs a cluster: {exc}. Run it in a pod, or point KUBECONFIG at a "
                             f"cluster (thinkfl demo --operator needs none)") from None
    from thinkfl_operator import kube

    kube.run(settings)  # the handlers on a registry of its own, its clients closed at the end
    return 0


COMMANDS: dict[str, records.Command] = {
    "run": cmd_run, "demo": cmd_demo, "diagnose": cmd_diagnose,
    "evaluate": records.replaying(cmd_evaluate), "bench": cmd_bench,
    "export": records.cmd_export, "report": records.cmd_report}
