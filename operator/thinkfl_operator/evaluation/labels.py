"""Fault labels of the offline datasets, in label-file order.

* Nezha day folder: the single ``*fault_list.json``, keyed by hour. ``inject_time`` is read as
  UTC; ``inject_timestamp`` is never used (it is off by up to ±60 s, or −8 h on some days).
* AIOps-2022 layout: ``groundtruth.csv`` with ``timestamp,level,cmdb_id,failure_type``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from thinkfl_operator.core.errors import DatasetError
from thinkfl_operator.telemetry.csvio import read_csv
from thinkfl_operator.telemetry.naming import service_of_aiops_pod, service_of_pod

_NEZHA_GLOB = "*fault_list.json"
_AIOPS_NAME = "groundtruth.csv"
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f")
_LEVELS = ("pod", "service", "node")
_MS_THRESHOLD = 1e11


@dataclass(frozen=True)
class Fault:
    """One injected fault: when (epoch seconds, UTC), where, and what."""

    time_s: float
    time_text: str  # the time exactly as the label file writes it
    pod: str
    service: str
    fault_type: str
    level: str  # "pod", "service" or "node"
    node: str = ""  # set for node-level faults


def read_faults(path: Path) -> list[Fault]:
    """The faults of a dataset folder (or of one label file), in label-file order."""
    path = Path(path)
    label = _label_file(path)
    if label.name.endswith("fault_list.json"):
        return _read_nezha(label)
    return _read_groundtruth(label)


def _label_file(path: Path) -> Path:
    if path.is_file():
        if path.name.endswith("fault_list.json") or path.name == _AIOPS_NAME:
            return path
        raise DatasetError(path, "not a label file (expected *fault_list.json or groundtruth.csv)")
    if not path.is_dir():
        raise DatasetError(path, "no such folder")
    found = sorted(p for p in path.glob(_NEZHA_GLOB) if p.is_file())
    if (path / _AIOPS_NAME).is_file():
        found.append(path / _AIOPS_NAME)
    if not found:
        raise DatasetError(path, "no *fault_list.json or groundtruth.csv label file")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise DatasetError(path, f"several label files ({names}); expected exactly one")
    return found[0]


def _read_nezha(path: Path) -> list[Fault]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(path, f"cannot read: {exc}") from None
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            path, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(data, dict):
        raise DatasetError(path, f"expected a JSON object keyed by hour, got {type(data).__name__}")
    faults = []
    for hour, entries in data.items():
        if not isinstance(entries, list):
            raise DatasetError(path, f"hour {hour!r}: expected a list of faults")
        for i, entry in enumerate(entries):
            where = f"hour {hour!r} entry {i}"
            if not isinstance(entry, dict):
                raise DatasetError(path, f"{where}: expected an object, got {entry!r:.80}")
            for key in ("inject_time", "inject_pod"):
                if not isinstance(entry.get(key), str) or not entry[key].strip():
                    raise DatasetError(path, f"{where} has no {key}")
            time_text = entry["inject_time"]
            pod = entry["inject_pod"].strip()
            faults.append(
                Fault(
                    time_s=_parse_time(path, where, time_text),
                    time_text=time_text,
                    pod=pod,
                    service=service_of_pod(pod),
                    fault_type=str(entry.get("inject_type", "")),
                    level="pod",
                )
            )
    return faults


def _parse_time(path: Path, where: str, text: str) -> float:
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    raise DatasetError(
        path, f"{where}: inject_time {text!r} is not a time like 2023-01-30 11:51:46"
    )


def _read_groundtruth(path: Path) -> list[Fault]:
    columns = ("timestamp", "level", "cmdb_id", "failure_type")
    raw = read_csv(path, columns, columns)
    faults = []
    for i, row in enumerate(raw[list(columns)].itertuples(index=False), start=2):
        stamp, level, cmdb_id, failure = ((v or "").strip() for v in row)
        try:
            seconds = float(stamp)
        except ValueError:
            seconds = float("nan")
        if not math.isfinite(seconds):
            raise DatasetError(path, f"line {i}: timestamp {stamp!r} is not epoch seconds")
        if seconds > _MS_THRESHOLD:
            seconds /= 1000.0
        if level not in _LEVELS:
            levels = ", ".join(_LEVELS)
            raise DatasetError(path, f"line {i}: level {level!r} is not one of {levels}")
        if not cmdb_id:
            raise DatasetError(path, f"line {i}: empty cmdb_id")
        pod = cmdb_id if level == "pod" else ""
        service = {"pod": service_of_aiops_pod(cmdb_id), "service": cmdb_id}.get(level, "")
        node = cmdb_id if level == "node" else ""
        faults.append(Fault(seconds, stamp, pod, service, failure, level, node))
    return faults
