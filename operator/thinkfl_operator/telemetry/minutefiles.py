"""Per-minute files of a day folder (``HH_MM_trace.csv``, ``HH_MM_log.csv``): which may hold a
time range. A file's name is only a hint: data is always selected by its own timestamps, since
on some days files are cut at odd seconds, overlap, or cover several minutes; so files whose
name-minute lies ``SLACK`` outside the range are read too, and a name without a minute always.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

SLACK = timedelta(minutes=20)
_LATEST_S = 253_000_000_000.0  # year ~9987: the largest time datetime can hold


def folder_day(folder: Path) -> datetime | None:
    """The day a folder is named after (``2023-01-29…``), None when it names none."""
    try:
        return datetime.strptime(folder.name[:10], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None


def files_near(files: Sequence[Path], day: datetime | None, suffix: str, start_s: float,
               end_s: float) -> list[Path]:
    """The files of ``day`` named ``HH_MM<suffix>`` that may hold [start_s, end_s)."""
    if day is None:
        return list(files)
    pattern = re.compile(r"^(\d{1,2})_(\d{2})" + re.escape(suffix) + "$")
    lo = datetime.fromtimestamp(max(start_s, 0.0), UTC) - SLACK
    hi = datetime.fromtimestamp(min(end_s, _LATEST_S), UTC) + SLACK
    chosen = []
    for path in files:
        match = pattern.match(path.name)
        minute = None if match is None else day + timedelta(hours=int(match.group(1)), minutes=int(match.group(2)))
        if minute is None or lo <= minute <= hi:
            chosen.append(path)
    return chosen
