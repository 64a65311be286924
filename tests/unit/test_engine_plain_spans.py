"""The walked spans as plain object columns: the old cut-then-convert as the reference."""

from __future__ import annotations

import numpy as np
import pandas as pd

from thinkfl_operator.engines.heuristic.engine import _walked
from thinkfl_operator.telemetry.spans import COLUMNS, SpanTable


def _old_plain(spans: pd.DataFrame) -> pd.DataFrame:
    """The walked spans before ``_walked``: the window cut, then each text column converted."""
    columns: dict[str, pd.Series | np.ndarray] = {}
    for name in spans.columns:
        column = spans[name]
        if pd.api.types.is_numeric_dtype(column.dtype):
            columns[name] = column.to_numpy()
            continue
        text = column.to_numpy(dtype=object)
        if pd.isna(text).any():
            return spans
        columns[name] = pd.Series(text, index=spans.index, dtype=object)
    return pd.DataFrame(columns, index=spans.index)


def _window(rng: np.random.Generator, n: int, missing: bool) -> pd.DataFrame:
    def text(prefix: str, k: int) -> list[str | None]:
        out: list[str | None] = [f"{prefix}{i}" for i in rng.integers(0, k, n)]
        if missing and n:
            out[int(rng.integers(0, n))] = None
        return out

    frame = pd.DataFrame({
        "trace_id": pd.array(text("t", 6), dtype="str"),
        "span_id": pd.array([f"s{i}" for i in range(n)], dtype="str"),
        "parent_id": pd.array(text("s", n + 1), dtype="str"),
        "pod": pd.Categorical(text("p", 4)),
        "service": pd.Categorical(text("v", 3)),
        "node": pd.Series(text("n", 2), dtype=object),
        "operation": pd.Categorical(text("o", 5), categories=[f"o{i}" for i in range(7)]),
        "start_us": rng.integers(0, 10**6, n),
        "duration_us": rng.integers(0, 10**4, n),
        "status": pd.Categorical(["0"] * n),
        "kind": pd.array(["server"] * n, dtype="str"),
        "other": rng.random(n),
    }, index=rng.permutation(n) + 100)
    return frame


def test_walked_spans_are_the_old_plain_cut() -> None:
    rng = np.random.default_rng(5)
    for case in range(60):
        n = int(rng.integers(0, 40))
        window = _window(rng, n, missing=case % 4 == 0)
        traces = [f"t{i}" for i in rng.integers(0, 8, int(rng.integers(0, 4)))]
        expected = _old_plain(window.loc[window["trace_id"].isin(traces).to_numpy(), list(COLUMNS)])
        got = _walked(window, traces)
        assert list(got.columns) == list(COLUMNS)
        assert list(got.index) == list(expected.index)
        assert got.dtypes.tolist() == expected.dtypes.tolist()
        for name in COLUMNS:
            assert got[name].tolist() == expected[name].tolist()
        if expected.isna().any().any():
            continue
        old, new = SpanTable(expected), SpanTable(got)  # as the walk and the roots read them
        for trace_id in traces:
            assert new.trace(trace_id).root() == old.trace(trace_id).root()
            assert new.trace(trace_id).frame.equals(old.trace(trace_id).frame)
        for span_id in expected["span_id"]:
            assert new.children(span_id) == old.children(span_id)


def test_isin_is_pandas_isin() -> None:
    from thinkfl_operator.engines.heuristic.engine import _isin

    rng = np.random.default_rng(6)
    for case in range(80):
        n = int(rng.integers(0, 30))
        values: list[str | None] = [f"t{i}" for i in rng.integers(0, 6, n)]
        if case % 3 == 0 and n:
            values[int(rng.integers(0, n))] = None
        wanted = [f"t{i}" for i in rng.integers(0, 8, int(rng.integers(0, 4)))]
        for dtype in ("str", "string[pyarrow]", object, "category"):
            column = pd.Series(values, dtype=dtype)
            expected = column.isin(wanted).to_numpy()
            got = _isin(column, wanted)
            assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_walked_from_the_frames_columns_is_the_walked_cut() -> None:
    from thinkfl_operator.engines.heuristic.engine import PlainColumns

    rng = np.random.default_rng(7)
    for case in range(80):
        n = int(rng.integers(0, 50))
        frame = _window(rng, n, missing=case % 4 == 0).reset_index(drop=True)  # positions as index
        if case % 5 == 0:  # a column of plain objects
            frame["kind"] = frame["kind"].astype(object)
        plain = PlainColumns(frame)
        lo = int(rng.integers(0, n + 1))
        window = frame.iloc[lo:lo + int(rng.integers(0, n + 1))]
        traces = [f"t{i}" for i in rng.integers(0, 8, int(rng.integers(0, 4)))]
        expected = _walked(window, traces)
        got = _walked(window, traces, plain)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
        assert [type(v) for v in got["trace_id"]] == [type(v) for v in expected["trace_id"]]
        moved = window.set_axis(window.index + 1000)  # not positions in the frame: cut as before
        pd.testing.assert_frame_equal(_walked(moved, traces, plain), _walked(moved, traces), check_exact=True)
