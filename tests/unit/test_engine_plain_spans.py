"""The walked spans as plain object columns: same values, numbers untouched."""

from __future__ import annotations

import numpy as np
import pandas as pd

from thinkfl_operator.engines.heuristic.engine import _plain


def test_plain_spans_keep_every_value() -> None:
    frame = pd.DataFrame({
        "span_id": pd.array(["a", "b", "c"], dtype="str"),
        "pod": pd.Categorical(["p", "q", "p"]),
        "start_us": np.array([3, 1, 2], dtype="int64"),
    }, index=[7, 5, 9])
    plain = _plain(frame)
    assert list(plain.columns) == list(frame.columns)
    assert list(plain.index) == [7, 5, 9]
    assert plain["span_id"].dtype == object and plain["pod"].dtype == object
    assert plain["start_us"].dtype == np.dtype("int64")
    for name in frame.columns:
        assert plain[name].tolist() == frame[name].tolist()
    missing = frame.assign(pod=pd.Categorical(["p", None, "p"]))
    assert _plain(missing) is missing
