"""What to read of one incident's logs from Loki: which streams, and which time slices within a
line and request budget (pure: the reader in ``telemetry.loki`` executes it).

``Volume``: Loki's own count of lines per minute of each pod (with its service labels), from one
metric query; it maps pods to services as the lines will be, and gives the simplest selector
narrowing the streams to some services (one service label, else the exact pods).

``plan_reads``: the minutes split into the *window* (the end of the range, read in full, newest
first) and the *history* before it. Minutes Loki counts no line in are complete without a
request. The window is planned first; what the budgets leave
goes to the history: all of it when it fits, else ``n`` minutes spread evenly over it (the
largest ``n`` that fits both budgets), adjacent chosen minutes packed into slices of at most
``PACK`` × the entry limit so that one request reads each (a minute above the limit is paged).
The reader checks the budgets again as it goes: counts can be stale.

``settle_page``: Loki's ``start`` is inclusive and ``end`` exclusive (ns). A page that returns
``limit`` entries is complete only before its last timestamp (after it, backward): the lines of
that nanosecond are dropped and the next page starts (ends) there, so they are read again, not
lost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from thinkfl_operator.telemetry.loki_shapes import Stream, alternation, pod_and_service

MINUTE_NS = 60_000_000_000
#: A history slice is filled up to this share of the entry limit (room for late lines).
PACK = 0.9
#: Longest regex put in a selector; beyond it lines are filtered after reading instead.
MAX_REGEX_CHARS = 2000

Group = tuple[tuple[str, str], ...]  # the labels of one volume series, sorted
Matcher = tuple[str, str, str]  # (label, op, value)


@dataclass
class Volume:
    """Lines per minute (keys: Loki's sample times in ns) of each label group."""

    pod_label: str
    service_labels: Sequence[str]
    groups: dict[Group, dict[int, float]] = field(default_factory=dict)

    def add(self, labels: Mapping[str, str], times: Sequence[int],
            values: Sequence[float]) -> None:
        series = self.groups.setdefault(tuple(sorted(labels.items())), {})
        for t, v in zip(times, values, strict=True):
            series[t] = series.get(t, 0.0) + v

    def service(self, group: Group) -> str:
        return pod_and_service(dict(group), self.pod_label, self.service_labels)[1]

    def of_services(self, services: Sequence[str]) -> list[Group]:
        """The groups of these services (all of them when none is named)."""
        return [g for g in self.groups if not services or self.service(g) in services]

    def counts(self, groups: Sequence[Group]) -> dict[int, float]:
        total: dict[int, float] = {}
        for group in groups:
            for t, v in self.groups[group].items():
                total[t] = total.get(t, 0.0) + v
        return total

    def matcher(self, groups: Sequence[Group]) -> Matcher | None:
        """``label=~"a|b"`` selecting exactly these groups' streams, if one is simple: the
        service label they all take their service from, else their pods."""
        sources = {pod_and_service(dict(g), self.pod_label, self.service_labels)[2]
                   for g in groups}
        name = sources.pop() if len(sources) == 1 else self.pod_label
        values = [dict(g).get(name, "") for g in groups]
        if not values or not all(values):
            return None
        regex = alternation(values)
        return (name, "=~", regex) if len(regex) <= MAX_REGEX_CHARS else None

    def narrowed(self, wanted: Sequence[Group]) -> tuple[list[Matcher], list[Group]]:
        """Matchers to add to the base selector for ``wanted``, and the groups they match."""
        if len(wanted) == len(self.groups):
            return [], list(wanted)
        matcher = self.matcher(wanted)
        if matcher is None:
            return [], list(self.groups)
        name, _, regex = matcher
        pattern = re.compile(f"^(?:{regex})$")
        return [matcher], [g for g in self.groups if pattern.match(dict(g).get(name, ""))]


@dataclass(frozen=True)
class Bin:
    """[lo_ns, hi_ns) and how many lines Loki counts in it."""

    lo_ns: int
    hi_ns: int
    lines: int


@dataclass(frozen=True)
class Slice:
    """[lo_ns, hi_ns), read in full by paging; ``lines`` is the expected count."""

    lo_ns: int
    hi_ns: int
    lines: int


@dataclass(frozen=True)
class Plan:
    window: Slice | None
    #: History slices, newest first.
    history: tuple[Slice, ...]
    #: Intervals with no line at all: complete without a request.
    empty: tuple[tuple[int, int], ...]
    #: History minutes with lines, and how many of them the plan reads.
    history_minutes: int = 0
    history_read: int = 0
    history_lines: int = 0


def minute_edges(start_ns: int, end_ns: int) -> list[int]:
    """Bin edges: every minute from ``start_ns``, the last edge cut to ``end_ns``."""
    edges = list(range(start_ns, end_ns, MINUTE_NS))
    return [*edges, end_ns]


def bins_from_counts(start_ns: int, end_ns: int, counts: Mapping[int, float]) -> list[Bin]:
    """Minute bins with the counts of a volume query evaluated at ``edge + 1 min - 1 ns``
    (keys: Loki's sample times in ns, millisecond precision)."""
    edges = minute_edges(start_ns, end_ns)
    lines = [0] * (len(edges) - 1)
    for t_ns, value in counts.items():
        k = round((t_ns + 1 - start_ns) / MINUTE_NS) - 1
        if 0 <= k < len(lines):
            lines[k] += round(value)
    return [Bin(lo, hi, n) for lo, hi, n in zip(edges, edges[1:], lines, strict=False)]


def pages(lines: int, entry_limit: int) -> int:
    """Requests to read ``lines`` lines by paging (a full page needs one more to confirm)."""
    usable = max(1, entry_limit - max(1, entry_limit // 50))  # each page re-reads its edge
    return lines // usable + 1


def plan_reads(bins: Sequence[Bin], focus_ns: int, *, max_lines: int, max_requests: int,
               entry_limit: int, history: bool = True) -> Plan:
    """The slices to read (see the module docstring); ``focus_ns`` starts the window."""
    empty = tuple((b.lo_ns, b.hi_ns) for b in bins if b.lines <= 0)
    window_bins = [b for b in bins if b.hi_ns > focus_ns]
    window = None
    window_lines = sum(b.lines for b in window_bins)
    if window_lines > 0:
        window = Slice(window_bins[0].lo_ns, window_bins[-1].hi_ns, window_lines)
        max_requests -= pages(window_lines, entry_limit)
        max_lines -= window_lines
    past = [b for b in bins if b.hi_ns <= focus_ns and b.lines > 0]
    total = sum(b.lines for b in past)
    if not history or not past or max_lines <= 0 or max_requests <= 0:
        return Plan(window, (), empty, len(past), 0, total)
    for n in range(len(past), 0, -1):
        chosen = [int((i + 0.5) * len(past) / n) for i in range(n)]
        slices = _pack(past, chosen, entry_limit)
        cost = sum(pages(s.lines, entry_limit) for s in slices)
        lines = sum(s.lines for s in slices)
        if lines <= max_lines and cost <= max_requests:
            newest_first = tuple(sorted(slices, key=lambda s: -s.lo_ns))
            return Plan(window, newest_first, empty, len(past), n, total)
    return Plan(window, (), empty, len(past), 0, total)


def _pack(past: Sequence[Bin], chosen: Sequence[int], entry_limit: int) -> list[Slice]:
    cap = max(1, int(entry_limit * PACK))
    slices: list[Slice] = []
    previous = -2
    for i in chosen:
        b = past[i]
        last = slices[-1] if slices else None
        if last is not None and i == previous + 1 and last.lines + b.lines <= cap:
            slices[-1] = Slice(last.lo_ns, b.hi_ns, last.lines + b.lines)
        else:
            slices.append(Slice(b.lo_ns, b.hi_ns, b.lines))
        previous = i
    return slices


def settle_page(streams: list[Stream], lo: int, hi: int, limit: int, direction: str,
                ) -> tuple[list[Stream], tuple[int, int] | None, tuple[int, int]]:
    """What one page of [lo, hi) settles: the entries to keep, the interval now complete (None:
    none) and what is left to read (empty when done)."""
    if sum(len(s) for s in streams) < limit:
        return streams, (lo, hi), (hi, hi)
    times = [s.times for s in streams if len(s)]
    if direction == "forward":
        edge = max(int(t.max()) for t in times)
        if edge == lo:  # a whole page at one nanosecond: keep it, move past it
            return streams, None, (lo + 1, hi)
        return [s.where(s.times < edge) for s in streams], (lo, edge), (edge, hi)
    edge = min(int(t.min()) for t in times)
    if edge == hi - 1:
        return streams, None, (lo, hi - 1)
    return [s.where(s.times > edge) for s in streams], (edge + 1, hi), (lo, edge + 1)
