"""``thinkfl export``, ``thinkfl report`` and ``thinkfl evaluate RECORDS.jsonl``.

Confirmed incidents come from the cluster (the kubeconfig's, or the pod's service account) or,
with ``--from``, from files and folders of ``kubectl get fi -o yaml`` / ``-o json`` output
(single objects, ``List`` kinds, multi-document YAML) and of exported ``.jsonl`` rows, each
incident counted once (``feedback.sources``). An incident's record is read from the ConfigMap it
owns (``feedback.home``): from the cluster, or from the files' ConfigMaps (``kubectl get cm -l
thinkfl.dev/record -o yaml``); ``status.record`` as older versions wrote it is read as is.
Every row read is checked before anything is done: a bad one is one line naming the file, the
line and the problem.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from thinkfl_operator.cli.files import write_json
from thinkfl_operator.cli.parser import SALT_ENV
from thinkfl_operator.cli.render import table
from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.errors import UserInputError
from thinkfl_operator.evaluation.scores import AccuracyRow, accuracy_table
from thinkfl_operator.feedback.export import (
    is_confirmed,
    read_numbered,
    records_from_objects,
    write_jsonl,
)
from thinkfl_operator.feedback.home import configmaps_by_name, inline_records
from thinkfl_operator.feedback.redact import redact
from thinkfl_operator.feedback.report import (
    Replayed,
    merge,
    ranks_from_objects,
    ranks_from_records,
    replayed_ranks,
)
from thinkfl_operator.feedback.rows import Checked, check_row, rebuilt
from thinkfl_operator.feedback.sources import Selected, select

Command = Callable[[argparse.Namespace, Settings], int]
#: Files a folder given to --from is searched for.
SUFFIXES = (".yaml", ".yml", ".json", ".jsonl")


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    salt = _salt(args)
    chosen = _incidents(args, skip=args.out, records=True)
    exported, skipped = records_from_objects(chosen.objects)
    exported += [rebuilt(checked) for checked in chosen.rows]
    if chosen.duplicates:
        skipped["duplicate"] += chosen.duplicates
    if salt is not None:
        exported = [redact(row, salt) for row in exported]
    write_jsonl(args.out, exported)
    print(f"{len(exported)} records written to {args.out}" + (f"; skipped: {_counts(skipped)}" if skipped else ""))
    return 0


def _salt(args: argparse.Namespace) -> str | None:
    """The salt when redacting, else None. ``THINKFL_EXPORT_SALT`` is read here, not in the
    operator's settings: it is a secret of this one command, which the operator never holds."""
    if args.salt and not args.redact:
        raise UserInputError("--salt is only used with --redact")
    salt = args.salt or os.environ.get(SALT_ENV, "")
    if args.redact and not salt:
        raise UserInputError(f"--redact needs a salt: --salt SALT or {SALT_ENV} (keep it secret, "
                             "and reuse it so names match across exports)")
    return salt if args.redact else None


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    chosen = _incidents(args)
    rows = [rebuilt(checked) for checked in chosen.rows]  # graded again: every row has a grade
    accuracy = accuracy_table(merge(ranks_from_objects(chosen.objects), ranks_from_records(rows)))
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
    answers' against the same labels (every row checked first)."""
    if args.engine:
        raise UserInputError("--engine does not apply to records: they are replayed through the "
                             "model at --llm-url")
    rows = checked_rows(args.data_dir)
    if not settings.llm.base_url:
        raise UserInputError("records are replayed through a model: give --llm-url URL "
                             "(or THINKFL_LLM__BASE_URL)")
    if not rows:
        raise UserInputError(f"{args.data_dir}: no records in the file")
    results = replayed_ranks(rows, settings)
    print(_replayed_text(results, settings.llm.model))
    if args.json:
        write_json(args.json, [r.as_dict() for r in results])
    return 0


def _replayed_text(results: list[Replayed], model: str) -> str:
    """Rank by rank, a note when padding was left out, then the accuracy of each side."""
    lines = table([["RECORD", "TRUE CAUSE", "ENGINE", "RECORDED", "REPLAYED"],
                   *[[r.id, r.truth, r.engine, _rank(r.recorded), _rank(r.replayed)]
                     for r in results]], "")
    padding = sum(r.padding for r in results)
    if padding:
        lines += ["", (f"RECORDED ranks the entries the engine named; the {padding} padding "
                       "entries production added after shorter model answers are left out, as a "
                       "replay adds none.")]
    ranks: dict[str, list[int | None]] = {}
    for r in results:
        ranks.setdefault(f"recorded ({r.engine})", []).append(r.recorded)
    ranks[f"replayed ({model})"] = [r.replayed for r in results]
    return "\n".join([*lines, "", _accuracy_text(accuracy_table(ranks), "RECORDS")])


def _incidents(args: argparse.Namespace, skip: Path | None = None, records: bool = False) -> Selected:
    """FailureIncident objects and checked rows, from --from (``skip`` left out of folders)
    or else the cluster, each incident once; with ``records``, each confirmed incident's
    record read from its ConfigMap into ``status.record``."""
    if not args.sources:
        from thinkfl_operator.kubeapi.listing import list_incidents, with_records

        listed = list_incidents(args.namespace)
        return select(with_records(listed, is_confirmed) if records else listed, [])
    objects, rows = read_sources(args.sources, skip)
    return select(objects, rows, args.namespace)


def read_sources(paths: Sequence[Path], skip: Path | None = None) -> tuple[list[dict[str, Any]], list[Checked]]:
    """FailureIncidents in YAML/JSON files (with their records from the ConfigMaps found
    there), and checked rows in ``.jsonl`` files; folders are searched for those suffixes
    (``skip`` excepted). Other kinds of objects are ignored."""
    objects: list[dict[str, Any]] = []
    configmaps: list[dict[str, Any]] = []
    rows: list[Checked] = []
    for path in _files(paths, skip):
        if path.suffix == ".jsonl":
            rows += checked_rows(path)
            continue
        for obj in _documents(path):
            if obj.get("kind") == "FailureIncident":
                objects.append(obj)
            elif obj.get("kind") == "ConfigMap":
                configmaps.append(obj)
    return inline_records(objects, configmaps_by_name(configmaps)), rows


def checked_rows(path: Path) -> list[Checked]:
    """Every row of an exported file, checked (``rows.check_row``); the first bad one is an
    error naming the file, the line and the problem."""
    checked = []
    for number, row in read_numbered(path):
        try:
            checked.append(check_row(row))
        except UserInputError as exc:
            raise UserInputError(f"{path}:{number}: {exc}") from None
    return checked


def _files(paths: Sequence[Path], skip: Path | None) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file()
                              and not (skip is not None and _same(p, skip)))
        elif path.is_file():
            yield path
        else:
            raise UserInputError(f"{path}: no such file or folder")


def _same(path: Path, other: Path) -> bool:
    try:
        return path.resolve() == other.resolve()
    except OSError:
        return False


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

