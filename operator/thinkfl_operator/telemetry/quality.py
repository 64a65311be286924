"""A tally of what was skipped while reading imperfect data, reported with every diagnosis."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class DataQuality:
    """Counts of skipped or repaired records, by reason ("duplicate span", "NaN value", ...)."""

    skipped: Counter[str] = field(default_factory=Counter)

    def add(self, reason: str, count: int = 1) -> None:
        if count > 0:
            self.skipped[reason] += count

    def merge(self, other: DataQuality) -> None:
        self.skipped.update(other.skipped)

    def notes(self) -> list[str]:
        return [f"skipped {n} {reason}" for reason, n in sorted(self.skipped.items())]
