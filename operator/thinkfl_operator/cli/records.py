"""``thinkfl export``, ``thinkfl report`` and ``thinkfl evaluate RECORDS.jsonl``.

Confirmed incidents come from the cluster (the kubeconfig's, or the pod's service account) or,
with ``--from``, from files and folders of ``kubectl get fi -o yaml`` / ``-o json`` output
(single objects, ``List`` kinds, multi-document YAML) and of exported ``.jsonl`` rows.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from thinkfl_operator.cli.files import write_json
from thinkfl_operator.cli.render import table
from thinkfl_operator.errors import UserInputError
from thinkfl_operator.evaluation.scores import AccuracyRow, accuracy_table
from thinkfl_operator.feedback.export import (
    diagnosis_record,
    read_jsonl,
    records_from_objects,
    write_jsonl,
)
from thinkfl_operator.feedback.record import InvalidRecord
from thinkfl_operator.feedback.redact import redact
from thinkfl_operator.feedback.report import (
    merge,
    ranks_from_objects,
    ranks_from_records,
    replayed_ranks,
)
from thinkfl_operator.settings import Settings

Command = Callable[[argparse.Namespace, Settings], int]
#: Files a folder given to --from is searched for.
SUFFIXES = (".yaml", ".yml", ".json", ".jsonl")


def add_parsers(sub: Any) -> None:
    """The ``export`` and ``report`` subcommands (``sub`` is the parser's subparsers)."""
    export = sub.add_parser("export", help="write confirmed incidents as training and evaluation "
                                           "records (JSONL, the OpenRLHF prompt format)")
    export.add_argument("--out", type=Path, required=True, metavar="FILE.jsonl",
                        help="where to write one row per confirmed incident (replaced if it exists)")
    _source_options(export)
    export.add_argument("--redact", action="store_true",
                        help="replace pod, service and node names by salted hashes (needs --salt)")
    export.add_argument("--salt", default=None, metavar="SALT",
                        help="secret of the hashes; the same salt gives the same names in every export")
    report = sub.add_parser("report", help="R@1, R@3 and MRR by engine over confirmed incidents")
    _source_options(report)


def _source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="sources", type=Path, nargs="+", action="extend",
                        metavar="DIR_OR_FILE", help="kubectl get fi -o yaml/json output, or exported "
                                                    ".jsonl records, instead of the cluster")
    parser.add_argument("--namespace", default=None, metavar="NS",
                        help="only incidents of this namespace, in the cluster or in --from "
                             "objects (default: all)")


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    if args.redact != bool(args.salt):
        raise UserInputError("--redact and --salt SALT go together (keep the salt secret, and "
                             "reuse it so names match across exports)")
    objects, rows = _incidents(args)
    exported, skipped = records_from_objects(objects)
    exported += rows
    if args.redact:
        exported = [redact(row, args.salt) for row in exported]
    write_jsonl(args.out, exported)
    print(f"{len(exported)} records written to {args.out}" + (f"; skipped: {_counts(skipped)}" if skipped else ""))
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    objects, rows = _incidents(args)
    accuracy = accuracy_table(merge(ranks_from_objects(objects), ranks_from_records(rows)))
    if not accuracy:
        print("no confirmed and graded incidents")
        return 0
    print(_accuracy_text(accuracy, "CONFIRMED"))
    return 0


def replaying(evaluate_dataset: Command) -> Command:
    """``evaluate``: a ``.jsonl`` file of records is replayed, anything else is a dataset."""

    def evaluate(args: argparse.Namespace, settings: Settings) -> int:
        if args.data_dir.suffix != ".jsonl":
            return evaluate_dataset(args, settings)
        return cmd_evaluate_records(args, settings)

    return evaluate


def cmd_evaluate_records(args: argparse.Namespace, settings: Settings) -> int:
    """Each record replayed through the model at ``--llm-url``; its ranks and the recorded
    answers' against the same labels."""
    if args.engine:
        raise UserInputError("--engine does not apply to records: they are replayed through the "
                             "model at --llm-url")
    if not settings.llm.base_url:
        raise UserInputError("records are replayed through a model: give --llm-url URL "
                             "(or THINKFL_LLM__BASE_URL)")
    results, skipped = replayed_ranks(read_jsonl(args.data_dir), settings)
    if skipped:
        print(f"not replayed: {_counts(skipped)}")
    if not results:
        print("no record could be replayed")
        return 0
    print("\n".join(table([["RECORD", "TRUE CAUSE", "RECORDED", "REPLAYED"],
                           *[[r.id, r.truth, _rank(r.recorded), _rank(r.replayed)] for r in results]], "")))
    ranks = {"recorded": [r.recorded for r in results],
             f"replayed ({settings.llm.model})": [r.replayed for r in results]}
    print("\n" + _accuracy_text(accuracy_table(ranks), "RECORDS"))
    if args.json:
        write_json(args.json, [r.as_dict() for r in results])
    return 0


def _incidents(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """FailureIncident objects and exported rows, from --from or else the cluster."""
    if not args.sources:
        from thinkfl_operator.kube.objects import list_incidents

        return list_incidents(args.namespace), []
    objects, rows = read_sources(args.sources)
    if args.namespace:
        objects = [o for o in objects if (o.get("metadata") or {}).get("namespace") == args.namespace]
    return objects, rows


def read_sources(paths: Sequence[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """FailureIncidents in YAML/JSON files, and rows in ``.jsonl`` files; folders are searched
    for those suffixes. Other kinds of objects are ignored."""
    objects: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for path in _files(paths):
        if path.suffix == ".jsonl":
            rows += _rows_in(path)
        else:
            objects += [o for o in _documents(path) if o.get("kind") == "FailureIncident"]
    return objects, rows


def _rows_in(path: Path) -> list[dict[str, Any]]:
    """Exported rows, each checked to hold a readable diagnosis record."""
    rows = read_jsonl(path)
    for number, row in enumerate(rows, 1):
        try:
            diagnosis_record(row)
        except InvalidRecord as exc:
            raise UserInputError(f"{path}: record {number} ({row.get('id', 'no id')}): {exc}") from None
    return rows


def _files(paths: Sequence[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        elif path.is_file():
            yield path
        else:
            raise UserInputError(f"{path}: no such file or folder")


def _documents(path: Path) -> Iterator[dict[str, Any]]:
    """Every object of a YAML or JSON file, ``List`` kinds opened."""
    try:
        text = path.read_text(encoding="utf-8")
        documents = [json.loads(text)] if path.suffix == ".json" else list(yaml.safe_load_all(text))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    except (ValueError, yaml.YAMLError) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserInputError(f"{path}: not {'JSON' if path.suffix == '.json' else 'YAML'}: {problem}") from None
    for document in documents:
        if isinstance(document, dict) and isinstance(document.get("items"), list):
            yield from (item for item in document["items"] if isinstance(item, dict))
        elif isinstance(document, dict):
            yield document


def _accuracy_text(rows: list[AccuracyRow], count: str) -> str:
    lines = [["ENGINE", count, "R@1", "R@3", "MRR"]]
    lines += [[r["engine"], str(r["count"]), f"{r['r1']:.2%}", f"{r['r3']:.2%}", f"{r['mrr']:.4f}"]
              for r in rows]
    return "\n".join(table(lines, ""))


def _counts(skipped: Mapping[str, int]) -> str:
    """``"1 invalid record, 2 unconfirmed"``."""
    return ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))


def _rank(rank: int | None) -> str:
    return str(rank) if rank else "miss"

