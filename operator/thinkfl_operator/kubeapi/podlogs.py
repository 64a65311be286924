"""Log lines from the Kubernetes API's ``pods/log``: the log source of clusters without a log
store (``logs.pod_logs``; Helm ``logs.podLogs`` grants ``list`` on pods and ``get`` on
``pods/log``).

One list of the namespace's pods (paged), then one ``GET pods/{name}/log`` per pod with
``timestamps=true``, ``sinceSeconds`` reaching back to the window's start and ``limitBytes`` = the
pod's share of a byte budget (``max_lines`` × ~200 bytes; what a pod leaves goes to the next).
A pod with several containers is read in one: kubectl's default-container annotation, else the
first that is not a known sidecar. Pods are read one per service before a second of any, so the
request cap (``max_requests``, the list included) leaves no service out.

The API gives what the kubelet still keeps: each container's current log file (rotated away at
the kubelet's ``containerLogMaxSize``, 10 MiB by default, without a sign) of its current
instance; the lines of an instance before a restart are not read (``kubectl logs --previous``),
so a restarted pod is complete from its restart on. ``limitBytes`` returns the oldest bytes
first, so a cut pod is complete only up to its first unfinished line; lines after the window's
end count against the budget too (the API has no "until"). ``coverage`` is the part of the
window complete for *every* pod read; the pods not read (request cap, deadline, failures) are
named in the notes. A refused or failed call never raises: the batch is then empty or partial,
and its notes say why (a 403 names the missing RBAC).
"""

from __future__ import annotations

import calendar
import json
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import kubernetes
import pandas as pd
import urllib3

from thinkfl_operator.config.settings import LogsSettings
from thinkfl_operator.core import deadline
from thinkfl_operator.core.errors import BackendError
from thinkfl_operator.core.rfc3339 import format_utc
from thinkfl_operator.kubeapi.client import api_client
from thinkfl_operator.telemetry.loglines import (
    LINE_COLUMNS,
    MAX_LINE_CHARS,
    LogBatch,
    empty_lines,
    merge_coverage,
)
from thinkfl_operator.telemetry.naming import service_of_pod

PAGE = 500
#: Bytes of budget per line of ``max_lines`` (the timestamp prefix and a typical line).
BYTES_PER_LINE = 200
#: kubectl's annotation naming the container ``kubectl logs`` reads.
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
#: Proxies and agents beside the application, passed over when choosing a container.
SIDECARS = frozenset({"istio-proxy", "linkerd-proxy", "envoy", "envoy-sidecar", "vault-agent",
                      "cloud-sql-proxy", "cloudsql-proxy", "oauth2-proxy", "fluent-bit",
                      "fluentd", "otel-collector", "jaeger-agent", "datadog-agent"})
#: Pods named in a note before "and N more".
NAMED = 5
_STAMP = re.compile(rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?"
                    rb"(Z|[+-]\d\d:\d\d) ")
# TraceID: <hex>, trace_id=<hex>, "traceId":"<hex>" (and the same for spans).
_IDS = [re.compile(rf"(?<![a-z_]){key}[_-]?id\"?\s*[:=]\s*\"?([0-9a-f]{{16,32}})(?![0-9a-z])",
                   re.IGNORECASE) for key in ("trace", "span")]
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
#: Bytes of a line decoded at most: 4 per character always hold MAX_LINE_CHARS characters.
_RAW_CHARS = 4 * MAX_LINE_CHARS
_TRANSIENT = (urllib3.exceptions.HTTPError, OSError)


@dataclass(frozen=True)
class _Pod:
    name: str
    service: str
    container: str | None  # sent only when the pod has several
    since_s: float | None  # the start of the instance read, when earlier ones exist


