"""Log lines through the Kubernetes API's pods/log: the real client against kmock's emulator,
whose pods/log is served by a stand-in as strict as the kubelet (lines from sinceSeconds on,
RFC 3339 nano timestamps when asked, the oldest bytes first and cut mid-line at limitBytes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import kmock
import pytest

from tests.net import free_port, post_json
from thinkfl_operator.config.settings import LogsSettings
from thinkfl_operator.core import deadline
from thinkfl_operator.kubeapi.podlogs import BYTES_PER_LINE, PodLogs
from thinkfl_operator.telemetry.loglines import LINE_COLUMNS, MAX_LINE_CHARS, LogBatch

NOW = 1_795_000_000.0  # the cluster's "now", for the kubelet and the source alike
START, END = NOW - 600, NOW - 300
CART, ORDER = "cart-7d9f8b6c5d-x2k4q", "order-5b67c48447-mv5hb"
TRACE, SPAN = "0493e2752438fbbe19f9cc7efe9aaaa9", "882624ccb9c39604"
FORBIDDEN = ('pods "{name}" is forbidden: User "system:serviceaccount:thinkfl:thinkfl-operator" '
             'cannot get resource "pods/log" in API group "" in the namespace "shop"')


def _stamp(seconds: float) -> str:
    """Go's time.RFC3339Nano, as the kubelet prints it: trailing zeros of the fraction dropped."""
    ns = round(seconds * 1e9)
    whole, fraction = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return text + f".{fraction:09d}".rstrip("0").rstrip(".") + "Z"


class Kubelet:
    """What ``GET pods/{name}/log`` answers: the container's lines stamped at or after now −
    sinceSeconds, each prefixed with its timestamp when ``timestamps=true``, the body cut at
    ``limitBytes`` (oldest first; the last line may be unfinished)."""

    def __init__(self) -> None:
        self.lines: dict[tuple[str, str], list[tuple[float, bytes]]] = {}
        self.refused: set[str] = set()
        self.failures: dict[str, int] = {}  # pod → 500s to answer before serving

    def write(self, pod: str, lines: Iterable[tuple[float, str | bytes]],
              container: str = "app") -> None:
        entries = self.lines.setdefault((pod, container), [])
        entries += [(t, text if isinstance(text, bytes) else text.encode()) for t, text in lines]
        entries.sort(key=lambda entry: entry[0])

    def __call__(self, request: kmock.Request) -> Any:
        name, params = str(request.name), request.params
        if name in self.refused:
            raise _status(403, "Forbidden", FORBIDDEN.format(name=name))
        if self.failures.get(name):
            self.failures[name] -= 1
            raise _status(500, "InternalError", "an error on the server has prevented the request")
        since = NOW - int(params.get("sinceSeconds", 10**10))
        stamped = params.get("timestamps") == "true"
        entries = self.lines.get((name, params.get("container", "app")), [])
        body = b"".join((_stamp(t).encode() + b" " if stamped else b"") + text + b"\n"
                        for t, text in entries if t >= since)
        return body[:int(params["limitBytes"])] if "limitBytes" in params else body


def _status(code: int, reason: str, message: str) -> kmock.KubernetesError:
    """The API server's Status answer (kmock renders a raised KubernetesError as one; a returned
    Response would keep its status for every later answer of the same reaction)."""
    return kmock.KubernetesError(status=code, reason=reason, message=message)


async def _pod(api: Any, name: str, containers: tuple[str, ...] = ("app",),
               annotations: dict[str, str] | None = None, status: dict[str, Any] | None = None
               ) -> None:
    await post_json(api, "/api/v1/namespaces/shop/pods", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "annotations": annotations or {}},
        "spec": {"containers": [{"name": c, "image": f"{c}:1"} for c in containers]},
        "status": status or {"phase": "Running"}})


@pytest.fixture
def kubelet(api: Any) -> Kubelet:
    served = Kubelet()
    api[kmock.resource("v1", "pods"), kmock.subresource("log")] << served
    return served


