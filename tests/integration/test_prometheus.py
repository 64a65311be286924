"""``PrometheusMetrics`` against the real Prometheus server, backfilled with Nezha TT metrics.

The point is fidelity: the live path (Prometheus) must give the evidence tools the same KPI
samples, to the bit and to the second, as the offline path (``NezhaStore``) over the same data.
Error handling is checked against the real server (a PromQL error), a closed port, and a tiny
stub that answers 503.
"""

from __future__ import annotations

import http.server
import json
import math
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.fakes.background import threaded_http
from tests.fakes.prometheus_server import RealPrometheus, metric_pods, synthetic_nodes
from tests.shared import NEZHA_TT_DAY, shared_path
from thinkfl_operator.evidence.metrics import fluctuations
from thinkfl_operator.telemetry.naming import service_of_pod
from thinkfl_operator.telemetry.nezha import NezhaStore
from thinkfl_operator.telemetry.prometheus import (
    DEFAULT_CATALOG,
    NEZHA_CATALOG,
    NEZHA_KPIS,
    PrometheusMetrics,
    PrometheusQueryError,
    PrometheusUnavailable,
    is_plain_selector,
    names_selector,
    nezha_metric_name,
    pods_regex,
    render,
)
from thinkfl_operator.telemetry.store import KpiBlock

#: TT 2023-01-30 11:59:21 UTC, cpu_contention on ts-basic-service; ± the 3σ tool's baseline.
FAULT_S = 1675079961.0
START_S, END_S = FAULT_S - 1200, FAULT_S + 1200
BASIC = "ts-basic-service-5dc8d4f9fd-llznp"
CONTACTS = "ts-contacts-service-866bd68c97-dzqgd"
PRESERVE_OTHER = "ts-preserve-other-service-66646bdb5b-l8hp6"  # many NaN values
PODS = [BASIC, CONTACTS, PRESERVE_OTHER]


@pytest.fixture(scope="module")
def tt_day() -> Path:
    return shared_path(*NEZHA_TT_DAY)


@pytest.fixture(scope="module")
def offline(tt_day: Path) -> NezhaStore:
    return NezhaStore(tt_day)


def live(server: RealPrometheus, catalog: dict[str, str] = NEZHA_CATALOG,
         **kwargs: object) -> PrometheusMetrics:
    return PrometheusMetrics(server.url, catalog, **kwargs)  # type: ignore[arg-type]


def without_empty_rows(block: KpiBlock) -> KpiBlock:
    """A row with no value at all cannot exist in Prometheus (NaN values are not stored)."""
    keep = ~np.isnan(block.values).all(axis=1)
    return KpiBlock(block.ts[keep], block.values[keep], block.kpis)


def assert_same_block(got: KpiBlock, want: KpiBlock) -> None:
    assert got.kpis == want.kpis
    np.testing.assert_array_equal(got.ts, want.ts)
    np.testing.assert_array_equal(got.values, want.values)  # NaN == NaN here, bit-exact otherwise


# --------------------------------------------------------------------------------------------
# live == offline


@pytest.mark.shared_data
@pytest.mark.parametrize("window", [(START_S, END_S), (START_S + 0.5, END_S - 30.25)])
def test_blocks_equal_the_offline_store(prometheus_nezha_tt: RealPrometheus, offline: NezhaStore,
                                        window: tuple[float, float]) -> None:
    start, end = window
    prom = live(prometheus_nezha_tt)
    got = prom.blocks(PODS, start, end)
    want = offline.metrics(PODS, start, end)

    assert list(got) == PODS
    assert prom.requests == 1  # the catalog's gauges share their matchers: one query for all
    for pod in PODS:
        assert got[pod].kpis == NEZHA_KPIS
        assert_same_block(got[pod], without_empty_rows(want[pod]))
        assert len(got[pod]) >= 39  # ~40 one-minute samples in 40 min
    assert np.isnan(got[PRESERVE_OTHER].values).any()  # NaN-aware: missing values stay missing


@pytest.mark.shared_data
def test_three_sigma_tool_gives_the_same_answer_live_and_offline(
        prometheus_nezha_tt: RealPrometheus, offline: NezhaStore) -> None:
    pods = [p for p in offline.metric_pods() if service_of_pod(p).startswith("ts-basic")] + PODS
    got = live(prometheus_nezha_tt).blocks(pods, START_S, END_S)
    want = offline.metrics(pods, START_S, END_S)
    nodes = synthetic_nodes(offline.metric_pods())

    live_found = fluctuations(got, FAULT_S, nodes)
    assert live_found == fluctuations(want, FAULT_S, nodes)
    assert any(f.pod == BASIC for f in live_found)  # the cpu_contention shows


