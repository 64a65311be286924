"""How a live diagnosis spends its requests to the trace backend: the pure parts of the plan.

A diagnosis may send at most ``traces.max_requests`` requests to Jaeger or Tempo (retries
included). ``LiveStore`` asks these functions what to search first and what to leave out:

* ``fit``: fewer, wider baseline slices when a search per slice would not fit the budget;
* ``by_priority``: search slices nearest the incident first (the focus window, then the
  baseline outwards), so a budget that runs out cuts the far baseline, never the incident;
* ``entry_services``: where requests enter the system, from a dependency graph (Jaeger's
  ``/api/dependencies``) or from the roots of traces already found; searching those services
  finds whole traces through every service behind them, so the number of searches does not
  grow with the number of services;
* ``spread``: a sample of ``k`` traces spread evenly over time, for the traces Tempo makes us
  fetch one by one; ``slow_and_spread`` for the incident window's: half of them the slowest
  for their root operation (Tempo's search answer has each trace's duration and root).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence

Slice = tuple[float, float]


def overlaps(s: Slice, focus: Slice) -> bool:
    """Whether the slice and the focus window share time."""
    return s[1] > focus[0] and s[0] < focus[1]


def by_priority(slices: Iterable[Slice], focus: Slice | None) -> list[Slice]:
    """Slices overlapping ``focus`` first (nearest its start first), then the others by their
    distance from it; without a focus, the latest first."""
    items = list(slices)
    if focus is None:
        return sorted(items, key=lambda s: -s[1])
    lo, hi = focus

    def key(s: Slice) -> tuple[int, float]:
        inside = overlaps(s, focus)
        distance = abs(s[0] - lo) if inside else min(abs(s[0] - hi), abs(s[1] - lo))
        return (0 if inside else 1, distance)

    return sorted(items, key=key)


def fit(slices: Iterable[Slice], focus: Slice | None, capacity: int) -> list[Slice]:
    """The slices, in time order, with adjacent baseline slices merged (narrowest pair first)
    until at most ``capacity`` remain; focus slices are never merged. May stay above
    ``capacity`` when the focus alone needs more (the caller then skips by priority)."""
    items = sorted(slices)

    def inside(s: Slice) -> bool:
        return focus is not None and overlaps(s, focus)

    while len(items) > max(capacity, 1):
        pairs = [(items[i + 1][1] - items[i][0], i) for i in range(len(items) - 1)
                 if items[i][1] == items[i + 1][0] and not inside(items[i])
                 and not inside(items[i + 1])]
        if not pairs:
            break
        _, i = min(pairs)
        items[i:i + 2] = [(items[i][0], items[i + 1][1])]
    return items


def entry_services(edges: Iterable[tuple[str, str, int]]) -> list[str]:
    """Callers no service calls (the system's entry points), most calls first; when every
    caller is also called (a cycle), every caller, most calls first."""
    calls: Counter[str] = Counter()
    callees: set[str] = set()
    for parent, child, count in edges:
        if parent and child and parent != child:
            calls[parent] += max(int(count), 1)
            callees.add(child)
    roots = [s for s, _ in calls.most_common() if s not in callees]
    return roots or [s for s, _ in calls.most_common()]


#: How many times its root's median duration makes a trace found in the incident window "slow".
SLOW_RATIO = 2.0


def slow_and_spread(items: Sequence[tuple[float, str, float, str]], k: int) -> list[str]:
    """``k`` of the (time, id, duration, root) traces: up to half of them the slowest for their
    root, at least ``SLOW_RATIO`` times the median of the traces found with the same root (a
    delay or a timeout makes some calls of an operation far slower than the others), the rest
    ``spread`` evenly over time among those left. Unknown durations (NaN) are never "slow";
    all when k ≥ n."""
    if k >= len(items):
        return [i for _, i in sorted((t, i) for t, i, _, _ in items)]
    if k <= 0:
        return []
    by_root: dict[str, list[float]] = {}
    for _, _, duration, root in items:
        if not math.isnan(duration):
            by_root.setdefault(root, []).append(duration)
    medians = {root: statistics.median(values) for root, values in by_root.items()}

    def ratio(item: tuple[float, str, float, str]) -> float:
        _, _, duration, root = item
        if math.isnan(duration) or root not in medians:
            return -1.0
        return duration / max(medians[root], 1.0)

    ranked = sorted(items, key=lambda item: (-ratio(item), item[0], item[1]))
    slow = [item[1] for item in ranked[: k // 2] if ratio(item) >= SLOW_RATIO]
    taken = set(slow)
    rest = [(t, i) for t, i, _, _ in items if i not in taken]
    return slow + spread(rest, k - len(slow))


def spread(items: Sequence[tuple[float, str]], k: int) -> list[str]:
    """``k`` of the (time, id) items spread evenly over their time order (all when k ≥ n)."""
    ordered = [i for _, i in sorted(items)]
    n = len(ordered)
    if k >= n:
        return ordered
    if k <= 0:
        return []
    return [ordered[(2 * j + 1) * n // (2 * k)] for j in range(k)]
