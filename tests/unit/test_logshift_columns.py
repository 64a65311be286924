"""LineKeys.tally_columns: the columns of what _tally counts from the kept lines themselves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from thinkfl_operator.evidence.logshift import KEY_COLUMNS, _tally, line_keys


def test_tally_columns_are_the_columns_of_the_lines_tally() -> None:
    rng = np.random.default_rng(5)
    n = 500
    lines = pd.DataFrame({
        "service": pd.Categorical(rng.choice(["a", "b", "c"], n)),
        "template": rng.choice(["t1", "t2", "t3", "t4"], n),
        "level": pd.Categorical(rng.choice(["INFO", "ERROR"], n)),
        "pod": pd.Categorical(rng.choice(["a-1", "a-2", "b-1", "c-1"], n)),
    })
    keys = line_keys(lines)[100:400]
    part = lines.iloc[100:400]
    for _ in range(20):
        keep = rng.random(300) < 0.7
        in_window = rng.random(300) < 0.3
        kept = part[keep]
        frame = _tally({c: kept[c] for c in KEY_COLUMNS}, in_window[keep], np.ones(len(kept), dtype="int64"))
        columns = keys.tally_columns(keep, in_window)
        assert list(columns) == [*KEY_COLUMNS, "history", "window"] == list(frame.columns)
        for name, values in columns.items():
            expected = frame[name].to_numpy()
            assert values.dtype == expected.dtype and values.tolist() == expected.tolist()
    assert keys.tally_columns(np.zeros(300, bool), np.zeros(300, bool)) == {}
