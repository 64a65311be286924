"""``span_measurements`` by codes and tables (parent rows through the span IDs' codes, label
rows where the codes first appear, the frame made at once): the same Measured as the pandas
implementation it replaces (kept here as the oracle) on generated span frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from thinkfl_operator.engines.heuristic.signals import (
    OK_STATUS,
    Measured,
    _parent_rows,
    span_measurements,
)
from thinkfl_operator.telemetry.spans import span_and_parent_keys


def _old_span_measurements(frame: pd.DataFrame) -> Measured:
    """Add own time, the network gap owned by the callee, child counts and integer keys."""
    if not frame["start_us"].is_monotonic_increasing:
        frame = frame.sort_values("start_us", kind="stable")
    frame = frame.reset_index(drop=True)
    if "span_key" in frame and "parent_key" in frame:  # computed by the store, same code space
        keys, parent_keys = frame["span_key"].to_numpy(), frame["parent_key"].to_numpy()
    else:
        keys, parent_keys = span_and_parent_keys(frame)
    prow = pd.Index(keys).get_indexer(parent_keys)
    has_parent = prow >= 0
    safe = np.clip(prow, 0, None)
    text = {c: _OldCoded(frame[c]) for c in ("pod", "service", "node", "operation", "status", "kind")}

    duration = frame["duration_us"].to_numpy(dtype="float64")
    service = text["service"].codes
    parent_service = np.where(has_parent, service[safe], -1)
    cross = has_parent & (parent_service != service)

    child_sum = np.bincount(prow[has_parent], weights=duration[has_parent], minlength=len(frame))
    child_count = np.bincount(prow[has_parent], minlength=len(frame)).astype("float64")
    cross_children = np.bincount(prow[cross], minlength=len(frame))
    # A client span whose only work is calling another service: its "self" is the network gap,
    # which belongs to the callee, so it is not counted as the caller's own time.
    self_us = np.where(cross_children > 0, np.nan, np.clip(duration - child_sum, 0, None))
    # A gap is only the network when the client span made exactly this one call.
    single_call = has_parent & (child_count[safe] == 1)
    gap_us = np.where(cross & single_call, duration[safe] - duration, np.nan)

    pods, ops = text["pod"].codes, text["operation"].codes
    n_ops, n_services = len(text["operation"].names), len(text["service"].names) + 1
    op_key = pd.factorize(pods.astype("int64") * n_ops + ops)[0]
    edge = (pods.astype("int64") * n_services + parent_service + 1) * n_ops + ops
    edge_key = np.where(np.isnan(gap_us), -1, pd.factorize(edge)[0])
    errors = np.array([str(u).lower() not in OK_STATUS for u in text["status"].names] + [False])

    out = frame.assign(
        **{c: coded.categorical() for c, coded in text.items()},
        parent_service=text["service"].categorical(parent_service),
        parent_row=prow,
        self_us=self_us,
        gap_us=gap_us,
        child_count=child_count,
        end_us=frame["start_us"].to_numpy() + frame["duration_us"].to_numpy(),
        is_error=errors[text["status"].codes].astype("float64"),
        op_key=op_key,
        edge_key=edge_key,
    )
    op_labels = _old_labels(out, "op_key", ["pod", "service", "operation"])
    edge_labels = _old_labels(out[edge_key >= 0], "edge_key", ["pod", "service", "parent_service", "operation"])
    return Measured(out, op_labels, edge_labels)


class _OldCoded:
    """A text column as integer codes and the distinct names (pandas factorize)."""

    def __init__(self, column: pd.Series) -> None:
        codes, names = pd.factorize(column)
        self.codes: np.ndarray = codes
        self.names = [str(n) for n in names]

    def categorical(self, codes: np.ndarray | None = None) -> pd.Categorical:
        """As a categorical; code −1 (none) becomes the empty string."""
        codes = self.codes if codes is None else codes
        names = self.names if "" in self.names else [*self.names, ""]
        return pd.Categorical.from_codes(np.where(codes < 0, names.index(""), codes), categories=names)


def _old_labels(frame: pd.DataFrame, code: str, columns: list[str]) -> pd.DataFrame:
    first = frame.drop_duplicates(code)
    return first.set_index(code)[columns].astype(str)



def _frame(rng: np.random.Generator, n: int, case: int) -> pd.DataFrame:
    """Spans of a few traces: span IDs reused across traces (keys sharing their low bits),
    parents missing or in another trace, categorical text with unused categories and
    categories out of appearance order, missing values, object text; with or without the
    store's keys."""
    traces = np.array([f"t{i}" for i in rng.integers(0, 4, n)], dtype=object)
    span = np.array([f"s{i}" for i in range(n)], dtype=object)
    if n and case % 3 == 0:
        span[rng.integers(0, n, max(1, n // 5))] = "s0"  # the same ID in other traces
    parent = np.array([f"s{i}" if i >= 0 else "" for i in rng.integers(-3, n + 3, n)], dtype=object)

    def text(prefix: str, k: int) -> pd.Series:
        values = [f"{prefix}{i}" for i in rng.integers(0, k, n)]
        if case % 2:
            return pd.Series(pd.Categorical(values, categories=[f"{prefix}{i}" for i in range(k + 2)][::-1]))
        out = pd.Series(values, dtype=object)
        if n and case % 4 == 0:
            out[int(rng.integers(0, n))] = None
        return out

    frame = pd.DataFrame({
        "trace_id": traces, "span_id": span, "parent_id": parent,
        "pod": text("p", 5), "service": text("v", 3), "node": text("n", 2), "operation": text("o", 4),
        "start_us": np.sort(rng.integers(0, 50, n)).astype("int64"),
        "duration_us": rng.integers(0, 30, n).astype("int64"),
        "status": pd.Series(rng.choice(["0", "500", "Ok", "err"], n), dtype=object),
        "kind": pd.Series(["server"] * n, dtype=object),
    })
    keys, parents = span_and_parent_keys(frame)
    duplicated = pd.Series(keys).duplicated().to_numpy()
    frame = frame[~duplicated].reset_index(drop=True)  # the stores keep one span per key
    if case % 5 != 4:
        frame["span_key"], frame["parent_key"] = keys[~duplicated], parents[~duplicated]
    return frame


def _same(a: Measured, b: Measured) -> None:
    pd.testing.assert_frame_equal(a.frame, b.frame, check_exact=True)
    pd.testing.assert_frame_equal(a.ops, b.ops, check_exact=True)
    pd.testing.assert_frame_equal(a.edges, b.edges, check_exact=True)


def test_span_measurements_are_the_pandas_ones() -> None:
    rng = np.random.default_rng(21)
    assert OK_STATUS
    for case in range(150):
        frame = _frame(rng, int(rng.integers(0, 60)), case)
        _same(span_measurements(frame), _old_span_measurements(frame))


def test_parent_rows_are_get_indexer() -> None:
    rng = np.random.default_rng(22)
    for case in range(200):
        n = int(rng.integers(0, 50))
        trace = rng.integers(0, 3, n).astype("int64") << 32
        low = rng.permutation(n + 5)[:n].astype("int64")
        if case % 3 == 0 and n:
            low[rng.integers(0, n, 3)] = low[0]  # one ID in several traces
        keys = trace | low
        keep = ~pd.Series(keys).duplicated().to_numpy()
        keys = keys[keep]
        m = int(rng.integers(0, 60))
        parents = rng.integers(0, 3, m).astype("int64") << 32 | rng.integers(0, n + 8, m)
        parents = np.concatenate([parents, keys, [-1, -(2**40)] if case % 4 == 1 else []]).astype("int64")
        if case % 7 == 0:
            keys, parents = keys - (2**45), parents - (2**45)  # negative keys
        if case % 11 == 0:
            keys, parents = keys * 2**20, parents * 2**20  # low bits not a dense code
        expected = pd.Index(keys).get_indexer(parents)
        assert np.array_equal(_parent_rows(keys, parents), expected)


def test_parent_rows_of_repeated_keys_fail_as_get_indexer() -> None:
    keys = np.array([1, 1, 2], dtype="int64")
    with pytest.raises(Exception) as expected:
        pd.Index(keys).get_indexer(keys)
    with pytest.raises(expected.type):
        _parent_rows(keys, keys)
