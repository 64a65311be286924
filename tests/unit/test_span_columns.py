"""A trace's table taken by columns (``SpanTable.take``) and read by columns (its root, the
walk): the same answers as the frame cut and pandas' reads (kept here as the reference)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from thinkfl_operator.core.models import Span
from thinkfl_operator.engines.heuristic import walk
from thinkfl_operator.engines.heuristic.scoring import PodEvidence
from thinkfl_operator.engines.heuristic.signals import Shift
from thinkfl_operator.telemetry.spans import COLUMNS, SpanTable, _as_columns, _span_at


def _old_root(frame: pd.DataFrame) -> Span | None:
    """``SpanTable.root`` before the columnar read: pandas' isin, a one-row cut converted."""
    frame = frame.reset_index(drop=True)
    if frame.empty:
        return None
    orphan = ~frame["parent_id"].isin(frame["span_id"]).to_numpy()
    rows = np.flatnonzero(orphan) if orphan.any() else np.arange(len(frame))
    start = frame["start_us"].to_numpy(dtype="int64")[rows]
    duration = frame["duration_us"].to_numpy(dtype="int64")[rows]
    first = int(rows[np.lexsort((-duration, start))[0]])
    return _span_at(_as_columns(frame.iloc[first:first + 1]), 0)


def _spans(rng: np.random.Generator, n: int, odd: bool) -> pd.DataFrame:
    """Plain spans (object text, int64 numbers) with repeated IDs, cycles, ties of start and
    duration; ``odd``: a few IDs that are not ``str`` (None, NaN, numbers)."""
    def ids(prefix: str, k: int) -> np.ndarray:
        out = np.array([f"{prefix}{i}" for i in rng.integers(0, k, n)], dtype=object)
        if odd and n:
            for value in (None, np.nan, 7, float("nan")):
                out[int(rng.integers(0, n))] = value
        return out

    return pd.DataFrame({
        "trace_id": np.array([f"t{i}" for i in rng.integers(0, 3, n)], dtype=object),
        "span_id": ids("s", n + 2),
        "parent_id": np.where(rng.random(n) < 0.2, "", ids("s", n + 4)).astype(object),
        "pod": np.array([f"p{i}" for i in rng.integers(0, 3, n)], dtype=object),
        "service": np.array([f"v{i}" for i in rng.integers(0, 2, n)], dtype=object),
        "node": np.array(["n0"] * n, dtype=object),
        "operation": np.array([f"o{i}" for i in rng.integers(0, 3, n)], dtype=object),
        "start_us": rng.integers(0, 5, n).astype("int64"),
        "duration_us": rng.integers(0, 4, n).astype("int64"),
        "status": np.array(["0"] * n, dtype=object),
        "kind": np.array(["server"] * n, dtype=object),
    }, index=rng.permutation(n) + 50)[list(COLUMNS)]


def _same(a: object, b: object) -> bool:
    return a is b or a == b or (isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b))


def test_take_is_the_frame_cut_and_its_root_the_old_root() -> None:
    rng = np.random.default_rng(11)
    for case in range(300):
        n = int(rng.integers(0, 30))
        spans = SpanTable(_spans(rng, n, odd=case % 5 == 0))
        rows = np.sort(rng.choice(n, int(rng.integers(0, n + 1)), replace=False)) if n else np.zeros(0, int)
        taken = spans.take(rows)
        expected = SpanTable(spans.frame.iloc[rows])
        assert len(taken) == len(expected)
        for name, values in taken.columns().items():
            assert all(_same(a, b) for a, b in zip(values.tolist(), expected.columns()[name].tolist(), strict=True))
        assert repr(taken.root()) == repr(_old_root(spans.frame.iloc[rows]))
        assert repr(expected.root()) == repr(_old_root(spans.frame.iloc[rows]))
        assert taken.trace_ids() == expected.trace_ids()
        for parent in ("", "s1", "s3"):
            assert taken.children(parent) == expected.children(parent)
        pd.testing.assert_frame_equal(taken.frame, expected.frame)  # made when asked


def test_walk_reads_columns_as_the_frame() -> None:
    rng = np.random.default_rng(12)
    for case in range(200):
        n = int(rng.integers(1, 30))
        frame = _spans(rng, n, odd=False).reset_index(drop=True)
        frame.loc[0, "parent_id"] = ""  # a root (critical_leaf needs one)
        columns = SpanTable(frame).columns()
        assert walk.critical_leaf(columns) == walk.critical_leaf(frame)
        best = Shift("self", "p1", "v1", f"o{case % 4}", "", 1.0, 2.0, 3.0, 3)
        suspect = PodEvidence(pod=f"p{case % 4}", service="v1", shifts=[best] if case % 3 else [])
        assert walk.culprit_span(columns, suspect) == walk.culprit_span(frame, suspect)


def test_codes_of_a_categorical_are_its_accessors() -> None:
    from thinkfl_operator.telemetry.spans import codes_of

    for values, categories in ((["b", "a", None, "b"], ["a", "b", "c"]), (["x"], None), ([], ["q"]),
                               ([1, 2, None], [2, 1])):
        column = pd.Series(pd.Categorical(values, categories=categories))
        codes, names = codes_of(column)
        old_codes = column.cat.codes.to_numpy().astype("int64")
        old_names = column.cat.categories.to_numpy().astype(str).astype(object)
        if (old_codes < 0).any():
            old_codes = np.where(old_codes < 0, len(old_names), old_codes)
            old_names = np.append(old_names, "")
        assert codes.dtype == old_codes.dtype and np.array_equal(codes, old_codes)
        assert names.dtype == old_names.dtype and names.tolist() == old_names.tolist()
