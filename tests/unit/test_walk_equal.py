"""walk._equal: the comparison of a text column with a value, from a categorical's codes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from thinkfl_operator.engines.heuristic.walk import _equal, _text


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
