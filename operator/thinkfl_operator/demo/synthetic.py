"""A small, deterministic, OnlineBoutique-like incident: spans, per-pod KPI frames and topology.

Every random draw comes from ``numpy.random.default_rng(seed)`` (and generators spawned from
it), so one seed always yields the same frames. The fault is active in ``[T, T + 5 min)``:

* ``network_delay``: every call into the faulty pod takes +200 ms in the caller's client span;
  the faulty pod's own server span is unchanged.
* ``cpu_contention``: the own time of the faulty pod's server spans is ×8, its CPU KPI rises.
* ``return``: the faulty pod's server spans end after ~5% of their time, without child calls.
* ``exception``: a method of the faulty pod throws and the service answers with a business
  error: traces and metrics do not move (as in the real code faults we have), only its logs do:
  the line its handler writes after the lookup stops, and an ERROR line takes its place.

Every server span also writes log lines (``logs``: the handler's two INFO lines with the trace
and span IDs, as Java services log them), so the log evidence has the same shape as real logs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import numpy as np
import numpy.typing as npt
import pandas as pd

from thinkfl_operator.telemetry.loglines import LogSource
from thinkfl_operator.telemetry.memory import MemoryLogs, MemoryStore
from thinkfl_operator.telemetry.spans import COLUMNS

FAULTS = ("network_delay", "cpu_contention", "return", "exception")
#: service → (gRPC interface, median own time of its server spans in ms).
_SERVICES: dict[str, tuple[str, float]] = {
    "frontend": ("hipstershop.Frontend", 3.0),
    "cartservice": ("hipstershop.CartService", 0.8),
    "productcatalogservice": ("hipstershop.ProductCatalogService", 0.3),
    "currencyservice": ("hipstershop.CurrencyService", 0.4),
    "recommendationservice": ("hipstershop.RecommendationService", 1.5),
    "adservice": ("hipstershop.AdService", 0.6),
    "checkoutservice": ("hipstershop.CheckoutService", 2.0),
    "paymentservice": ("hipstershop.PaymentService", 0.5),
    "shippingservice": ("hipstershop.ShippingService", 0.4),
    "emailservice": ("hipstershop.EmailService", 1.0),
    "redis-cart": ("redis", 0.15),
}
SERVICES = tuple(_SERVICES)
KPIS = (
    "CpuUsageRate(%)",
    "MemoryUsageRate(%)",
    "NetworkReceiveBytes",
    "PodServerLatencyP90(s)",
    "NodeCpuUsageRate(%)",
)
DEFAULT_TIME_S = datetime(2026, 11, 1, 10, 40, tzinfo=UTC).timestamp()
FAULT_S = 300.0
STEP_S = 60.0
ROOT_OPERATION = "hipstershop.Frontend/Recv."

_DELAY_US = 200_000
_SIGMA = 0.35  # lognormal spread of own times
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes uses for generated name parts
_BLOCK = 1 << 15
_REQUESTS = ("home", "product", "cart", "add", "checkout")
_REQUEST_P = (0.35, 0.3, 0.15, 0.1, 0.1)
_Row = tuple[str, str, str, str, str, str, str, int, int, str, str]


@dataclass(frozen=True, slots=True)
class _Call:
    """One RPC (service + method) and the calls its server makes, in order."""

    service: str
    method: str
    children: tuple[_Call, ...] = ()


def _c(service: str, method: str, *children: _Call) -> _Call:
    return _Call(service, method, children)


@cache
def _request(kind: str, n: int) -> _Call:
    """The frontend's root call for one request type (``n``: products on the page)."""
    catalog, currency = "productcatalogservice", "currencyservice"
    cart = _c("cartservice", "GetCart", _c("redis-cart", "HGET"))
    recs = _c("recommendationservice", "ListRecommendations", _c(catalog, "ListProducts"))
    currencies, convert = _c(currency, "GetSupportedCurrencies"), _c(currency, "Convert")
    products, ads = (_c(catalog, "GetProduct"),) * n, _c("adservice", "GetAds")
    quote = _c("shippingservice", "GetQuote")
    calls: tuple[_Call, ...]
    if kind == "home":
        calls = (currencies, _c(catalog, "ListProducts"), cart, *(convert,) * n, recs, *products)
        calls = (*calls, ads)
    elif kind == "product":
        calls = (products[0], currencies, cart, convert, recs, *products, ads)
    elif kind == "cart":
        calls = (currencies, cart, recs, *products, quote, convert)
    elif kind == "add":
        calls = (products[0], _c("cartservice", "AddItem", _c("redis-cart", "HSET")))
    else:
        empty = _c("cartservice", "EmptyCart", _c("redis-cart", "HSET"))
        order = _c(
            "checkoutservice", "PlaceOrder", cart, *products, *(convert,) * n, quote, convert,
            _c("paymentservice", "Charge"), _c("shippingservice", "ShipOrder"), empty,
            _c("emailservice", "SendOrderConfirmation"),
        )
        calls = (currencies, order)
    return _Call("frontend", "Recv.", calls)


