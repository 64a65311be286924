"""The engine's column helpers against the pandas expressions they replace (kept here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from thinkfl_operator.engines.heuristic.engine import (
    _entry_services,
    _first_rows,
    _is_empty,
    _text_at,
)
from thinkfl_operator.engines.heuristic.engine import (
    numeric as _numeric,
)
from thinkfl_operator.telemetry.spans import codes_of


def _columns(rng: np.random.Generator, n: int, missing: bool) -> dict[str, list[str | None]]:
    out: dict[str, list[str | None]] = {}
    for name, k in (("service", 5), ("parent_id", 3)):
        values: list[str | None] = [f"{name[0]}{i}" for i in rng.integers(0, k, n)]
        values = [("" if name == "parent_id" and v == "p0" else v) for v in values]
        if missing and n:
            values[int(rng.integers(0, n))] = None
        out[name] = values
    return out


def test_entry_services_are_the_value_counts_of_the_roots() -> None:
    rng = np.random.default_rng(19)
    for case in range(200):
        n = int(rng.integers(0, 50))
        data = _columns(rng, n, missing=case % 3 == 0)
        for service in (pd.Categorical(data["service"], categories=[f"s{i}" for i in range(7)]),
                        pd.array(data["service"], dtype="str")):
            window = pd.DataFrame({"service": service, "parent_id": pd.array(data["parent_id"], dtype="str")})
            roots = (window["parent_id"] == "").to_numpy(dtype=bool, na_value=False)
            if window["parent_id"].isna().any():
                continue  # the engine's windows have no missing parent ID
            counts = window["service"][roots].astype(str).value_counts()
            assert _entry_services(window) == [str(s) for s in counts[counts > 0].index]


def test_first_rows_and_text_at_are_the_pandas_cuts() -> None:
    rng = np.random.default_rng(23)
    for case in range(200):
        n = int(rng.integers(0, 50))
        values = _columns(rng, n, missing=case % 3 == 0)["service"]
        for column in (pd.Series(pd.Categorical(values)), pd.Series(pd.array(values, dtype="str")),
                       pd.Series(values, dtype=object)):
            expected = np.sort(np.unique(codes_of(column)[0], return_index=True)[1])
            rows = _first_rows(column)
            assert rows.tolist() == expected.tolist()
            want = column.iloc[rows].to_numpy(dtype=object)
            got = _text_at(column, rows)
            assert len(got) == len(want)
            assert all(a == b or (pd.isna(a) and pd.isna(b)) for a, b in zip(got, want, strict=True))


def test_numeric_is_pandas_is_numeric_dtype() -> None:
    dtypes = [np.dtype(t) for t in ("int8", "int64", "uint16", "float32", "float64", "complex128", "bool",
                                    "object", "U3", "datetime64[ns]", "timedelta64[ns]")]
    dtypes += [pd.CategoricalDtype(["a"]), pd.CategoricalDtype([1, 2]), pd.StringDtype("pyarrow"),
               pd.StringDtype("python"), pd.Int64Dtype(), pd.BooleanDtype(), pd.ArrowDtype(pa.int64()),
               pd.ArrowDtype(pa.string()), pd.DatetimeTZDtype(tz="UTC")]
    for dtype in dtypes:
        assert _numeric(dtype) == pd.api.types.is_numeric_dtype(dtype), dtype


def test_is_empty_is_the_pandas_comparison() -> None:
    rng = np.random.default_rng(31)
    for case in range(100):
        values: list[str | None] = [str(rng.choice(["", "a", "bc"])) for _ in range(int(rng.integers(0, 30)))]
        if case % 4 == 0 and values:
            values[0] = None
        for column in (pd.Series(pd.array(values, dtype="str")), pd.Series(pd.Categorical(values))):
            if column.isna().any():
                continue  # the engine's parent IDs are never missing
            assert _is_empty(column).tolist() == (column == "").to_numpy().tolist()
            assert _is_empty(column).dtype == np.dtype(bool)


def _spans(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Span columns as the measured frame holds them (categorical text but the IDs)."""
    def pick(prefix: str, k: int) -> list[str]:
        return [f"{prefix}{i}" for i in rng.integers(0, k, n)]

    parent = [("" if v == "s0" else v) for v in pick("s", 4)]
    return pd.DataFrame({
        "trace_id": pd.array(pick("t", 5), dtype="str"), "span_id": pd.array(pick("x", 50), dtype="str"),
        "parent_id": pd.array(parent, dtype="str"),
        "pod": pd.Categorical(pick("p", 6)), "service": pd.Categorical(pick("v", 4), categories=[f"v{i}" for i in range(6)]),
        "node": pd.Categorical(pick("n", 2)), "operation": pd.Categorical(pick("o", 3)),
        "start_us": np.arange(n, dtype="int64"), "duration_us": rng.integers(0, 9, n),
        "status": pd.Categorical(["0"] * n), "kind": pd.Categorical(["server"] * n),
    })


def test_entry_services_and_topology_from_the_frames_columns() -> None:
    from thinkfl_operator.engines.heuristic.engine import PlainColumns, _topology
    from thinkfl_operator.engines.heuristic.signals import span_measurements
    from thinkfl_operator.engines.heuristic.window import Windows
    from thinkfl_operator.telemetry.memory import MemoryStore

    rng = np.random.default_rng(37)
    store = MemoryStore()
    for _ in range(100):
        n = int(rng.integers(1, 60))
        measured = span_measurements(_spans(rng, n))
        plain = PlainColumns(measured.frame)
        lo = int(rng.integers(0, n))
        window = measured.frame.iloc[lo:lo + int(rng.integers(1, n + 1))]
        moved = window.set_axis(window.index + 10 * n)  # not positions: read as before
        assert _entry_services(window, plain) == _entry_services(window) == _entry_services(moved, plain)
        win = Windows(0.0, 1.0, 0.5, window, np.zeros(0, dtype=np.int64), measured)
        old = Windows(0.0, 1.0, 0.5, moved, np.zeros(0, dtype=np.int64), measured)
        assert _topology(store, win) == _topology(store, old)


def test_pick_traces_from_the_frames_columns() -> None:
    from thinkfl_operator.engines.heuristic.engine import PlainColumns
    from thinkfl_operator.engines.heuristic.scoring import PodEvidence
    from thinkfl_operator.engines.heuristic.signals import Shift, span_measurements
    from thinkfl_operator.engines.heuristic.walk import pick_traces

    rng = np.random.default_rng(41)
    for case in range(200):
        n = int(rng.integers(1, 60))
        spans = _spans(rng, n)
        spans["status"] = pd.Categorical(rng.choice(["0", "500"], n, p=[0.9, 0.1]))
        measured = span_measurements(spans)
        plain = PlainColumns(measured.frame)
        lo = int(rng.integers(0, n))
        window = measured.frame.iloc[lo:lo + int(rng.integers(1, n + 1))]
        kind = ["self", "net", "short", "fanout", "truncated"][case % 5]
        best = Shift(kind, f"p{case % 7}", "v1", f"o{case % 4}", "", 1.0, 2.0, 3.0, 3)
        for suspect in (None, PodEvidence(f"p{case % 7}", "v1", 3.0, [best]), PodEvidence("p1", "v1")):
            for limit in (1, 3):
                expected = pick_traces(window, suspect, limit)
                assert pick_traces(window, suspect, limit, plain) == expected
                moved = window.set_axis(window.index + 10 * n)  # not positions: read as before
                assert pick_traces(moved, suspect, limit, plain) == expected
