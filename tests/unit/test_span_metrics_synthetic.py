"""The synthetic baseline built from span metrics: traces whose own times make sense.

Quantiles do not add up, so a parent given its own quantile next to its children's would show
an own time of 0 (or a negative network gap) at high ranks, and every window would look shifted
from it. These tests build a trace whose parent's quantiles sit below the sum of its children's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from thinkfl_operator.telemetry.span_metrics import (
    NAMINGS,
    KeyBaseline,
    SpanBaseline,
    synthetic_baseline,
)

BOUNDS = np.array([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, np.inf])


def uniform(lo_s: float, hi_s: float, calls: float = 1000.0) -> KeyBaseline:
    """A histogram of ``calls`` spread evenly over [lo_s, hi_s] (bucket by bucket)."""
    edges = np.r_[0.0, BOUNDS[:-1]]
    covered = np.clip(np.minimum(BOUNDS, hi_s) - np.maximum(edges, lo_s), 0, None)
    covered[-1] = 0.0
    cumulative = np.cumsum(covered / (hi_s - lo_s) * calls)
    cumulative[-1] = cumulative[-2]
    return KeyBaseline(BOUNDS, cumulative, errors=0.0)


def span(trace_id: str, span_id: str, parent_id: str, service: str, operation: str,
         start_us: int, duration_us: int) -> dict[str, object]:
    return {"trace_id": trace_id, "span_id": span_id, "parent_id": parent_id, "service": service,
            "operation": operation, "start_us": start_us, "duration_us": duration_us}


def window_trace(trace_id: str, start_us: int) -> list[dict[str, object]]:
    """frontend /checkout → two calls into cart (server spans), each with a redis child."""
    rows = [span(trace_id, "a", "", "frontend", "/checkout", start_us, 60_000)]
    for n, child in enumerate(("b", "c")):
        rows.append(span(trace_id, child, "a", "cart", "GetCart", start_us + 1000 + n * 25_000, 20_000))
        rows.append(span(trace_id, child + "r", child, "redis", "GET", start_us + 2000 + n * 25_000, 5_000))
    return rows


def frame() -> pd.DataFrame:
    rows = [r for t in range(20) for r in window_trace(f"t{t:02d}", 1_000_000_000 + t * 100_000)]
    out = pd.DataFrame(rows)
    out["pod"] = out["service"] + "-0"
    out["node"] = "node-1"
    out["status"] = ""
    out["kind"] = ""
    return out


def baseline() -> SpanBaseline:
    # A parent whose quantiles are below the sum of its children's at every rank.
    return SpanBaseline(NAMINGS[0], {
        ("frontend", "/checkout"): uniform(0.010, 0.040),
        ("cart", "GetCart"): uniform(0.010, 0.030),
        ("redis", "GET"): uniform(0.001, 0.004),
    })


def own_times(spans: pd.DataFrame) -> pd.Series:
    key = spans["trace_id"] + "/" + spans["span_id"]
    parent = spans["trace_id"] + "/" + spans["parent_id"]
    child_sum = spans.groupby(parent)["duration_us"].sum()
    return spans["duration_us"] - key.map(child_sum).fillna(0)


def test_spans_with_children_keep_a_positive_own_time_and_leaves_their_quantiles() -> None:
    window = frame()
    synthetic = synthetic_baseline(window, baseline(), 900.0, 990.0)

    own = own_times(synthetic)
    assert (own >= -2).all()  # durations are rounded to whole µs one by one
    parents = synthetic["span_id"].isin(["a", "b", "c"])
    # cart's median own time as the quantiles imply it: 20 ms - 2.5 ms
    cart = synthetic["operation"] == "GetCart"
    assert 14_000 <= own[cart].median() <= 20_000
    # the parent's children already take more than its median: its own time is 0, never negative
    assert own[synthetic["span_id"] == "a"].abs().max() <= 2
    leaves = synthetic[~parents]
    # redis GET's baseline buckets (1-2 ms, 2-5 ms: interpolated as histogram_quantile does)
    assert leaves["duration_us"].between(1_000, 5_000).all()
    assert leaves["duration_us"].nunique() > 5  # spread over the ranks, not one value


def test_copies_are_in_the_baseline_window_with_new_trace_ids() -> None:
    window = frame()
    synthetic = synthetic_baseline(window, baseline(), 900.0, 990.0)

    assert len(synthetic) == 7 * len(window)
    assert synthetic["start_us"].between(900_000_000, 990_000_000 + 100_000).all()
    assert not set(synthetic["trace_id"]) & set(window["trace_id"])
    assert synthetic.groupby("trace_id").size().eq(5).all()


def test_keys_without_span_metrics_keep_their_window_durations() -> None:
    window = frame()
    only_redis = SpanBaseline(NAMINGS[0], {("redis", "GET"): uniform(0.001, 0.004)})

    synthetic = synthetic_baseline(window, only_redis, 900.0, 990.0)

    cart = synthetic[synthetic["operation"] == "GetCart"]
    # GetCart's own time in the window (15 ms) on top of its child's baseline duration
    assert (own_times(synthetic)[cart.index] == 15_000).all()


def test_parent_links_that_loop_cost_bounded_work() -> None:
    window = frame()
    # corrupt data: every trace's root claims its own redis child as parent
    roots = window["span_id"] == "a"
    window.loc[roots, "parent_id"] = "br"

    synthetic = synthetic_baseline(window, baseline(), 900.0, 990.0)

    assert len(synthetic) == 7 * len(window)
    assert np.isfinite(synthetic["duration_us"].to_numpy(dtype="float64")).all()
