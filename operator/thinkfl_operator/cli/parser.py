"""The arguments of every ``thinkfl`` command, and nothing heavy.

Building the parser imports no engine, no pandas, no openai and no kopf, so ``thinkfl --help``
and ``thinkfl run --help`` answer at once; what only a help page needs (the settings ``run``
reads, the installed version) is looked up when that page is printed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from thinkfl_operator.incident.spec import ENGINES

EXIT_USER_ERROR = 2
#: Where ``thinkfl export --redact`` reads its salt when ``--salt`` is not given.
SALT_ENV = "THINKFL_EXPORT_SALT"
DISTRIBUTION = "thinkfl-operator"


class _Parser(argparse.ArgumentParser):
    #: Text appended to the help page, computed only when the page is printed.
    epilog_factory: Callable[[], str] | None = None

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USER_ERROR)

    def format_help(self) -> str:
        if self.epilog_factory is not None:
            self.epilog = self.epilog_factory()
        return super().format_help()


class _Version(argparse.Action):
    """``--version``: the installed distribution's version, read only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **_: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> NoReturn:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version(DISTRIBUTION)
        except PackageNotFoundError:
            text = "unknown (not installed)"
        sys.stdout.write(f"thinkfl {text}\n")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="thinkfl", description="Localize the root cause of microservice incidents.")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser("demo", help="diagnose a bundled synthetic incident (no data, no cluster)")
    demo.add_argument("--fault", default="network_delay", help="network_delay | cpu_contention | return")
    demo.add_argument("--service", default="recommendationservice", help="service to break")
    demo.add_argument("--seed", type=int, default=7,
                      help="seed of the synthetic incident: the same seed gives the same spans, "
                           "metrics and answer (default: 7)")
    demo.add_argument("--json", type=Path, metavar="FILE", help="also write the result as JSON")
    demo.add_argument("--operator", action="store_true",
                      help="run the real operator against an in-process Kubernetes API (kmock) and "
                           "print the incident as kubectl get/describe show it")
    demo.add_argument("--serve", type=Path, metavar="KUBECONFIG",
                      help="as --operator, then keep the API and the operator running for kubectl: "
                           "write a kubeconfig to KUBECONFIG, stop on Ctrl-C")

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
    _engine_option(diag)
    _logs_option(diag)
    _llm_options(diag)
    diag.add_argument("--json", type=Path, metavar="FILE", help="write the full result as JSON")

    ev = sub.add_parser("evaluate", help="diagnose every labeled fault of a dataset and score it, "
                                         "or replay exported records (RECORDS.jsonl) through --llm-url")
    ev.add_argument("data_dir", type=Path, metavar="DATA_DIR")
    _engine_option(ev)
    _logs_option(ev)
    _llm_options(ev)
    ev.add_argument("--json", type=Path, metavar="FILE", help="write one entry per fault as JSON")
    _jobs_option(ev)

    run = sub.add_parser(
        "run", help="run the Kubernetes operator (settings from THINKFL_* variables)",
        description="Run the Kubernetes operator: watch FailureIncidents and diagnose each one.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run.epilog_factory = settings_help

    bench = sub.add_parser("bench", help="time and memory of evaluating a dataset folder")
    bench.add_argument("data_dir", type=Path, metavar="DATA_DIR")
    _jobs_option(bench)
    _records_parsers(sub)
    return parser


def _engine_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", default=None, choices=ENGINES,
                        help="heuristic: deterministic, no GPU; thinkfl: the ThinkFL model at "
                             "--llm-url; auto: ThinkFL, the deterministic engine when it fails "
                             "(default: THINKFL_ENGINE)")


def _jobs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=_positive_int, default=None, metavar="N",
                        help="diagnose the faults in N processes forked after the data is loaded "
                             "(default: one per CPU, at most 4; the deterministic engine only)")


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def _logs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-logs", action="store_true",
                        help="leave log evidence out (traces and metrics only; THINKFL_LOGS__ENABLED=false)")


def _llm_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--llm-url", default=None, metavar="URL",
                        help="OpenAI-compatible endpoint serving ThinkFL, e.g. http://localhost:8000/v1")
    parser.add_argument("--model", default=None, help="served model name (default ThinkFL)")


def _records_parsers(sub: Any) -> None:
    """The ``export`` and ``report`` subcommands (``sub`` is the parser's subparsers)."""
    export = sub.add_parser("export", help="write confirmed incidents as training and evaluation "
                                           "records (JSONL, the OpenRLHF prompt format)")
    export.add_argument("--out", type=Path, required=True, metavar="FILE.jsonl",
                        help="where to write one row per confirmed incident (replaced if it exists)")
    _source_options(export)
    export.add_argument("--redact", action="store_true",
                        help=f"replace pod, service, node and operation names by salted hashes "
                             f"(needs --salt or {SALT_ENV})")
    export.add_argument("--salt", default=None, metavar="SALT",
                        help=f"secret of the hashes (default: ${SALT_ENV}, which keeps it out of "
                             f"the shell history); the same salt gives the same names in every export")
    report = sub.add_parser("report", help="R@1, R@3 and MRR by engine over confirmed incidents")
    _source_options(report)


def _source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="sources", type=Path, nargs="+", action="extend",
                        metavar="DIR_OR_FILE", help="kubectl get fi -o yaml/json output, or exported "
                                                    ".jsonl records, instead of the cluster")
    parser.add_argument("--namespace", default=None, metavar="NS",
                        help="only incidents of this namespace, in the cluster or in --from "
                             "objects and records (default: all)")


def settings_help() -> str:
    """What ``run`` reads: every setting with its default and meaning, from the settings object
    (the same generator as the README's configuration table)."""
    from thinkfl_operator.config.reference import rows
    from thinkfl_operator.config.settings import SECRETS_DIR, Settings

    width = max(40, min(shutil.get_terminal_size().columns, 100) - 2)
    where = (f"settings: environment variables, or files of the same names in {SECRETS_DIR} "
             "(README, Configuration). The Kubernetes API: the pod's service account, else "
             "KUBECONFIG or ~/.kube/config.")
    lines = [*textwrap.wrap(where, width + 2), ""]
    for variable, default, meaning in rows(Settings):
        lines.append(f"  {variable}={default}")
        lines += textwrap.wrap(meaning, width, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)