def _stream(draw: Callable[[int], npt.NDArray[np.float64]]) -> Iterator[float]:
    """Scalars drawn in blocks (numpy is fast in bulk, slow per scalar)."""
    while True:
        yield from draw(_BLOCK).tolist()


def _hex_ids(rng: np.random.Generator, nbytes: int) -> Iterator[str]:
    width = 2 * nbytes
    while True:
        text = rng.bytes(nbytes * _BLOCK).hex()
        yield from (text[i : i + width] for i in range(0, len(text), width))


@dataclass(slots=True)
class _Sim:
    """What span generation needs: topology, the fault, and the random streams."""

    pods: dict[str, tuple[str, ...]]
    nodes: dict[str, str]
    service_of: dict[str, str]
    fault: str
    faulty_pod: str
    window_us: tuple[int, int]
    normal: Iterator[float]
    uniform: Iterator[float]
    ids: Iterator[str]
    trace_id: str = ""

    def active(self, pod: str, start_us: int, fault: str) -> bool:
        lo, hi = self.window_us
        return self.fault == fault and pod == self.faulty_pod and lo <= start_us < hi

    def own_us(self, service: str) -> int:
        median_ms = _SERVICES[service][1]
        return max(1, round(1000.0 * median_ms * math.exp(_SIGMA * next(self.normal))))

    def pick(self, service: str) -> str:
        pods = self.pods[service]
        return pods[int(next(self.uniform) * len(pods))]

    def gap_us(self) -> int:
        return 300 + int(700 * next(self.uniform))

    def row(self, span: str, parent: str, pod: str, op: str, start: int, dur: int) -> _Row:
        kind = "rpc" if parent else "http"
        svc, node = self.service_of[pod], self.nodes[pod]
        return (self.trace_id, span, parent, pod, svc, node, op, start, dur, "0", kind)


def _children(sim: _Sim, rows: list[_Row], call: _Call, pod: str, parent: str, t: int) -> int:
    """Run a server's calls one after another from ``t``; return when the last one ends."""
    for child in call.children:
        t = _client(sim, rows, child, pod, parent, t)
    return t


def _serve(
    sim: _Sim, rows: list[_Row], call: _Call, pod: str, parent: str, start: int, op: str
) -> int:
    """Emit the server span (and its subtree) of ``call`` in ``pod``; return its duration."""
    span_id = next(sim.ids)
    own = sim.own_us(call.service)
    if sim.active(pod, start, "cpu_contention"):
        own *= 8
    pre = own // 2
    if sim.active(pod, start, "return"):
        normal = _children(sim, [], call, pod, span_id, start + pre) - start + own - pre
        duration = max(1, round(0.05 * normal))
    else:
        duration = _children(sim, rows, call, pod, span_id, start + pre) - start + own - pre
    rows.append(sim.row(span_id, parent, pod, op, start, duration))
    return duration


