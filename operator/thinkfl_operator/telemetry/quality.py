"""A tally of what was skipped while reading imperfect data, reported with every diagnosis."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class DataQuality:
    """Counts of skipped or repaired records, by reason ("duplicate span", "NaN value", ...)."""

    skipped: Counter[str] = field(default_factory=Counter)
    # readers of one store may tally from several threads (an evaluation reads the kinds side
    # by side): an update is a read and a write
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def add(self, reason: str, count: int = 1) -> None:
        if count > 0:
            with self._lock:
                self.skipped[reason] += count

    def merge(self, other: DataQuality) -> None:
        with self._lock:
            self.skipped.update(other.skipped)

    def notes(self) -> list[str]:
        with self._lock:
            return [f"skipped {n} {reason}" for reason, n in sorted(self.skipped.items())]