@pytest.mark.shared_data
def test_requests_do_not_grow_with_pods_or_plain_kpis(prometheus_nezha_tt: RealPrometheus,
                                                      offline: NezhaStore) -> None:
    """Gauges with the same matchers are read in one query; an expression costs one of its own."""
    plain = {k: NEZHA_CATALOG[k] for k in ("CpuUsageRate(%)", "MemoryUsage(Mi)",
                                           "PodServerLatencyP90(s)")}
    catalog = {**plain, "Busiest": "max by (pod) (nezha_cpu_usage_rate_percent{pod=~\"{pods}\"})"}
    prom = live(prometheus_nezha_tt, catalog)
    pods = offline.metric_pods()

    got = prom.blocks(pods, START_S, END_S)

    assert prom.requests == 2
    assert sorted(got) == pods
    want = offline.metrics(pods, START_S, END_S)
    for pod in pods:
        columns = [want[pod].kpis.index(k) for k in plain]
        subset = KpiBlock(want[pod].ts, want[pod].values[:, columns], tuple(plain))
        only_plain = got[pod].values[:, :len(plain)]
        rows = ~np.isnan(only_plain).all(axis=1)
        assert_same_block(KpiBlock(got[pod].ts[rows], only_plain[rows], tuple(plain)),
                          without_empty_rows(subset))
        assert (~np.isnan(got[pod].values[:, len(plain)])).any()  # the expression's own column


@pytest.mark.shared_data
def test_plain_kpis_too_large_together_are_read_one_by_one(prometheus_nezha_tt: RealPrometheus) -> None:
    """Over the body cap together, under it alone: the same blocks, one request more per KPI."""
    kpis = ("CpuUsageRate(%)", "MemoryUsage(Mi)", "PodServerLatencyP90(s)")
    catalog = {k: NEZHA_CATALOG[k] for k in kpis}
    names = [nezha_metric_name(k) for k in kpis]
    matchers = f'pod=~"{pods_regex(PODS)}"'

    def body_bytes(chosen: list[str]) -> int:
        query = f"{names_selector(chosen, matchers)}[{math.ceil((END_S - START_S) * 1000) + 1000}ms]"
        answer = requests.get(f"{prometheus_nezha_tt.url}/api/v1/query",
                              params={"query": query, "time": END_S}, timeout=10)
        answer.raise_for_status()
        return len(answer.content)

    alone = max(body_bytes([n]) for n in names)
    assert body_bytes(names) > alone + 512  # the cap below falls between the two
    capped = live(prometheus_nezha_tt, catalog, max_bytes=alone + 256)
    want = live(prometheus_nezha_tt, catalog).blocks(PODS, START_S, END_S)

    got = capped.blocks(PODS, START_S, END_S)

    assert capped.requests == 1 + len(kpis)
    assert list(got) == list(want)
    for pod in PODS:
        assert_same_block(got[pod], want[pod])


@pytest.mark.shared_data
def test_unknown_pods_and_empty_windows_give_nothing(prometheus_nezha_tt: RealPrometheus) -> None:
    prom = live(prometheus_nezha_tt)
    assert prom.blocks([], START_S, END_S) == {}
    assert prom.requests == 0
    assert prom.blocks(["no-such-pod-abc12-xyz98"], START_S, END_S) == {}
    assert prom.blocks(PODS, 1.0e9, 1.0e9 + 600) == {}


# --------------------------------------------------------------------------------------------
# range queries (expressions that are not plain selectors)


@pytest.mark.shared_data
def test_a_function_is_evaluated_on_the_step_grid(prometheus_nezha_tt: RealPrometheus,
                                                  offline: NezhaStore) -> None:
    catalog = {"CpuAvg2m": 'avg_over_time(nezha_cpu_usage_rate_percent{pod=~"{pods}"}[2m])'}
    prom = live(prometheus_nezha_tt, catalog)
    start, end = 1675079400.0, 1675080600.0  # whole minutes

    got = prom.blocks([BASIC], start, end, step_s=60)[BASIC]

    np.testing.assert_array_equal(got.ts, np.arange(start, end + 1, 60))
    raw = offline.metrics([BASIC], start - 600, end)[BASIC]
    cpu = raw.values[:, raw.kpis.index("CpuUsageRate(%)")]
    for t, value in zip(got.ts, got.values[:, 0], strict=True):
        inside = (raw.ts >= t - 120) & (raw.ts <= t) & ~np.isnan(cpu)
        assert value == pytest.approx(cpu[inside].mean(), rel=1e-12)
    assert prom.requests == 1


