"""Baseline.median (medians read from the frame's sorted values) against group_median."""

from __future__ import annotations

import numpy as np
import pandas as pd

from thinkfl_operator.engines.heuristic.groupstats import group_median
from thinkfl_operator.engines.heuristic.signals import Baseline, Measured


def test_baseline_median_is_the_group_median_of_its_rows() -> None:
    rng = np.random.default_rng(3)
    for _ in range(100):
        n = int(rng.integers(0, 400))
        keys = int(rng.integers(1, 30))
        codes = rng.integers(-1, keys, n)
        values = rng.integers(0, 50, n).astype(float)
        values[rng.random(n) < 0.1] = np.nan
        if rng.random() < 0.3:
            values += rng.random(n)  # not integral: the lexsort path
        measured = Measured(pd.DataFrame({"op_key": codes, "self_us": values}), pd.DataFrame(), pd.DataFrame())
        rows = np.flatnonzero(rng.random(n) < 0.6)
        base = Baseline(measured, rows)
        b_codes, b_values = base.valid("op_key", "self_us")
        groups = int(rng.integers(1, keys + 2))  # some keys may lie beyond the groups asked
        for wanted in (None, rng.random(groups) < 0.5):
            keep = (b_codes < groups) & (np.ones(len(b_codes), bool) if wanted is None
                                         else wanted[np.minimum(b_codes, groups - 1)])
            expected = group_median(b_codes[keep], b_values[keep], groups)
            got = base.median("op_key", "self_us", wanted, groups)
            assert got.tobytes() == expected.tobytes()


def test_labels_by_key_are_the_labels_loc_reads() -> None:
    ops = pd.DataFrame({"pod": ["p2", "p0", "p1"], "service": ["s2", "s0", "s1"],
                        "operation": ["o2", "o0", "o1"]}, index=pd.Index([2, 0, 1], name="op_key")).astype(str)
    measured = Measured(pd.DataFrame(), ops, ops.iloc[:0])
    keys = np.array([1, 2, 0, 2])
    by_key = measured.labels_by_key("ops")
    for column in ops.columns:
        assert by_key[column][keys].tolist() == ops.loc[keys, column].tolist()
    assert measured.labels_by_key("ops") is by_key
    assert all(len(v) == 0 for v in measured.labels_by_key("edges").values())