def _source(api: Any, **settings: Any) -> PodLogs:
    return PodLogs("shop", LogsSettings(**{"backoff_s": 0.0, **settings}), host=str(api.url),
                   clock=lambda: NOW)


async def _logs(source: PodLogs, services: tuple[str, ...] = ()) -> LogBatch:
    return await asyncio.to_thread(source.logs, START, END, services)


def _log_requests(api: Any) -> list[Any]:
    return [r for r in api._requests if r.subresource == "log"]


@pytest.mark.asyncio
async def test_lines_are_parsed_windowed_and_carry_their_trace(api: Any, kubelet: Kubelet) -> None:
    await _pod(api, CART)
    await _pod(api, ORDER)
    kubelet.write(CART, [
        (START - 1, "before the window"),
        (START + 0.123456789, f"INFO o.s.CartServiceImpl TraceID: {TRACE} SpanID: {SPAN} [get]"),
        (START + 10.5, f'{{"level":"error","traceId":"{TRACE.upper()}","spanId":"{SPAN}"}}'),
        (END, "at the end: outside [start, end)")])
    kubelet.write(ORDER, [(START + 20, f"level=warn trace_id={TRACE} span_id={SPAN} msg=slow"),
                          (START + 30, "no trace here"), (NOW - 1, "long after")])
    batch = await _logs(_source(api))
    lines = batch.lines
    assert tuple(lines.columns) == LINE_COLUMNS and str(lines["time_ns"].dtype) == "int64"
    assert lines["time_ns"].tolist() == [round((START + d) * 1e9) for d in (0.123456789, 10.5, 20, 30)]
    assert lines["pod"].tolist() == [CART, CART, ORDER, ORDER]
    assert lines["service"].tolist() == ["cart", "cart", "order", "order"]
    assert lines["trace_id"].tolist() == [TRACE, TRACE, TRACE, ""]
    assert lines["span_id"].tolist() == [SPAN, SPAN, SPAN, ""]
    assert lines["line"].iloc[2] == f"level=warn trace_id={TRACE} span_id={SPAN} msg=slow"
    assert batch.coverage == ((START, END),) and batch.notes == ()
    assert batch.requests == 3  # the list, one log per pod
    for request in _log_requests(api):
        assert request.params["timestamps"] == "true"
        assert request.params["sinceSeconds"] == "600"
        assert "container" not in request.params  # one container: the API's default
    first, second = (int(r.params["limitBytes"]) for r in _log_requests(api))
    budget = LogsSettings().max_lines * BYTES_PER_LINE
    assert first == budget // 2  # the first pod's share; what it leaves goes to the second
    assert second == budget - len(_body(kubelet, CART, START))


def _body(kubelet: Kubelet, pod: str, start_s: float) -> bytes:
    """What the kubelet sends for the pod from ``start_s`` on, uncut."""
    return b"".join(_stamp(t).encode() + b" " + text + b"\n"
                    for t, text in kubelet.lines[pod, "app"] if t >= start_s)


@pytest.mark.asyncio
async def test_services_choose_the_pods_and_a_container_of_each(api: Any, kubelet: Kubelet
                                                                 ) -> None:
    await _pod(api, CART, ("istio-proxy", "app"))
    await _pod(api, "cart-7d9f8b6c5d-p9z8w", ("app", "worker"),
               {"kubectl.kubernetes.io/default-container": "worker"})
    await _pod(api, ORDER)
    await _pod(api, "cart-7d9f8b6c5d-qqqqq", status={"phase": "Pending"})
    kubelet.write(CART, [(START + 1, "app line")])
    kubelet.write(CART, [(START + 1, "proxy line")], container="istio-proxy")
    kubelet.write("cart-7d9f8b6c5d-p9z8w", [(START + 2, "worker line")], container="worker")
    batch = await _logs(_source(api), services=("cart",))
    assert batch.lines["line"].tolist() == ["app line", "worker line"]
    assert {r.name: r.params["container"] for r in _log_requests(api)} == {
        CART: "app", "cart-7d9f8b6c5d-p9z8w": "worker"}
    assert any("1 pending pods" in note for note in batch.notes)
    assert any("several containers" in note and f"{CART}/app" in note for note in batch.notes)


