"""Every diagnosis of some labeled days, whole, as one JSON file: the check that a change meant to
make the engine cheaper changed no answer.

``python scripts/dump_diagnoses.py OUT.json [DAY_DIR ...]`` (default: every day folder under
``../shared/datasets/nezha/rca_data``) evaluates each day as ``thinkfl evaluate`` does (the
deterministic engine, one process) with log evidence on and off, and writes per fault the ranked
causes with their scores, every step with its output, the notes, the traces, the log evidence and
its lead. Run it before and after a change (the old tree by ``PYTHONPATH=OLD/operator``) and
compare the two files byte for byte (``cmp``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from thinkfl_operator.cli.commands import with_overrides
from thinkfl_operator.config.settings import Settings
from thinkfl_operator.engines.diagnose import make_engine
from thinkfl_operator.evaluation import runner
from thinkfl_operator.evaluation.labels import read_faults
from thinkfl_operator.telemetry.open import open_dataset

SHARED_DAYS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nezha" / "rca_data"


def dump(days: list[Path]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for logs in (True, False):
        settings = with_overrides(Settings(), argparse.Namespace(no_logs=not logs))  # as --no-logs
        for day in days:
            results = runner.run(open_dataset(day), read_faults(day), make_engine("heuristic", settings))
            out[f"{day.name} logs={logs}"] = [_entry(r) for r in results]
    return out


def _entry(result: runner.FaultResult) -> dict[str, Any]:
    found = result.diagnosis
    if found is None:
        return {"skipped": result.skipped, "error": result.error}
    return {"ranked": [dataclasses.asdict(c) for c in found.root_causes],
            "steps": [s.as_dict(with_output=True) for s in found.steps],
            "notes": found.notes, "traces": found.traces, "logEvidence": found.log_evidence,
            "logLead": found.log_lead, "logsRead": found.logs_read}


def main(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write("usage: python scripts/dump_diagnoses.py OUT.json [DAY_DIR ...]\n")
        return 2
    days = [Path(a) for a in argv[1:]] or sorted(p for p in SHARED_DAYS.iterdir() if p.is_dir())
    entries = dump(days)
    Path(argv[0]).write_text(json.dumps(entries, indent=0, sort_keys=True, default=str))
    print(f"{argv[0]}: " + ", ".join(f"{key}: {len(rows)} faults" for key, rows in entries.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
