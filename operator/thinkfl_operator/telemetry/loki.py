"""Log lines of one incident from Grafana Loki (``logs.loki_url``), within a request, line and
time budget, with ``coverage`` saying exactly which intervals are complete.

``logs(start, end)``: the range is the history (``logs.history_minutes``) followed by the
incident *window* (what is left at the end; a range no longer than the history is all window).

1. One metric query on ``/loki/api/v1/query_range``: ``sum by (<pod label>, <service labels>)
   (count_over_time({sel}[1m]))`` with ``step=60s``, evaluated 1 ns before each minute edge so
   Loki's ``(t-1m, t]`` windows are exactly our ``[lo, hi)`` minutes. It tells the lines per
   minute and which pods (and services) exist; a minute with no line is complete for free.
2. With ``services``, the line selector is narrowed to them: by the service label they carry
   when it is one label, else by their exact pods (lines of others are dropped anyway).
3. Loki 3's pattern ingester, when the server has it and every service fits in the request
   budget: one ``/loki/api/v1/patterns`` query per service over the whole range (``step=60s``)
   fills ``patterns``, and only the window is read as lines. A 404 (what Loki answers without
   the pattern ingester: an empty body) or a 400 means lines for the history, remembered by
   this instance; so does, for this call, no pattern of a service Loki holds lines of.
4. Lines: the window in full, newest first (``direction=backward``), then the history, all of
   it or minutes sampled evenly so that the whole fits ``max_lines`` and ``max_requests``, each
   slice paged ``direction=forward`` (``telemetry.loki_plan``: a full page is complete only up
   to its last nanosecond, which the next page reads again). A limit Loki refuses ("max entries
   limit per query exceeded, … (N > M)") is lowered to M, with a note.

Never raises for Loki: unreachable, slow (``logs.timeout_s``, and at most ``DEADLINE_SHARE`` of
what is left of the incident's ``deadline``), refusing (400 with Loki's own message), or odd
answers end the reading; the batch keeps what was read and its notes say why. Every HTTP
attempt, retries included, counts against ``max_requests`` and in ``LogBatch.requests``.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import requests

from thinkfl_operator.config.settings import LogsSettings, TlsSettings
from thinkfl_operator.core import deadline
from thinkfl_operator.core.errors import DeadlineExceeded, UserInputError
from thinkfl_operator.telemetry.http import BackendRejected, HttpBackend, HttpBackendError, NotFound
from thinkfl_operator.telemetry.loglines import (
    MAX_LINE_CHARS,
    LogBatch,
    covered_seconds,
    merge_coverage,
)
from thinkfl_operator.telemetry.loki_plan import (
    MINUTE_NS,
    Bin,
    Group,
    Slice,
    Volume,
    bins_from_counts,
    pages,
    plan_reads,
    settle_page,
)
from thinkfl_operator.telemetry.loki_shapes import (
    LABEL_NAME,
    LokiShapeError,
    Stream,
    lines_frame,
    parse_matrix,
    parse_patterns,
    parse_streams,
    patterns_frame,
    selector,
    volume_query,
)

QUERY_RANGE = "/loki/api/v1/query_range"
PATTERNS = "/loki/api/v1/patterns"
#: Share of the incident's remaining deadline the log reading may use.
DEADLINE_SHARE = 0.5
_MAX_ENTRIES = re.compile(r"max_entries_limit_per_query \((\d+) > (\d+)\)")


class _BudgetSpent(Exception):
    pass


class LokiLogs:
    """``LogSource`` over Grafana Loki, for the pods of ``namespace`` (empty: every pod).
    One instance serves one incident at a time (calls are not meant to run concurrently)."""

    name = "loki"

    def __init__(self, settings: LogsSettings, namespace: str = "", *,
                 session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 tls: TlsSettings | None = None) -> None:
        if not settings.loki_url:
            raise UserInputError("logs.loki_url is empty: there is no Loki to read")
        for label in (settings.namespace_label, settings.pod_label, *settings.service_labels):
            if not LABEL_NAME.match(label):
                raise UserInputError(f"logs: {label!r} is not a Loki label name")
        headers = {"X-Loki-Response-Encoding-Flags": "categorize-labels"}
        if settings.loki_tenant:
            headers["X-Scope-OrgID"] = settings.loki_tenant
        self.settings, self.namespace = settings, namespace
        self.http = HttpBackend("Loki", settings.loki_url, timeout_s=settings.timeout_s,
                                retries=settings.retries, backoff_s=settings.backoff_s,
                                sleep=sleep, session=session, headers=headers,
                                max_bytes=int(settings.max_body_mb * 2**20), tls=tls)
        #: Whether the server has the pattern ingester (None: not asked yet).
        self.patterns_available: bool | None = None

    @property
    def url(self) -> str:
        return self.http.url

    def logs(self, start_s: float, end_s: float, services: Sequence[str] = ()) -> LogBatch:
        return _Reader(self, start_s, end_s, tuple(services)).run()

    def close(self) -> None:
        self.http.close()

    def base_matchers(self) -> list[tuple[str, str, str]]:
        if self.namespace:
            return [(self.settings.namespace_label, "=", self.namespace)]
        return [(self.settings.pod_label, "=~", ".+")]


class _Reader:
    """One ``logs`` call: its budgets and what it gathered."""

    def __init__(self, source: LokiLogs, start_s: float, end_s: float,
                 services: tuple[str, ...]) -> None:
        self.source, self.cfg, self.http = source, source.settings, source.http
        self.start_ns, self.end_ns = round(start_s * 1e9), round(end_s * 1e9)
        self.services = services
        self.first = self.http.requests
        self.lines_left = self.cfg.max_lines
        self.entry_limit = self.cfg.entry_limit
        self.streams: list[Stream] = []
        self.covered: list[tuple[int, int]] = []
        self.patterns: list[tuple[float, str, str, int]] = []
        self.notes: list[str] = []
        self.stopped = False  # a budget ended the reading

    # ------------------------------------------------------------------ run

    def run(self) -> LogBatch:
        if self.end_ns <= self.start_ns:
            return LogBatch(notes=("empty time range: no logs asked for",))
        try:
            with _share_of_deadline():
                self._read()
        except _BudgetSpent:
            self.stopped = True
        except (HttpBackendError, DeadlineExceeded, LokiShapeError) as exc:
            self.notes.append(f"{_describe(exc, self.source.url)}; {self._consequence()}")
        return self._batch()

    def _read(self) -> None:
        volume = self._volume()
        wanted = volume.of_services(self.services)
        if self.services and not wanted:
            self.covered.append((self.start_ns, self.end_ns))
            self.notes.append(f"Loki holds no lines of {', '.join(self.services)} in this range")
            return
        narrowing, matched = volume.narrowed(wanted)
        bins = bins_from_counts(self.start_ns, self.end_ns, volume.counts(matched))
        focus = self._focus_ns()
        with_patterns = focus > self.start_ns and self._patterns(volume, wanted, bins, focus)
        plan = plan_reads(bins, focus, max_lines=self.lines_left, history=not with_patterns,
                          max_requests=self._requests_left(), entry_limit=self.entry_limit)
        self.covered += plan.empty
        if plan.history_read < plan.history_minutes and not with_patterns:
            self.notes.append(
                f"history sampled to fit {self.cfg.max_lines} lines and {self.cfg.max_requests}"
                f" requests: {plan.history_read} of {plan.history_minutes} minutes with lines "
                f"read in full")
        query = selector([*self.source.base_matchers(), *narrowing])
        todo = [(s, "backward") for s in ([plan.window] if plan.window else [])]
        todo += [(s, "forward") for s in plan.history]
        for piece, direction in todo:
            if not self._page(query, piece, direction):
                self.stopped = True
                return

    def _focus_ns(self) -> int:
        """Where the window starts: after the history, or at the start of a short range."""
        history_ns = int(self.cfg.history_minutes * MINUTE_NS)
        if self.end_ns - self.start_ns <= history_ns:
            return self.start_ns
        return self.start_ns + history_ns

    # ------------------------------------------------------------------ requests

    def _requests_left(self) -> int:
        return self.cfg.max_requests - (self.http.requests - self.first)

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        left = self._requests_left()
        if left <= 0:
            raise _BudgetSpent
        self.http.retries = min(self.cfg.retries, left - 1)  # retries count as requests
        return self.http.get_json(path, params)

    def _volume(self) -> Volume:
        volume = Volume(self.cfg.pod_label, self.cfg.service_labels)
        n = -(-(self.end_ns - self.start_ns) // MINUTE_NS)
        body = self._get(QUERY_RANGE, {
            "query": volume_query(selector(self.source.base_matchers()),
                                  [self.cfg.pod_label, *self.cfg.service_labels]),
            "start": self.start_ns + MINUTE_NS - 1, "end": self.start_ns + n * MINUTE_NS - 1,
            "step": "60s"})
        for labels, times, values in parse_matrix(body):
            volume.add(labels, times.tolist(), values.tolist())
        return volume

    # ------------------------------------------------------------------ patterns

    def _patterns(self, volume: Volume, wanted: list[Group], bins: Sequence[Bin],
                  focus: int) -> bool:
        """Fill ``patterns`` per service; False when lines must carry the history instead."""
        by_service: dict[str, list[Group]] = {}
        for g in wanted:
            by_service.setdefault(volume.service(g), []).append(g)
        window = sum(b.lines for b in bins if b.hi_ns > focus)
        if (self.source.patterns_available is False or "" in by_service
                or len(by_service) + pages(window, self.entry_limit) > self._requests_left()):
            return False
        base, rows = self.source.base_matchers(), []
        for service, members in sorted(by_service.items()):
            matcher = volume.matcher(members)
            if matcher is None:
                return False
            try:
                found = parse_patterns(self._get(PATTERNS, {
                    "query": selector([*base, matcher]), "step": "60s",
                    "start": self.start_ns, "end": self.end_ns}))
            except (HttpBackendError, LokiShapeError) as exc:
                lacking = isinstance(exc, NotFound | BackendRejected)
                if lacking:
                    self.source.patterns_available = False
                self.notes.append(f"{_describe(exc, self.source.url)}: "
                                  f"{'no pattern ingester, ' if lacking else ''}history read as "
                                  f"lines")
                return False
            if not found:
                self.notes.append(f"Loki's pattern ingester has no patterns of {service} (it "
                                  f"holds its lines): history read as lines")
                return False
            rows += [(t, service, p, n) for p, samples in found for t, n in samples]
        self.source.patterns_available = True
        self.patterns = rows
        self.notes.append(f"history as Loki patterns of {len(by_service)} services; lines read "
                          f"for the incident window only")
        return True

    # ------------------------------------------------------------------ lines

    def _page(self, query: str, piece: Slice, direction: str) -> bool:
        """Read [lo, hi) in full by paging; False when a budget stopped it."""
        lo, hi = piece.lo_ns, piece.hi_ns
        while lo < hi:
            if self.lines_left <= 0 or self._requests_left() <= 0:
                return False
            limit = min(self.entry_limit, self.lines_left)
            try:
                body = self._get(QUERY_RANGE, {"query": query, "start": lo, "end": hi,
                                               "limit": limit, "direction": direction})
            except BackendRejected as exc:
                if not self._lower_limit(exc):
                    raise
                continue
            kept, done, (lo, hi) = settle_page(parse_streams(body), lo, hi, limit, direction)
            self.streams += [s for s in kept if len(s)]
            self.lines_left -= sum(len(s) for s in kept)
            if done is not None:
                self.covered.append(done)
        return True

    def _lower_limit(self, exc: BackendRejected) -> bool:
        match = _MAX_ENTRIES.search(exc.detail)
        if match is None or int(match.group(2)) >= self.entry_limit:
            return False
        self.entry_limit = max(1, int(match.group(2)))
        self.notes.append(f"Loki refused our entry limit: {exc.detail}; read with limit "
                          f"{self.entry_limit} (set logs.entry_limit to it)")
        return True

    # ------------------------------------------------------------------ result

    def _consequence(self) -> str:
        if not self.streams and not self.patterns:
            return "diagnosed without logs"
        return "diagnosed with the logs read before"

    def _batch(self) -> LogBatch:
        frame, counts = lines_frame(self.streams, self.cfg.pod_label, self.cfg.service_labels)
        if self.services and len(frame):
            frame = frame[frame["service"].isin(list(self.services))].reset_index(drop=True)
        coverage = merge_coverage([(lo / 1e9, hi / 1e9) for lo, hi in self.covered])
        notes = list(self.notes)
        if self.stopped:
            total = (self.end_ns - self.start_ns) / 1e9
            done = covered_seconds(coverage, self.start_ns / 1e9, self.end_ns / 1e9)
            notes.append(f"stopped at the budget ({self.cfg.max_lines} lines, "
                         f"{self.cfg.max_requests} requests): {done:.0f} of {total:.0f} s "
                         f"complete")
        if counts.cut:
            notes.append(f"{counts.cut} lines longer than {MAX_LINE_CHARS} characters were cut")
        if counts.binary:
            notes.append(f"{counts.binary} lines held binary data (control bytes replaced by "
                         f"U+FFFD)")
        return LogBatch(lines=frame, coverage=coverage, notes=tuple(notes),
                        patterns=patterns_frame(self.patterns),
                        requests=self.http.requests - self.first)


@contextlib.contextmanager
def _share_of_deadline() -> Iterator[None]:
    left = deadline.remaining()
    if left is None:
        yield
        return
    with deadline.within(max(0.0, left) * DEADLINE_SHARE):
        yield


def _describe(exc: Exception, url: str) -> str:
    if isinstance(exc, LokiShapeError):
        return f"Loki at {url} answered in an unexpected shape: {exc}"
    if isinstance(exc, DeadlineExceeded):
        return (f"stopped reading Loki at {url}: out of time (the logs may use "
                f"{DEADLINE_SHARE:.0%} of what is left of the incident's time budget)")
    return str(exc)
