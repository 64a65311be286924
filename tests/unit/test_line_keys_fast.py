"""The cheaper ways a day's lines are keyed and joined to their spans give what the old ways
gave (kept here as the reference): ``_unique`` is ``np.unique``, ``line_keys`` without its
sort is ``line_keys`` with it, ``_first_spans`` is ``pc.index_in`` of the lines' IDs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from thinkfl_operator.engines.heuristic import traffic
from thinkfl_operator.evidence import logshift
from thinkfl_operator.evidence.logshift import KEY_COLUMNS, line_keys


def _old_first_spans(line_ids: pa.Array, span_ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    found = pc.index_in(line_ids, value_set=span_ids)
    return (np.flatnonzero(found.is_valid().to_numpy(zero_copy_only=False)),
            found.drop_null().to_numpy(zero_copy_only=False).astype("int64"))


@pytest.mark.parametrize("seed", range(5))
def test_first_spans_is_index_in(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ids = ["", "a", "b", "é", "s1", "s2", "s3", None, *(f"x{i}" for i in range(30))]
    lines = [ids[i] for i in rng.integers(0, len(ids), 400)]
    spans = [ids[i] for i in rng.integers(0, len(ids), int(rng.integers(1, 60)))]  # repeats: the first wins
    if seed == 0:
        lines, spans = [x for x in lines if x is not None], [x for x in spans if x is not None]
    for line_ids, span_ids in ((pa.array(lines, pa.string()), pa.array(spans, pa.string())),
                               (pa.chunked_array([lines[:100], lines[100:]], pa.string()),
                                pa.chunked_array([spans[:3], spans[3:]], pa.string()))):
        got = traffic._first_spans(line_ids, span_ids)
        want = _old_first_spans(line_ids, span_ids)
        assert got[0].tolist() == want[0].tolist() and got[1].tolist() == want[1].tolist()
    assert [len(x) for x in traffic._first_spans(pa.array(["q"]), pa.array(["r"]))] == [0, 0]


def test_unique_is_np_unique() -> None:
    rng = np.random.default_rng(1)
    for key in (rng.integers(0, 50, 1000), rng.integers(-5, 10**12, 300), np.array([7]), np.zeros(0, "int64")):
        values, inverse = logshift._unique(key.astype("int64"))
        want_values, want_inverse = np.unique(key.astype("int64"), return_inverse=True)
        assert values.tolist() == want_values.tolist() and inverse.tolist() == want_inverse.tolist()


def _lines(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "service": pd.Categorical(rng.choice(["b", "a", "c", "ä"], n)),
        "template": pd.Categorical(rng.choice(["t2", "T1", "t3", "", "ERROR x <N>"], n)),
        "level": pd.Categorical(rng.choice(["INFO", "ERROR", ""], n)),
        "pod": pd.Categorical(rng.choice(["a-1", "a-2", "b-1", "c-1", "Z"], n)),
    })


def _same(got: logshift.LineKeys, want: logshift.LineKeys) -> None:
    assert got.key.tolist() == want.key.tolist()
    assert got.table.equals(want.table) and list(got.table.dtypes) == list(want.table.dtypes)


def test_line_keys_skip_the_sort_only_when_it_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    variants = {"sorted": _lines(rng, 2000)}
    unsorted = _lines(rng, 500)
    unsorted["pod"] = unsorted["pod"].cat.reorder_categories(["Z", "c-1", "b-1", "a-2", "a-1"])
    variants["unsorted categories"] = unsorted
    missing = _lines(rng, 500)
    missing.loc[3, "template"] = None
    variants["a missing value"] = missing
    text = _lines(rng, 500)
    text["service"] = text["service"].astype(object)
    variants["a text column"] = text
    fast = {name: logshift._in_value_order(frame[c] for c in KEY_COLUMNS) for name, frame in variants.items()}
    assert fast == {"sorted": True, "unsorted categories": False, "a missing value": False, "a text column": False}
    got = {name: line_keys(frame) for name, frame in variants.items()}
    monkeypatch.setattr(logshift, "_in_value_order", lambda columns: False)
    for name, frame in variants.items():
        _same(got[name], line_keys(frame))
