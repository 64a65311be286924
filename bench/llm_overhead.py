"""ThinkFL engine overhead per incident, with a replay server that answers instantly.

Runs every labeled fault of the given Nezha day folders through ``engine auto`` against the
OpenAI-compatible replay server (tests/fakes) driven by the scripted walking policy, and prints
per incident: wall time, time waiting for the model, the engine's own overhead (the rest:
prompt building, parsing, tools, ranking, the deterministic pre-pass), tokens, and the largest
tool answer sent. Usage: python bench/llm_overhead.py DAY_DIR [DAY_DIR ...]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.openai_replay import ReplayServer
from tests.fakes.thinkfl_policy import WalkPolicy

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.models import Incident
from thinkfl_operator.engines.diagnose import make_engine
from thinkfl_operator.evaluation.labels import read_faults
from thinkfl_operator.telemetry.open import open_dataset


def main(days: list[str]) -> None:
    rows = []
    with ReplayServer([], when_exhausted=WalkPolicy()) as server:
        base = Settings()
        settings = base.model_copy(update={"llm": base.llm.model_copy(update={"base_url": server.base_url})})
        for day in map(Path, days):
            store, faults = open_dataset(day), read_faults(day)
            engine = make_engine("auto", settings)
            engine.preload(store, min(f.time_s for f in faults), max(f.time_s for f in faults))  # type: ignore[attr-defined]
            for fault in faults:
                started = time.perf_counter()
                try:
                    result = engine.diagnose(store, Incident(time_s=fault.time_s))
                except Exception as exc:  # noqa: BLE001 - a fault without data is skipped
                    print(f"skip {fault.time_text}: {exc}")
                    continue
                wall = time.perf_counter() - started
                llm = result.usage.seconds.get("llm", 0.0)
                tools = [len(m["content"]) for m in result.transcript if m["role"] == "tool"]
                rows.append((fault.time_text, wall, llm, result.usage.prompt_tokens,
                             result.usage.completion_tokens, max(tools, default=0), result.engine))
    print(f"{'incident':20} {'wall ms':>8} {'llm ms':>7} {'own ms':>7} {'prompt tok':>10} "
          f"{'compl tok':>9} {'max tool chars':>14} engine")
    for t, wall, llm, pt, ct, mt, eng in rows:
        print(f"{t:20} {wall * 1e3:8.1f} {llm * 1e3:7.1f} {(wall - llm) * 1e3:7.1f} {pt:10d} {ct:9d} {mt:14d} {eng}")
    own = [w - llm for _, w, llm, *_ in rows]
    tokens = [r[3] + r[4] for r in rows]
    print(f"\nincidents: {len(rows)}; engine overhead per incident (all but the model): "
          f"median {statistics.median(own) * 1e3:.1f} ms, max {max(own) * 1e3:.1f} ms")
    print(f"tokens per incident: median {statistics.median(tokens):.0f}, max {max(tokens)}; "
          f"largest tool answer: {max(r[5] for r in rows)} chars")


if __name__ == "__main__":
    main(sys.argv[1:])