@pytest.mark.shared_data
def test_default_catalog_is_valid_promql(prometheus_nezha_tt: RealPrometheus) -> None:
    """Every default expression parses and runs on the real server (no such series here)."""
    prom = live(prometheus_nezha_tt, DEFAULT_CATALOG)
    assert prom.blocks(PODS, START_S, END_S) == {}
    assert prom.requests == len(DEFAULT_CATALOG)
    # the pod listing wraps every expression in a subquery when kube_pod_info is not used
    assert live(prometheus_nezha_tt, DEFAULT_CATALOG, node_source="").pods(
        START_S, END_S, service_of_pod) == []


# --------------------------------------------------------------------------------------------
# topology


@pytest.mark.shared_data
def test_node_of_reads_kube_pod_info(prometheus_nezha_tt: RealPrometheus, tt_day: Path) -> None:
    nodes = synthetic_nodes(metric_pods(tt_day / "metric"))
    prom = live(prometheus_nezha_tt)

    assert prom.node_of(BASIC) == nodes[BASIC]
    assert prom.node_of(CONTACTS) == nodes[CONTACTS]
    assert prom.node_of("no-such-pod-abc12-xyz98") == ""
    sent = prom.requests
    assert prom.node_of(BASIC) == nodes[BASIC]  # cached
    assert prom.requests == sent


@pytest.mark.shared_data
def test_pods_in_a_window_and_of_one_service(prometheus_nezha_tt: RealPrometheus,
                                             offline: NezhaStore, tt_day: Path) -> None:
    prom = live(prometheus_nezha_tt)

    assert prom.pods(START_S, END_S, service_of_pod) == offline.metric_pods()
    assert prom.pods(START_S, END_S, service_of_pod, "ts-basic-service") == [BASIC]
    assert prom.pods(START_S, END_S, service_of_pod, "no-such-service") == []
    assert prom.pods(1.0e9, 1.0e9 + 600, service_of_pod) == []
    # pods() learnt every pod's node on the way: node_of sends nothing more
    sent = prom.requests
    assert prom.node_of(CONTACTS) == synthetic_nodes(metric_pods(tt_day / "metric"))[CONTACTS]
    assert prom.requests == sent


@pytest.mark.shared_data
def test_pods_from_the_catalog_without_kube_pod_info(prometheus_nezha_tt: RealPrometheus,
                                                     offline: NezhaStore) -> None:
    catalog = {"CpuUsageRate(%)": NEZHA_CATALOG["CpuUsageRate(%)"],
               "CpuAvg": 'avg_over_time(nezha_cpu_usage_rate_percent{pod=~"{pods}"}[2m])'}
    prom = live(prometheus_nezha_tt, catalog, node_source="")

    assert prom.pods(START_S, END_S, service_of_pod) == offline.metric_pods()
    assert prom.pods(START_S, END_S, service_of_pod, "ts-contacts-service") == [CONTACTS]
    assert prom.node_of(BASIC) == ""


# --------------------------------------------------------------------------------------------
# errors


@pytest.mark.shared_data
def test_a_promql_error_shows_prometheus_message(prometheus_nezha_tt: RealPrometheus) -> None:
    prom = live(prometheus_nezha_tt, {"broken": 'rate(nezha_cpu_usage_rate_percent{pod=~"{pods}"'},
                sleep=lambda s: None)

    with pytest.raises(PrometheusQueryError) as caught:
        prom.blocks(PODS, START_S, END_S)

    message = str(caught.value)
    assert "parse error" in message
    assert f"Prometheus at {prometheus_nezha_tt.url}" in message
    assert caught.value.retryable is False
    assert prom.requests == 1  # not retried


@pytest.mark.shared_data
def test_an_execution_error_422_is_not_retried(prometheus_nezha_tt: RealPrometheus) -> None:
    many_to_many = 'nezha_cpu_usage_rate_percent{pod=~"{pods}"} * on(namespace) kube_pod_info'
    prom = live(prometheus_nezha_tt, {"bad": many_to_many}, sleep=lambda s: None)

    with pytest.raises(PrometheusQueryError, match=r"HTTP 422.*many-to-many"):
        prom.blocks(PODS, START_S, END_S)
    assert prom.requests == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_server_raises_unavailable_after_retries() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    waits: list[float] = []
    prom = PrometheusMetrics(url, NEZHA_CATALOG, retries=3, backoff_s=0.5, sleep=waits.append,
                             timeout_s=2)

    with pytest.raises(PrometheusUnavailable) as caught:
        prom.blocks(PODS, START_S, END_S)

    assert f"Prometheus at {url}" in str(caught.value)
    assert "after 4 tries" in str(caught.value)
    assert caught.value.retryable is True
    assert len(waits) == 3  # jittered doubling backoff, each at most its ceiling
    assert all(c / 2 <= w <= c for w, c in zip(waits, [0.5, 1.0, 2.0], strict=True))
    assert prom.requests == 4
    with pytest.raises(PrometheusUnavailable):
        prom.pods(START_S, END_S, service_of_pod)


