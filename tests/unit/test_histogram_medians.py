"""The falls' medians of small whole numbers counted in histograms over runs of rows: the same
shifts as the sorted pairs of the frames (the old reads), and runs that are the rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from thinkfl_operator.engines.heuristic.signals import (
    Rows,
    _ratio_shifts,
    compute_shifts,
    span_measurements,
)


def _spans(rng: np.random.Generator, n: int) -> pd.DataFrame:
    trace = np.sort(rng.integers(0, max(n // 5, 1), n))
    parent = []
    for i in range(n):
        earlier = [j for j in range(max(0, i - 6), i) if trace[j] == trace[i]]
        parent.append(f"s{rng.choice(earlier)}" if earlier and rng.random() < 0.85 else "")
    return pd.DataFrame({
        "trace_id": [f"t{k}" for k in trace], "span_id": [f"s{i}" for i in range(n)], "parent_id": parent,
        "pod": [f"p{k}" for k in rng.integers(0, 4, n)], "service": [f"v{k}" for k in rng.integers(0, 3, n)],
        "node": ["n"] * n, "operation": [f"o{k}" for k in rng.integers(0, 3, n)],
        "start_us": np.arange(n) * 10, "duration_us": rng.integers(1, 9, n) * 10,
        "status": ["0"] * n, "kind": ["server"] * n,
    })


def test_falls_from_histograms_are_the_sorted_ones() -> None:
    rng = np.random.default_rng(43)
    counted = 0
    for case in range(120):
        n = int(rng.integers(20, 300))
        measured = span_measurements(_spans(rng, n))
        lo = int(rng.integers(0, n - 5))
        hi = min(n, lo + int(rng.integers(3, 60)))
        guard = int(rng.integers(0, 5))
        base_rows = np.concatenate([np.arange(0, max(lo - guard, 0)), np.arange(min(hi + guard, n), n)])
        if case % 4 == 0:
            base_rows = np.sort(rng.choice(n, n // 2, replace=False))  # many runs: the sorted pairs
        win = measured.frame.iloc[lo:hi]
        base = measured.frame.iloc[base_rows]
        for value in ("child_count", "duration_us"):
            ops = measured.labels_by_key("ops")
            got = _ratio_shifts(Rows(measured, base_rows), Rows(measured, win.index.to_numpy()), value, ops,
                                "fanout", False)
            assert repr(got) == repr(_ratio_shifts(base, win, value, ops, "fanout", False))
            counted += bool(got)
        assert repr(compute_shifts(None, win, measured, base_rows)) == repr(compute_shifts(base, win, measured))
    assert counted > 20


def test_runs_are_the_rows() -> None:
    rng = np.random.default_rng(47)
    measured = span_measurements(_spans(rng, 40))
    for case in range(300):
        pieces = [np.arange(a, a + int(rng.integers(0, 6))) for a in rng.integers(0, 60, int(rng.integers(0, 5)))]
        rows = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
        if case % 2:
            rows = np.unique(rows)
        runs = Rows(measured, rows).runs
        if runs is None:
            continue
        from_runs = np.concatenate([np.arange(a, b) for a, b in runs]) if runs else np.zeros(0, dtype=np.int64)
        assert np.array_equal(from_runs, rows)  # the same rows, each once, in order
        assert all(a < b for a, b in runs)
