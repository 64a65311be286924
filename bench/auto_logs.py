"""How ``auto`` combines the model's answer with log evidence the model cannot see.

Every labeled fault of the given Nezha days through ``engine auto`` against the replay server
driven by the scripted walking policy (tests/fakes/thinkfl_policy.py: it walks down the slowest
child span, as the seed README's example does, a stand-in for a trace-only model; no GPU here to
run the real one). Prints service R@1 of the model's answer as it is (log lead off) and with the
strong-log lead (``Diagnosis.log_lead`` put first), and how often the lead changed the top cause.
Usage: python bench/auto_logs.py DAY_DIR [DAY_DIR ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.openai_replay import ReplayServer
from tests.fakes.thinkfl_policy import WalkPolicy

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.engines.diagnose import make_engine
from thinkfl_operator.engines.heuristic import fusion
from thinkfl_operator.evaluation import runner
from thinkfl_operator.evaluation.labels import read_faults
from thinkfl_operator.telemetry.open import open_dataset


def r_at_1(results: list[runner.FaultResult]) -> tuple[int, int]:
    scored = [r for r in results if not r.skipped]
    return sum(r.service_rank == 1 for r in scored), len(scored)


def main(days: list[str]) -> None:
    with ReplayServer([], when_exhausted=WalkPolicy()) as server:
        base = Settings()
        settings = base.model_copy(update={"llm": base.llm.model_copy(update={"base_url": server.base_url})})
        for day in map(Path, days):
            faults = read_faults(day)
            strong = fusion.STRONG_LOG_Z
            fusion.STRONG_LOG_Z = float("inf")  # no log lead: the model's answer as it is
            plain = runner.run(open_dataset(day), faults, make_engine("auto", settings))
            fusion.STRONG_LOG_Z = strong
            led = runner.run(open_dataset(day), faults, make_engine("auto", settings))
            changed = sum(any(n.startswith("logs put ") for n in r.diagnosis.notes)
                          for r in led if r.diagnosis is not None)
            (p1, n), (l1, _) = r_at_1(plain), r_at_1(led)
            print(f"{day.name}: auto (walking policy) R@1 {p1}/{n} as answered, {l1}/{n} with the "
                  f"log lead; the lead changed the top cause in {changed} of {n}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["../shared/datasets/nezha/rca_data/2023-01-29"])