class _Stub(http.server.BaseHTTPRequestHandler):
    """Answers 503 for the first ``failures`` requests, then an empty matrix."""

    failures = 0
    seen = 0

    def do_GET(self) -> None:
        type(self).seen += 1
        if type(self).seen <= type(self).failures:
            body, status = b"Service Unavailable", 503
        else:
            body = json.dumps({"status": "success",
                               "data": {"resultType": "matrix", "result": []}}).encode()
            status = 200
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[tuple[str, type[_Stub]]]:
    handler = type("Stub", (_Stub,), {"failures": 0, "seen": 0})
    with threaded_http(handler, poll_s=0.05) as url:
        yield url, handler


def test_5xx_is_retried_then_succeeds(stub: tuple[str, type[_Stub]]) -> None:
    url, handler = stub
    handler.failures = 2
    prom = PrometheusMetrics(url, {"cpu": 'cpu{pod=~"{pods}"}'}, retries=3, sleep=lambda s: None)

    assert prom.blocks(["a-1"], START_S, END_S) == {}
    assert prom.requests == 3 and handler.seen == 3


def test_5xx_until_the_end_is_unavailable(stub: tuple[str, type[_Stub]]) -> None:
    url, handler = stub
    handler.failures = 100
    prom = PrometheusMetrics(url, {"cpu": 'cpu{pod=~"{pods}"}'}, retries=2, sleep=lambda s: None)

    with pytest.raises(PrometheusUnavailable, match=r"Prometheus at .*HTTP 503.*after 3 tries"):
        prom.blocks(["a-1"], START_S, END_S)
    assert handler.seen == 3


# --------------------------------------------------------------------------------------------
# PromQL text (no server)


def test_substitution_only_touches_the_placeholders() -> None:
    template = 'sum by (pod) (rate(x{pod=~"{pods}",namespace=~"{namespace}",a="{b}"}[1m]))'
    assert render(template, "p", "ns") == (
        'sum by (pod) (rate(x{pod=~"p",namespace=~"ns",a="{b}"}[1m]))')
    assert render(template, "p").count('namespace=~".*"') == 1


def test_pod_regex_is_escaped_for_re2_and_promql() -> None:
    assert pods_regex(["b-1.x", "a", "a"]) == "a|b\\\\-1\\\\.x"
    assert pods_regex(['we"ird']) == 'we\\"ird'


@pytest.mark.parametrize(("expr", "plain"), [
    ('nezha_cpu{pod=~"a|b"}', True),
    ("up", True),
    ('{__name__="up", job!~"x}y"}', True),
    ('m{a="1",}', True),
    ('rate(m{pod=~"a"}[1m])', False),
    ('m{pod=~"a"}[5m]', False),
    ('m{pod=~"a"} offset 5m', False),
    ('m{pod=~"a"} * 2', False),
    ("sum(m)", False),
    ("sum", False),
    ("", False),
])
def test_plain_selectors_are_recognised(expr: str, plain: bool) -> None:
    assert is_plain_selector(expr) is plain


def test_prometheus_answers_are_bounded_in_time_and_size() -> None:
    """The same bounds as the trace backends, through prometheus-api-client's own session."""
    import time

    from tests.fakes.hostile import HostileServer
    from thinkfl_operator.telemetry.prometheus import (
        PrometheusMetrics,
        PrometheusQueryError,
        PrometheusUnavailable,
    )

    with HostileServer(every_s=0.2, size=200 * 2**20) as server:
        dripping = PrometheusMetrics(server.root_url + "/drip", {"cpu": "x{{pods}}"}, timeout_s=1.0,
                                     retries=0)
        started = time.monotonic()
        with pytest.raises(PrometheusUnavailable, match="took longer than 1 s"):
            dripping.query("up", 0)
        assert time.monotonic() - started < 2.5
        huge = PrometheusMetrics(server.root_url + "/huge", {"cpu": "x{{pods}}"}, max_bytes=4 * 2**20)
        with pytest.raises(PrometheusQueryError, match="over the cap of 4 MiB"):
            huge.query("up", 0)
        assert huge.requests == 1
