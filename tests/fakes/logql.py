"""The LogQL subset the Loki stand-in understands, parsed as strictly as Loki parses it.

    log query     {name op "value", …} (|= != |~ !~ "text")*      op: = != =~ !~
    metric query  count_over_time(<log query> [5m])  or  rate(…)
                  sum [by|without (a, b)] (<metric query>)  or  sum(<metric query>) by (a, b)

and the query parameters as ``pkg/loghttp`` reads them (``bounds``, ``step``, ``integer``).

Strings are double-quoted (Go escapes) or back-quoted (raw). Label regexes are anchored, line
filter regexes are not (as in Loki). Anything else raises ``ParseError`` with Loki's wording
(``parse error at line 1, col 5: syntax error: unexpected IDENTIFIER``), as does a selector
that matches the empty string only (``{app=~".*"}``).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

__all__ = ["LineFilter", "LogQuery", "Matcher", "MetricQuery", "ParseError", "bounds",
           "duration_ns", "integer", "parse", "step", "timestamp_ns"]

EMPTY_COMPATIBLE = (
    "queries require at least one regexp or equality matcher that does not have an "
    'empty-compatible value. For instance, app=~".*" does not meet this requirement, but '
    'app=~".+" will')
_TOKEN = re.compile(r"""
    (?P<space>\s+) | (?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`) | (?P<range>\[[^\]]*\])
  | (?P<op>\|=|\|~|!=|!~|=~|=|\||[{}(),])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*) | (?P<number>[0-9][0-9.]*) | (?P<other>.)""", re.VERBOSE)
_KEYWORDS = {"sum": "SUM", "by": "BY", "without": "WITHOUT", "count_over_time": "COUNT_OVER_TIME",
             "rate": "RATE"}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_NS = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9,
            "w": 7 * 86400 * 10**9, "y": 365 * 86400 * 10**9}


class ParseError(Exception):
    """A query (or parameter) Loki would refuse with HTTP 400; ``str`` is Loki's message."""


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def matches(self, value: str) -> bool:
        if self.op in ("=", "!="):
            return (value == self.value) == (self.op == "=")
        found = re.fullmatch(self.value, value) is not None
        return found == (self.op == "=~")


@dataclass(frozen=True)
class LineFilter:
    op: str
    value: str

    def keeps(self, line: str) -> bool:
        if self.op in ("|=", "!="):
            return (self.value in line) == (self.op == "|=")
        return (re.search(self.value, line) is not None) == (self.op == "|~")


@dataclass(frozen=True)
class LogQuery:
    matchers: tuple[Matcher, ...]
    filters: tuple[LineFilter, ...]

    def selects(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels.get(m.name, "")) for m in self.matchers)

    def keeps(self, line: str) -> bool:
        return all(f.keeps(line) for f in self.filters)


@dataclass(frozen=True)
class MetricQuery:
    function: str  # count_over_time | rate
    log: LogQuery
    range_ns: int
    aggregate: bool  # wrapped in sum
    grouping: tuple[str, ...] | None  # by (…) labels; None = all of them
    without: bool = False


def duration_ns(text: str) -> int:
    """A Prometheus duration (``1m``, ``1h30m``, ``500ms``) in ns; ValueError otherwise."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a valid duration string: {text!r}")
    return sum(int(n) * _UNIT_NS[u] for n, u in parts)


def parse(text: str) -> LogQuery | MetricQuery:
    return _Parser(text).query()


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str, int]] = []
        for match in _TOKEN.finditer(text):
            kind = match.lastgroup or "other"
            if kind != "space":
                value = match.group()
                if kind == "ident" and value in _KEYWORDS:
                    kind = _KEYWORDS[value]
                self.tokens.append((kind, value, match.start()))
        self.tokens.append(("$end", "", len(text)))
        self.pos = 0

    def _peek(self) -> tuple[str, str, int]:
        return self.tokens[self.pos]

    def _take(self, *kinds: str) -> str:
        kind, value, col = self._peek()
        if kind not in kinds and value not in kinds:
            named = {"ident": "IDENTIFIER", "string": "STRING", "range": "RANGE",
                     "number": "NUMBER"}.get(kind, value if kind in ("op", "other") else kind)
            raise ParseError(f"parse error at line 1, col {col + 1}: syntax error: "
                             f"unexpected {named}")
        self.pos += 1
        return value

    def query(self) -> LogQuery | MetricQuery:
        kind = self._peek()[0]
        result: LogQuery | MetricQuery
        if kind == "SUM":
            result = self._sum()
        elif kind in ("COUNT_OVER_TIME", "RATE"):
            result = self._range_aggregation()
        else:
            result = self._log_query()
        self._take("$end")
        return result

    def _sum(self) -> MetricQuery:
        self._take("SUM")
        grouping, without = self._grouping()
        self._take("(")
        inner = self._range_aggregation()
        self._take(")")
        if grouping is None:
            grouping, without = self._grouping()
        return MetricQuery(inner.function, inner.log, inner.range_ns, True,
                           grouping if grouping is not None else (), without)

    def _grouping(self) -> tuple[tuple[str, ...] | None, bool]:
        kind = self._peek()[0]
        if kind not in ("BY", "WITHOUT"):
            return None, False
        self._take(kind)
        self._take("(")
        names = [self._take("ident")]
        while self._peek()[1] == ",":
            self._take(",")
            names.append(self._take("ident"))
        self._take(")")
        return tuple(names), kind == "WITHOUT"

    def _range_aggregation(self) -> MetricQuery:
        function = self._take("COUNT_OVER_TIME", "RATE")
        self._take("(")
        log = self._log_query()
        raw = self._take("range")
        self._take(")")
        try:
            range_ns = duration_ns(raw[1:-1].strip())
        except ValueError as exc:
            raise ParseError(f"parse error : {exc}") from None
        return MetricQuery(function, log, range_ns, False, None)

    def _log_query(self) -> LogQuery:
        self._take("{")
        matchers = [self._matcher()]
        while self._peek()[1] == ",":
            self._take(",")
            matchers.append(self._matcher())
        self._take("}")
        if all(m.matches("") for m in matchers):
            raise ParseError(f"parse error : {EMPTY_COMPATIBLE}")
        filters = []
        while self._peek()[1] in ("|=", "!=", "|~", "!~"):
            op = self._take("|=", "!=", "|~", "!~")
            filters.append(LineFilter(op, self._string(regex=op in ("|~", "!~"))))
        return LogQuery(tuple(matchers), tuple(filters))

    def _matcher(self) -> Matcher:
        name = self._take("ident")
        op = self._take("=", "!=", "=~", "!~")
        return Matcher(name, op, self._string(regex=op in ("=~", "!~")))

    def _string(self, *, regex: bool) -> str:
        col = self._peek()[2]
        raw = self._take("string")
        try:
            value = raw[1:-1] if raw.startswith("`") else json.loads(raw)
        except ValueError:
            raise ParseError(f"parse error at line 1, col {col + 1}: invalid char escape") from None
        if regex:
            try:
                re.compile(value)
            except re.error as exc:
                raise ParseError(f"parse error at line 1, col {col + 1}: error parsing regexp: "
                                 f"{exc}") from None
        return str(value)


# ---------------------------------------------------------------------------------- parameters


def integer(text: str | None, default: int, name: str) -> int:
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise ParseError(f'strconv.Atoi: parsing "{text}": invalid syntax') from None


def timestamp_ns(value: str) -> int:
    """A time as Loki's ``parseTimestamp`` reads it (ns; ≤ 10 digits: s; float: s; RFC 3339)."""
    if "." in value:
        try:
            seconds = float(value)
        except ValueError:
            pass
        else:
            whole = math.floor(seconds)  # Loki keeps milliseconds of a float
            return whole * 10**9 + round(round((seconds - whole) * 1000) / 1000 * 10**9)
    if re.fullmatch(r"[+-]?\d+", value):
        return int(value) * 10**9 if len(value) <= 10 else int(value)
    match = re.fullmatch(r"(.+?T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", value)
    if match is None:
        raise ValueError(f'strconv.ParseInt: parsing "{value}": invalid syntax')
    head, frac, zone = match.groups()
    stamp = datetime.fromisoformat(head + ("+00:00" if zone == "Z" else zone))
    return int(stamp.timestamp()) * 10**9 + int((frac or "0").ljust(9, "0"))


def bounds(params: Mapping[str, str], default_span_ns: int) -> tuple[int, int]:
    now = time.time_ns()
    try:
        end = timestamp_ns(params["end"]) if params.get("end") else now
    except ValueError as exc:
        raise ParseError(f"could not parse 'end' parameter: {exc}") from None
    span = default_span_ns
    if params.get("since"):
        try:
            span = duration_ns(params["since"])
        except ValueError as exc:
            raise ParseError(f"could not parse 'since' parameter: {exc}") from None
    try:
        start = timestamp_ns(params["start"]) if params.get("start") else min(end, now) - span
    except ValueError as exc:
        raise ParseError(f"could not parse 'start' parameter: {exc}") from None
    return start, end


def step(params: Mapping[str, str], start: int, end: int) -> int:
    text = params.get("step", "")
    if not text:
        step = max(math.floor((end - start) / 1e9 / 250), 1) * 10**9
    else:
        try:
            step = round(float(text) * 1e9)
        except ValueError:
            try:
                step = duration_ns(text)
            except ValueError:
                raise ParseError(f'cannot parse "{text}" to a valid duration') from None
    if step <= 0:
        raise ParseError("zero or negative query resolution step widths are not accepted. "
                      "Try a positive integer")
    if (end - start) // step > 11000:
        raise ParseError("exceeded maximum resolution of 11,000 points per time series. "
                      "Try increasing the value of the step parameter")
    return step