@pytest.mark.asyncio
async def test_a_cut_pod_is_complete_only_up_to_its_first_unfinished_line(
        api: Any, kubelet: Kubelet) -> None:
    await _pod(api, CART)
    await _pod(api, ORDER)
    busy = [(START + i * 0.5, f"request {i:04d} " + "x" * 80) for i in range(500)]  # ~60 kB
    kubelet.write(CART, busy)
    kubelet.write(ORDER, [(START + 1, "quiet")])
    batch = await _logs(_source(api, max_lines=100))  # 20 kB: 10 kB a pod
    share = 100 * BYTES_PER_LINE // 2
    assert int(_log_requests(api)[0].params["limitBytes"]) == share
    body = _body(kubelet, CART, START)[:share]
    whole = body.count(b"\n")
    kept = batch.lines[batch.lines["pod"] == CART]
    assert len(kept) == whole and kept["line"].iloc[-1] == busy[whole - 1][1]
    # Every line before the unfinished one is here, none after: complete up to its stamp.
    assert batch.coverage == ((START, busy[whole][0]),)
    assert any("1 pods reached their share of the byte budget" in n and CART in n
               for n in batch.notes)


@pytest.mark.asyncio
async def test_a_refused_pods_log_names_the_missing_rbac(api: Any, kubelet: Kubelet) -> None:
    for pod in (CART, ORDER):
        await _pod(api, pod)
        kubelet.refused.add(pod)
    batch = await _logs(_source(api))
    assert batch.lines.empty and batch.coverage == ()
    assert batch.requests == 2  # the list and one refusal: the others would be refused too
    [refused] = [n for n in batch.notes if "refused" in n]
    assert "RBAC get on pods/log" in refused and "logs.podLogs=true" in refused
    assert "cannot get resource" in refused  # the API server's own words


@pytest.mark.asyncio
async def test_a_refused_pod_list_names_the_missing_rbac(api: Any, kubelet: Kubelet) -> None:
    api[kmock.action.LIST, kmock.resource("v1", "pods")] << _status(
        403, "Forbidden", 'pods is forbidden: User "system:serviceaccount:thinkfl:x" cannot list '
                          'resource "pods" in API group "" in the namespace "shop"')
    batch = await _logs(_source(api))
    assert batch.empty and batch.coverage == () and batch.requests == 1
    assert any("RBAC list on pods" in n and "logs.podLogs=true" in n for n in batch.notes)


