"""Which traces the deterministic engine walks: errors first, then the most extreme."""

from __future__ import annotations

import pandas as pd

from thinkfl_operator.engines.heuristic.scoring import PodEvidence
from thinkfl_operator.engines.heuristic.signals import Shift
from thinkfl_operator.engines.heuristic.walk import pick_traces


def _window(errors: dict[str, int]) -> pd.DataFrame:
    rows = []
    for i, trace in enumerate(("t1", "t2", "t3")):
        rows.append({"trace_id": trace, "pod": "cart-0", "operation": "GET", "self_us": 1000.0 * (i + 1),
                     "gap_us": float("nan"), "duration_us": 1000 * (i + 1),
                     "is_error": float(errors.get(trace, 0))})
    return pd.DataFrame(rows)


def _suspect() -> PodEvidence:
    shift = Shift("self", "cart-0", "cart", "GET", "", 100.0, 3000.0, 20.0, 3)
    return PodEvidence("cart-0", "cart", score=3.0, shifts=[shift])


def test_latency_suspect_walks_the_slowest_traces_first() -> None:
    assert pick_traces(_window({}), _suspect(), 2) == ["t3", "t2"]


def test_traces_with_errors_come_first() -> None:
    assert pick_traces(_window({"t1": 1}), _suspect(), 2) == ["t1"]
    assert pick_traces(_window({"t2": 1}), None, 3) == ["t2"]


def test_without_a_suspect_or_errors_any_window_trace() -> None:
    assert pick_traces(_window({}), None, 2) == ["t1", "t2"]
    assert pick_traces(_window({}).iloc[:0], None, 2) == []