@dataclass
class _Run:
    """One ``logs`` call: its requests, what the pods gave, what to tell."""

    max_requests: int
    requests: int = 0
    rows: list[tuple[int, str, str, str, str, str]] = field(default_factory=list)
    covered: list[tuple[float, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cut: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)


class _Stop(Exception):
    """No more requests: the cap or the deadline is reached (the message says which), or the
    API refused (the note says)."""


class PodLogs:
    """``LogSource`` over ``pods/log`` of one namespace."""

    name = "pods/log"

    def __init__(self, namespace: str, settings: LogsSettings, host: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.namespace, self.settings, self._host, self._clock = namespace, settings, host, clock
        self._api: kubernetes.client.CoreV1Api | None = None
        self._lock = threading.Lock()

    def logs(self, start_s: float, end_s: float, services: Sequence[str] = ()) -> LogBatch:
        run, now = _Run(self.settings.max_requests), self._clock()
        if end_s <= start_s:
            return LogBatch()
        if start_s >= now:
            return LogBatch(notes=(f"pods/log: the window starts at {format_utc(start_s)}, after now",))
        try:
            pods = self._chosen(self._list(run), set(services), run)
        except _Stop:
            return self._batch(run, ())
        if not pods:  # nothing to read: complete
            return self._batch(run, [(start_s, min(end_s, now))])
        self._read_all(pods, start_s, end_s, run)
        low = max((lo for lo, _ in run.covered), default=0.0)
        high = min((hi for _, hi in run.covered), default=0.0)
        return self._batch(run, [(low, high)])  # the intersection; empty when high <= low

    # reading --------------------------------------------------------------------------------

    def _read_all(self, pods: list[_Pod], start_s: float, end_s: float, run: _Run) -> None:
        budget = self.settings.max_lines * BYTES_PER_LINE
        for index, pod in enumerate(pods):
            # What is left of the budget, over the pods the request cap still lets us read.
            readers = min(len(pods) - index, run.max_requests - run.requests)
            share, asked_s = budget // max(1, readers), self._clock()
            try:
                if share <= 0:
                    raise _Stop("the byte budget (logs.max_lines) is spent")
                body = self._read(pod, start_s, asked_s, share, run)
            except _Stop as stop:
                run.notes.append(f"pods/log: read {index} of {len(pods)} pods of namespace "
                                 f"{self.namespace}" + (f": {stop}" if str(stop) else ""))
                return
            if body is None:
                continue
            budget -= len(body)
            complete_s = self._parse(pod, body, share, start_s, end_s, run)
            if pod.since_s is not None and pod.since_s > start_s:
                run.restarted.append(f"{pod.name} at {format_utc(pod.since_s)}")
            run.covered.append((max(start_s, pod.since_s or start_s),
                                min(end_s, asked_s, complete_s)))

    def _read(self, pod: _Pod, start_s: float, asked_s: float, share: int,
              run: _Run) -> bytes | None:
        params: dict[str, Any] = {"timestamps": True, "limit_bytes": share,
                                  "since_seconds": max(1, math.ceil(asked_s - start_s))}
        if pod.container:
            params["container"] = pod.container
        try:
            return self._call(run, f"pods/log of {pod.name}", "read_namespaced_pod_log",
                              pod.name, self.namespace, **params)
        except kubernetes.client.ApiException as exc:
            if exc.status == 403:  # the same for every pod: stop asking
                run.notes.append(self._refused(exc, "get", "pods/log"))
                raise _Stop from exc
            run.failed.append(f"{pod.name} ({_reason(exc)})")
        except _TRANSIENT as exc:
            run.failed.append(f"{pod.name} ({_reason(exc)})")
        return None

    @staticmethod
    def _parse(pod: _Pod, body: bytes, share: int, start_s: float, end_s: float,
               run: _Run) -> float:
        """Keeps the pod's lines of the window; the time it is complete until (inf: all)."""
        lines = body.split(b"\n")
        unfinished = lines.pop()  # b"" when the body ends with a newline
        low, high, last_ns = round(start_s * 1e9), round(end_s * 1e9), None
        for raw in lines:
            stamp = _STAMP.match(raw)
            if stamp is None:
                continue  # not a kubelet line: the API prefixes every line it sends
            last_ns = _stamp_ns(stamp)
            if low <= last_ns < high:
                run.rows.append((last_ns, pod.name, pod.service,
                                 *_text(raw[stamp.end():stamp.end() + _RAW_CHARS])))
        if not unfinished and len(body) < share:
            return math.inf
        run.cut.append(pod.name)
        stamp = _STAMP.match(unfinished)
        if stamp is not None:  # every line before the unfinished one is here
            return _stamp_ns(stamp) / 1e9
        return -math.inf if last_ns is None else last_ns / 1e9

    # listing --------------------------------------------------------------------------------

    def _list(self, run: _Run) -> list[dict[str, Any]]:
        pods: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            paging: dict[str, Any] = {"limit": PAGE} | ({"_continue": token} if token else {})
            try:
                page = json.loads(self._call(run, "the pod list", "list_namespaced_pod",
                                             self.namespace, **paging))
            except kubernetes.client.ApiException as exc:
                run.notes.append(self._refused(exc, "list", "pods") if exc.status == 403 else
                                 f"pods/log: pods of {self.namespace} not listed: {_reason(exc)}")
                raise _Stop from exc
            except (*_TRANSIENT, ValueError, BackendError, _Stop) as exc:
                run.notes.append(f"pods/log: pods of {self.namespace} not listed: {_reason(exc)}")
                raise _Stop from exc
            pods += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return pods

    def _chosen(self, items: list[dict[str, Any]], services: set[str], run: _Run) -> list[_Pod]:
        """The pods to read: of ``services`` (all when empty), not pending, one per service
        before a second of any."""
        pods, pending = [], 0
        for item in items:
            name = str((item.get("metadata") or {}).get("name") or "")
            if not name or (services and service_of_pod(name) not in services):
                continue
            if (item.get("status") or {}).get("phase") == "Pending":
                pending += 1
            else:
                pods.append(_pod(name, item))
        if pending:
            run.notes.append(f"pods/log: {pending} pending pods of {self.namespace}: no logs yet")
        several = [f"{p.name}/{p.container}" for p in pods if p.container]
        if several:
            run.notes.append("pods/log: pods with several containers, one read (kubectl's "
                             "default-container annotation, else the first that is not a known "
                             f"sidecar): {_names(several)}")
        seen: dict[str, int] = {}
        rank: dict[str, int] = {}
        for pod in sorted(pods, key=lambda p: p.name):
            rank[pod.name] = seen[pod.service] = seen.get(pod.service, -1) + 1
        return sorted(pods, key=lambda p: (rank[p.name], p.name))

    # the API --------------------------------------------------------------------------------

    def _call(self, run: _Run, what: str, method: str, *args: Any, **kwargs: Any) -> bytes:
        """The raw body of a ``CoreV1Api`` call, retried on connection errors, timeouts, 429
        and 5xx; ``_Stop`` once the request cap or the diagnosis deadline is reached."""
        delay = self.settings.backoff_s
        for attempt in range(self.settings.retries + 1):
            left = deadline.remaining()
            if run.requests >= run.max_requests:
                raise _Stop(f"logs.max_requests={run.max_requests} reached before {what}")
            if left is not None and left <= 0:
                raise _Stop(f"the diagnosis deadline passed before {what}")
            run.requests += 1
            try:
                response = getattr(self._core(), method)(
                    *args, _preload_content=False,
                    _request_timeout=deadline.timeout(self.settings.timeout_s), **kwargs)
                data: bytes = response.data
                return data
            except (kubernetes.client.ApiException, *_TRANSIENT) as exc:
                status = getattr(exc, "status", 0) or 0
                if attempt == self.settings.retries or (
                        isinstance(exc, kubernetes.client.ApiException)
                        and status not in (0, 429) and status < 500):
                    raise
            deadline.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the API client's connections (the store closes its log source at the end of
        the diagnosis)."""
        with self._lock:
            api, self._api = self._api, None
        if api is not None:
            api.api_client.close()

    def _core(self) -> kubernetes.client.CoreV1Api:
        with self._lock:
            if self._api is None:
                self._api = kubernetes.client.CoreV1Api(api_client(self._host))
            return self._api

    def _refused(self, exc: kubernetes.client.ApiException, verb: str, resource: str) -> str:
        return (f"pods/log: the Kubernetes API refused to {verb} {resource} in namespace "
                f"{self.namespace} ({_reason(exc)}): the operator's service account needs RBAC "
                f"{verb} on {resource} there (Helm logs.podLogs=true)")

    def _batch(self, run: _Run, coverage: Sequence[tuple[float, float]]) -> LogBatch:
        cut = (f"reached their share of the byte budget (logs.max_lines × {BYTES_PER_LINE} B): "
               "complete up to their last whole line")
        restarted = "restarted in the window: their earlier instances are not read"
        for pods, what in ((run.cut, cut), (run.restarted, restarted), (run.failed, "not read")):
            if pods:
                run.notes.append(f"pods/log: {len(pods)} pods {what}: {_names(pods)}")
        lines = empty_lines() if not run.rows else pd.DataFrame(
            run.rows, columns=list(LINE_COLUMNS)).astype({"time_ns": "int64"}).sort_values(
            "time_ns", kind="stable", ignore_index=True)
        return LogBatch(lines=lines, coverage=merge_coverage(coverage), notes=tuple(run.notes),
                        requests=run.requests)


def _pod(name: str, item: dict[str, Any]) -> _Pod:
    containers = [str(c.get("name")) for c in (item.get("spec") or {}).get("containers") or []]
    chosen = None
    if len(containers) > 1:
        preferred = ((item.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CONTAINER)
        chosen = preferred if preferred in containers else next(
            (c for c in containers if c not in SIDECARS), containers[0])
    since_s = None
    for status in (item.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == (chosen or containers[:1] or [""])[0] and int(
                status.get("restartCount") or 0) > 0:
            state = status.get("state") or {}
            instance = (state.get("running") or state.get("terminated")
                        or (status.get("lastState") or {}).get("terminated") or {})
            stamp = _STAMP.match(f"{instance.get('startedAt')} ".encode())
            since_s = None if stamp is None else _stamp_ns(stamp) / 1e9
    return _Pod(name, service_of_pod(name), chosen, since_s)


def _text(raw: bytes) -> tuple[str, str, str]:
    """A line's text (cut, decoded, without colour codes and control characters) and the trace
    and span IDs it names ("" when none)."""
    text = raw.decode("utf-8", errors="replace").rstrip("\r")
    text = _CONTROL.sub("", _ANSI.sub("", text))[:MAX_LINE_CHARS]
    trace, span = (pattern.search(text) for pattern in _IDS)
    return text, trace.group(1).lower() if trace else "", span.group(1).lower() if span else ""


def _stamp_ns(stamp: re.Match[bytes]) -> int:
    """Epoch ns of an RFC 3339 (nano) timestamp prefix."""
    seconds = calendar.timegm(tuple(int(g) for g in stamp.groups()[:6]))
    zone = stamp.group(8)
    if zone != b"Z":
        offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
        seconds -= offset if zone[:1] == b"+" else -offset
    return seconds * 1_000_000_000 + int((stamp.group(7) or b"0").ljust(9, b"0"))


def _names(names: list[str]) -> str:
    more = f" and {len(names) - NAMED} more" if len(names) > NAMED else ""
    return ", ".join(names[:NAMED]) + more


def _reason(exc: Exception) -> str:
    if isinstance(exc, kubernetes.client.ApiException):
        try:
            message = str(json.loads(exc.body or "{}").get("message") or "")
        except (ValueError, AttributeError):
            message = ""
        return f"HTTP {exc.status} {exc.reason}" + (f": {message[:200]}" if message else "")
    return str(exc) if isinstance(exc, _Stop) else f"{type(exc).__name__}: {exc}"[:300]