@pytest.mark.asyncio
async def test_the_request_cap_reads_one_pod_of_each_service_first(api: Any, kubelet: Kubelet
                                                                    ) -> None:
    pods = [f"{service}-7d9f8b6c5d-{suffix}" for service in ("cart", "order")
            for suffix in ("aaaaa", "bbbbb", "ccccc")]
    for pod in pods:
        await _pod(api, pod)
        kubelet.write(pod, [(START + 1, f"from {pod}")])
    batch = await _logs(_source(api, max_requests=3))
    assert batch.requests == 3
    assert set(batch.lines["service"]) == {"cart", "order"}
    assert [r.name for r in _log_requests(api)] == [pods[0], pods[3]]
    assert any("read 2 of 6 pods" in n and "logs.max_requests=3" in n for n in batch.notes)
    # The cap known, the budget is shared by the pods that can be read.
    assert int(_log_requests(api)[0].params["limitBytes"]) == (
        LogsSettings().max_lines * BYTES_PER_LINE // 2)


@pytest.mark.asyncio
async def test_binary_junk_and_a_one_mib_line(api: Any, kubelet: Kubelet) -> None:
    await _pod(api, CART)
    huge = f"ERROR TraceID: {TRACE} " + "y" * (1 << 20)
    kubelet.write(CART, [
        (START + 1, b"\x00\xff\xfe\x1b[31mERROR\x1b[0m \xc3\x28 bad bytes\r"),
        (START + 2, huge), (START + 3, "after the huge one")])
    batch = await _logs(_source(api, max_lines=10_000))  # a 2 MB share holds the 1 MiB line
    junk, cut, after = batch.lines["line"].tolist()
    assert junk == "\ufffd\ufffdERROR \ufffd( bad bytes"
    assert cut == huge[:MAX_LINE_CHARS] and batch.lines["trace_id"].iloc[1] == TRACE
    assert after == "after the huge one" and batch.coverage == ((START, END),)
    # With a smaller budget the huge line is the unfinished one: complete up to its stamp.
    smaller = await _logs(_source(api, max_lines=1000))
    assert smaller.lines["line"].tolist() == [junk]
    assert smaller.coverage == ((START, START + 2),)


@pytest.mark.asyncio
async def test_a_restarted_pod_is_complete_from_its_restart(api: Any, kubelet: Kubelet) -> None:
    restart = START + 100
    await _pod(api, CART, status={"phase": "Running", "containerStatuses": [{
        "name": "app", "restartCount": 2, "state": {"running": {"startedAt": _stamp(restart)}},
        "lastState": {"terminated": {"startedAt": _stamp(START - 50), "exitCode": 1}}}]})
    kubelet.write(CART, [(restart + 1, "started again")])
    batch = await _logs(_source(api))
    assert batch.coverage == ((restart, END),)
    assert any("1 pods restarted in the window" in n and CART in n for n in batch.notes)


@pytest.mark.asyncio
async def test_a_failing_call_is_retried_then_noted(api: Any, kubelet: Kubelet) -> None:
    await _pod(api, CART)
    await _pod(api, ORDER)
    kubelet.write(CART, [(START + 1, "after one 500")])
    kubelet.failures = {CART: 1, ORDER: 5}
    batch = await _logs(_source(api, retries=1))
    assert batch.lines["line"].tolist() == ["after one 500"]
    assert batch.requests == 1 + 2 + 2
    assert any("1 pods not read" in n and ORDER in n and "HTTP 500" in n for n in batch.notes)
    assert batch.coverage == ((START, END),)  # complete for the pod read


@pytest.mark.asyncio
async def test_the_deadline_stops_the_reading(api: Any, kubelet: Kubelet) -> None:
    await _pod(api, CART)
    source = _source(api)

    def spent() -> LogBatch:
        with deadline.within(0.0):
            return source.logs(START, END)

    batch = await asyncio.to_thread(spent)
    assert batch.empty and batch.requests == 0
    assert any("deadline" in n for n in batch.notes)


@pytest.mark.asyncio
async def test_rbac_of_logs_pod_logs_grants_exactly_what_the_source_calls(
        api: Any, kubelet: Kubelet) -> None:
    from tests.integration import rbac

    await _pod(api, CART)
    kubelet.write(CART, [(START + 1, "one line")])
    assert not (await _logs(_source(api))).lines.empty
    calls = rbac.used(api) - {("", "pods", "create")}  # the test's own pod
    assert calls == {("", "pods", "list"), ("", "pods/log", "get")}
    assert rbac.granted({"logs": {"podLogs": True}}) - rbac.granted({}) == calls
    assert calls <= rbac.granted({"logs": {"podLogs": True}, "topology": {"readPods": True}})


def test_an_unreachable_api_gives_an_empty_batch_and_a_note() -> None:
    source = PodLogs("shop", LogsSettings(retries=0), host=f"http://127.0.0.1:{free_port()}",
                     clock=lambda: NOW)
    batch = source.logs(START, END)
    assert batch.empty and batch.coverage == ()
    assert any("not listed" in n for n in batch.notes)