def _client(sim: _Sim, rows: list[_Row], call: _Call, caller: str, parent: str, start: int) -> int:
    """Emit a client span in ``caller`` and the callee's server span; return the end time."""
    span_id = next(sim.ids)
    pod = sim.pick(call.service)
    gap = sim.gap_us()
    delay = _DELAY_US if sim.active(pod, start, "network_delay") else 0
    name = f"{_SERVICES[call.service][0]}/{call.method}"
    server = _serve(sim, rows, call, pod, span_id, start + gap // 2, "/" + name)
    duration = server + gap + delay
    rows.append(sim.row(span_id, parent, caller, name, start, duration))
    return start + duration


def _token(rng: np.random.Generator, length: int) -> str:
    return "".join(_ALPHABET[i] for i in rng.integers(0, len(_ALPHABET), length).tolist())


def _topology(rng: np.random.Generator) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """service → its Deployment pods, and pod → node."""
    pods: dict[str, tuple[str, ...]] = {}
    nodes: dict[str, str] = {}
    for service in SERVICES:
        replicaset = _token(rng, 10)
        names: list[str] = []
        for _ in range(int(rng.integers(1, 3))):
            name = f"{service}-{replicaset}-{_token(rng, 5)}"
            while name in names:
                name = f"{service}-{replicaset}-{_token(rng, 5)}"
            names.append(name)
            nodes[name] = f"node-{int(rng.integers(1, 4))}"
        pods[service] = tuple(names)
    return pods, nodes


def _spans(rng: np.random.Generator, sim: _Sim, n: int, start_s: float, end_s: float) -> pd.DataFrame:
    starts = (np.sort(rng.uniform(start_s, end_s, n)) * 1e6).astype(np.int64).tolist()
    kinds = rng.choice(len(_REQUESTS), size=n, p=_REQUEST_P).tolist()
    counts = rng.integers(1, 5, size=n).tolist()
    trace_ids = _hex_ids(rng, 16)
    rows: list[_Row] = []
    for start, kind, count in zip(starts, kinds, counts, strict=True):
        sim.trace_id = next(trace_ids)
        root = _request(_REQUESTS[kind], count)
        _serve(sim, rows, root, sim.pick("frontend"), "", start, ROOT_OPERATION)
    frame = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
    frame = frame.sort_values("start_us", kind="stable").reset_index(drop=True)
    return frame.astype({"start_us": "int64", "duration_us": "int64"})


def _shift(cols: dict[str, npt.NDArray[np.float64]], fault: str, on: npt.NDArray[np.bool_]) -> None:
    if fault == "cpu_contention":
        cols["CpuUsageRate(%)"][on] += 45.0
    elif fault == "network_delay":
        cols["PodServerLatencyP90(s)"][on] += _DELAY_US / 1e6
    elif fault == "return":
        cols["NetworkReceiveBytes"][on] *= 0.2


def _logs(spans: pd.DataFrame, fault: str, faulty_pod: str, window_us: tuple[int, int]) -> pd.DataFrame:
    """Two lines per server span (``loglines.LINE_COLUMNS``): the handler's "request" line at
    the span's start and its "done" line at its end; under ``exception`` the faulty pod's "done"
    line becomes an ERROR in the fault window."""
    server = spans[spans["operation"].astype(str).str.startswith("/") | (spans["parent_id"] == "")]
    method = server["operation"].astype(str).str.rsplit("/", n=1).str[-1].str.rstrip(".")
    handler = server["service"].astype(str).str.replace("service", "", regex=False).str.capitalize() + \
        "Handler"
    start, end = server["start_us"].to_numpy(), (server["start_us"] + server["duration_us"]).to_numpy()
    ids = " TraceID: " + server["trace_id"].astype(str) + " SpanID: " + server["span_id"].astype(str)
    request = "INFO  " + handler + "#41" + ids + " [" + method + "][request received]"
    done = "INFO  " + handler + "#57" + ids + " [" + method + "][done in " + \
        (server["duration_us"] // 1000).astype(str) + " ms]"
    if fault == "exception":
        hit = ((server["pod"].astype(str) == faulty_pod) & (server["start_us"] >= window_us[0])
               & (server["start_us"] < window_us[1])).to_numpy()
        done = done.where(~hit, "ERROR " + handler + "#63" + ids + " [" + method +
                          "][lookup failed: java.lang.NullPointerException: item is null]")
    lines = pd.DataFrame({
        "time_ns": np.concatenate([start, end]).astype("int64") * 1000,
        "pod": np.concatenate([server["pod"].astype(str).to_numpy()] * 2),
        "service": np.concatenate([server["service"].astype(str).to_numpy()] * 2),
        "line": np.concatenate([request.to_numpy(), done.to_numpy()]),
        "trace_id": np.concatenate([server["trace_id"].astype(str).to_numpy()] * 2),
        "span_id": np.concatenate([server["span_id"].astype(str).to_numpy()] * 2),
    })
    return lines.sort_values("time_ns", kind="stable").reset_index(drop=True)


def _metrics(
    rng: np.random.Generator, nodes: dict[str, str], ts: npt.NDArray[np.float64],
    on: npt.NDArray[np.bool_], fault: str, faulty_pod: str,
) -> dict[str, pd.DataFrame]:
    """One KPI frame per pod (index ``ts``: epoch seconds); the faulty pod shifts when ``on``."""
    n = len(ts)
    node_cpu = {nd: rng.uniform(20, 50) + rng.normal(0, 2, n) for nd in sorted(set(nodes.values()))}
    if fault == "cpu_contention":
        node_cpu[nodes[faulty_pod]][on] += 10.0
    out: dict[str, pd.DataFrame] = {}
    for pod in sorted(nodes):
        cols = {
            "CpuUsageRate(%)": rng.uniform(5, 30) + rng.normal(0, 1.5, n),
            "MemoryUsageRate(%)": rng.uniform(20, 60) + rng.normal(0, 1.0, n),
            "NetworkReceiveBytes": rng.uniform(5e4, 5e5) * (1 + rng.normal(0, 0.05, n)),
            "PodServerLatencyP90(s)": rng.uniform(0.005, 0.05) * (1 + rng.normal(0, 0.05, n)),
            "NodeCpuUsageRate(%)": node_cpu[nodes[pod]].copy(),
        }
        if pod == faulty_pod:
            _shift(cols, fault, on)
        for kpi in ("CpuUsageRate(%)", "MemoryUsageRate(%)", "NodeCpuUsageRate(%)"):
            cols[kpi] = np.clip(cols[kpi], 0.0, 100.0)
        cols["NetworkReceiveBytes"] = np.maximum(cols["NetworkReceiveBytes"], 0.0)
        cols["PodServerLatencyP90(s)"] = np.maximum(cols["PodServerLatencyP90(s)"], 0.0)
        out[pod] = pd.DataFrame(cols, index=pd.Index(ts, name="ts"))
    return out


@dataclass(frozen=True, slots=True, eq=False)
class SyntheticIncident:
    """Generated spans and KPI frames with the ground truth of the injected fault."""

    spans: pd.DataFrame
    metrics: dict[str, pd.DataFrame]
    nodes: dict[str, str]
    time_s: float
    fault: str
    faulty_pod: str
    faulty_service: str
    logs: pd.DataFrame

    def store(self, logs: LogSource | None = None) -> MemoryStore:
        """The incident as a store; its own log lines unless another log source is given."""
        return MemoryStore(self.spans, self.metrics, self.nodes, logs=logs or MemoryLogs(self.logs))


def _check(fault: str, service: str, minutes: int, traces_per_minute: int) -> None:
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; allowed: {', '.join(FAULTS)}")
    if service not in _SERVICES:
        raise ValueError(f"unknown service {service!r}; allowed: {', '.join(SERVICES)}")
    if minutes * 60 <= FAULT_S:
        raise ValueError(f"minutes must exceed the {FAULT_S / 60:.0f}-minute fault, got {minutes}")
    if traces_per_minute < 1:
        raise ValueError(f"traces_per_minute must be at least 1, got {traces_per_minute}")


def generate(
    seed: int = 7,
    fault: str = "network_delay",
    service: str = "recommendationservice",
    minutes: int = 60,
    traces_per_minute: int = 40,
    time_s: float | None = None,
) -> SyntheticIncident:
    """A synthetic incident: ``minutes`` of traffic ending when the 5-minute fault at T ends."""
    _check(fault, service, minutes, traces_per_minute)
    t = DEFAULT_TIME_S if time_s is None else float(time_s)
    end_s = t + FAULT_S
    start_s = end_s - 60.0 * minutes
    topo, traces, normal, uniform, ids, kpis = np.random.default_rng(seed).spawn(6)
    pods, nodes = _topology(topo)
    faulty_pod = pods[service][int(topo.integers(len(pods[service])))]
    sim = _Sim(
        pods=pods,
        nodes=nodes,
        service_of={p: s for s, names in pods.items() for p in names},
        fault=fault,
        faulty_pod=faulty_pod,
        window_us=(round(t * 1e6), round(end_s * 1e6)),
        normal=_stream(normal.standard_normal),
        uniform=_stream(uniform.random),
        ids=_hex_ids(ids, 8),
    )
    spans = _spans(traces, sim, minutes * traces_per_minute, start_s, end_s)
    ts = start_s + STEP_S * np.arange(minutes + 1, dtype=np.float64)  # one sample a minute
    metrics = _metrics(kpis, nodes, ts, (ts >= t) & (ts <= end_s), fault, faulty_pod)
    logs = _logs(spans, fault, faulty_pod, sim.window_us)
    return SyntheticIncident(spans, metrics, nodes, t, fault, faulty_pod, service, logs)
