"""Truncation votes counted by codes against the old object-array and value_counts code, and
compute_shifts' min_z against filtering its whole answer."""

from __future__ import annotations

import numpy as np
import pandas as pd

from thinkfl_operator.engines.heuristic.groupstats import sorted_rows
from thinkfl_operator.engines.heuristic.signals import (
    Measured,
    Shift,
    WindowColumns,
    _truncations,
    compute_shifts,
    span_measurements,
)


def _op_code(ops: pd.DataFrame, pod: str, operation: str) -> int:
    rows = np.flatnonzero((ops["pod"].to_numpy() == pod) & (ops["operation"].to_numpy() == operation))
    return int(ops.index[rows[-1]])


def _old_truncations(win: pd.DataFrame, fanout: list[Shift], ops: pd.DataFrame) -> list[Shift]:
    """``_truncations`` before votes were counted by codes (the reference)."""
    if not fanout:
        return []
    usual = {_op_code(ops, f.pod, f.operation): f.baseline for f in fanout}
    op_key = win["op_key"].to_numpy()
    by_code = np.full(max(int(op_key.max()), *usual) + 1, np.nan)
    by_code[list(usual)] = list(usual.values())
    cut = win.index[win["child_count"].to_numpy() < by_code[op_key]]
    if len(cut) == 0:
        return []
    parent_row, end = win["parent_row"].to_numpy(), win["end_us"].to_numpy()
    children = np.flatnonzero(np.isin(parent_row, cut.to_numpy()))
    by_end = children[sorted_rows(end[children])]
    last_of_parent = np.unique(parent_row[by_end][::-1], return_index=True)[1]
    kept = np.zeros(len(by_end), dtype=bool)
    kept[len(by_end) - 1 - last_of_parent] = True
    last = by_end[kept]
    last_label = win.index.to_numpy()[last]
    parents, first = np.unique(parent_row, return_index=True)
    at = np.clip(parents.searchsorted(last_label), 0, max(len(parents) - 1, 0))
    has_callee = parents[at] == last_label if len(parents) else np.zeros(len(last), bool)
    rows = first[at]
    last_pod, last_service = (win[c].iloc[last].to_numpy(dtype=object) for c in ("pod", "service"))
    callee_pod, callee_service = (win[c].iloc[rows].to_numpy(dtype=object) for c in ("pod", "service"))
    other_pod = has_callee & (callee_pod != last_pod)
    pods = np.where(other_pod, callee_pod, last_pod)
    services = np.where(other_pod, callee_service, last_service)
    votes = pd.Series(list(zip(pods, services, strict=True))).value_counts()
    total = float(len(cut))
    return [Shift("truncated", str(p), str(s), "last call before callers stopped", "", 0.0,
                  n / total, 10.0 * n / total, int(n)) for (p, s), n in votes.items()]


def _spans(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Random traces: each span's parent an earlier span of its trace (or none)."""
    trace = np.sort(rng.integers(0, max(n // 6, 1), n))
    parent = []
    for i in range(n):
        earlier = [j for j in range(max(0, i - 8), i) if trace[j] == trace[i]]
        parent.append(f"s{rng.choice(earlier)}" if earlier and rng.random() < 0.9 else "")
    pods = [f"p{k}" for k in rng.integers(0, 5, n)]
    return pd.DataFrame({
        "trace_id": [f"t{k}" for k in trace],
        "span_id": [f"s{i}" for i in range(n)],
        "parent_id": parent,
        "pod": pods,
        "service": [f"v{p[1:] if rng.random() < 0.8 else rng.integers(0, 3)}" for p in pods],
        "node": ["n"] * n,
        "operation": [f"o{k}" for k in rng.integers(0, 3, n)],
        "start_us": np.arange(n) * 10,
        "duration_us": rng.integers(1, 50, n) * 10,  # ties of end times
        "status": ["0"] * n,
        "kind": ["server"] * n,
    })


def test_truncation_votes_are_the_old_ones() -> None:
    rng = np.random.default_rng(13)
    compared = 0
    for _ in range(150):
        n = int(rng.integers(2, 160))
        measured: Measured = span_measurements(_spans(rng, n))
        lo = int(rng.integers(0, n))
        win = measured.frame.iloc[lo:lo + int(rng.integers(1, n + 1))]
        ops = measured.ops
        chosen = ops.iloc[np.flatnonzero(rng.random(len(ops)) < 0.5)]
        fanout = [Shift("fanout", str(r.pod), str(r.service), str(r.operation), "",
                        float(rng.integers(1, 4)), 0.0, 5.0, 3) for r in chosen.itertuples()]
        expected = _old_truncations(win, fanout, ops)
        assert _truncations(win, fanout, measured) == expected
        # the window read from the measured frame's columns at its rows
        assert _truncations(WindowColumns(win.index.to_numpy(), measured=measured), fanout, measured) == expected
        compared += bool(expected)
    assert compared > 30


def test_min_z_leaves_out_only_the_shifts_below_it() -> None:
    rng = np.random.default_rng(29)
    for _ in range(60):
        n = int(rng.integers(20, 200))
        measured = span_measurements(_spans(rng, n))
        cut = int(rng.integers(0, n))
        win = measured.frame.iloc[cut:cut + int(rng.integers(5, n))]
        rows = np.flatnonzero((np.arange(n) < cut) | (np.arange(n) >= cut + len(win)))
        every = compute_shifts(None, win, measured, rows)
        for min_z in (-1.0, 0.0, 3.0, 5.0):
            assert compute_shifts(None, win, measured, rows, min_z) == [s for s in every if not s.z < min_z]
