"""Every backend client against a hostile server: a slow drip and a 200 MB answer.

For Jaeger, Tempo, Loki and Prometheus (``HttpBackend`` on our bounded session) and the LLM
(openai on a bounded transport), all under the one retry policy (``telemetry.transport``), with
their default settings (10 s or 30 s per request, 3 retries) inside a diagnosis budget of
``--budget`` seconds:

* drip: the server sends a valid start of an answer and then one byte every 0.5 s; printed is
  how long the call took against the budget (the floor: budget + 1 s);
* huge: the server streams 200 MB; printed is the error and how much the process's peak RSS
  grew (each in a fresh process, so peaks do not mix; the floor: < 50 MiB).

    python bench/hostile_backends.py [--budget 5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.hostile import HostileServer

from thinkfl_operator.config.settings import LLMSettings
from thinkfl_operator.core import deadline
from thinkfl_operator.engines.thinkfl.client import ChatClient
from thinkfl_operator.telemetry.http import HttpBackend
from thinkfl_operator.telemetry.prometheus import PrometheusMetrics


def _calls(root: str) -> dict[str, Callable[[], Any]]:
    """One call per backend against ``root`` (a /drip or /huge prefix)."""
    return {
        "Jaeger": lambda: HttpBackend("Jaeger", root).get_json("/api/traces", {"service": "x"}),
        "Tempo": lambda: HttpBackend("Tempo", root).get_json("/api/search", {"q": "{}"}),
        "Loki": lambda: HttpBackend("Loki", root).get_json("/loki/api/v1/query_range", {"query": "{}"}),
        "Prometheus": lambda: PrometheusMetrics(root, {"cpu": "x{{pods}}"}).query("up", time.time()),
        "LLM": lambda: ChatClient(LLMSettings(base_url=root + "/v1", model="ThinkFL")).complete(
            [{"role": "user", "content": "hi"}], deadline.ends() or time.monotonic() + 90),
    }


def _drip(name: str, budget: float, out: Any) -> None:
    with HostileServer(every_s=0.5) as server:
        call = _calls(server.root_url + "/drip")[name]
        started = time.monotonic()
        try:
            with deadline.within(budget):
                call()
            outcome = "answered"
        except Exception as exc:  # noqa: BLE001 - what ended it is what is printed
            outcome = f"{type(exc).__name__}: {str(exc)[:90]}"
        out.put((time.monotonic() - started, outcome))


def _huge(name: str, budget: float, out: Any) -> None:
    with HostileServer(size=200 * 2**20) as server:
        call = _calls(server.root_url + "/huge")[name]
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.monotonic()
        try:
            with deadline.within(budget):
                call()
            outcome = "answered"
        except Exception as exc:  # noqa: BLE001
            outcome = f"{type(exc).__name__}: {str(exc)[:90]}"
        grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
        out.put((time.monotonic() - started, grew, outcome))


def _in_child(target: Callable[..., None], *args: Any) -> Any:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=target, args=(*args, out))
    child.start()
    result = out.get(timeout=300)
    child.join(30)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=5.0, help="the diagnosis budget, seconds")
    args = parser.parse_args()
    print(f"drip (one byte every 0.5 s), inside a {args.budget:g} s budget:")
    for name in _calls(""):
        took, outcome = _in_child(_drip, name, args.budget)
        print(f"  {name:<10} ended after {took:5.2f} s (budget + {took - args.budget:+.2f} s): {outcome}")
    print("huge (200 MB streamed):")
    for name in _calls(""):
        took, grew, outcome = _in_child(_huge, name, args.budget)
        print(f"  {name:<10} ended after {took:5.2f} s, peak RSS +{grew:.0f} MiB: {outcome}")


if __name__ == "__main__":
    main()
