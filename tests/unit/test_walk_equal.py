"""walk._equal: the comparison of a text column with a value, from a categorical's codes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from thinkfl_operator.engines.heuristic.walk import _equal, _first, _text


def test_equal_is_the_text_comparison() -> None:
    values = ["a", "b", None, "a", "c", "b"]
    frame = pd.DataFrame({"cat": pd.Categorical(values), "text": pd.array(values, dtype="str"),
                          "other": pd.Categorical(["x"] * 6)})
    rows = np.array([0, 2, 3, 5])
    for column in ("cat", "text", "other"):
        for value in ("a", "b", "c", "x", "", "missing"):
            expected = _text(frame, column) == value
            assert _equal(frame, column, value).tolist() == expected.tolist()
            assert _equal(frame, column, value, rows).tolist() == expected[rows].tolist()


def test_first_is_the_first_distinct_python_values() -> None:
    """walk._first (Arrow's unique of the rows) against drop_duplicates of the Python objects."""
    rng = np.random.default_rng(17)
    for case in range(200):
        n = int(rng.integers(0, 60))
        values: list[str | None] = [f"t{k}" for k in rng.integers(0, 9, n)]
        if case % 5 == 0 and n:
            values[int(rng.integers(0, n))] = None
        rows = rng.permutation(n)[:int(rng.integers(0, n + 1))]
        limit = int(rng.integers(1, 8))
        for column in (pd.Series(pd.array(values, dtype="str")), pd.Series(values, dtype=object)):
            expected = list(dict.fromkeys(column.to_numpy(dtype=object)[rows]))[:limit]
            got = _first(column, rows, limit)
            assert len(got) == len(expected)
            assert all(a == b or (pd.isna(a) and pd.isna(b)) for a, b in zip(got, expected, strict=True))
            assert all(type(a) is type(b) for a, b in zip(got, expected, strict=True))
