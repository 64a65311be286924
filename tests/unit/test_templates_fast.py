"""``categorized`` (lines cut at their first ``[``, the part after it read once per distinct
value) gives exactly what templating each line's whole head gives (the reference below: the
straightforward way, one line at a time through every pass)."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from thinkfl_operator.evidence import templates as t

_TOKENS = (
    "[", "[", "]", " ", "  ", "\t", ":", "=", "|", "'", '"', ",", ".", "-", "/", "#", "_", "x", "Z", "T",
    "17:02:12", "9:02:12.420", "2023-01-29", "2023/01/29 ", "2023-01-29T09:02:12.42Z", "+08:00", "-0800",
    "12", "0", "46", "3.5", "TraceID: ", "SpanID=", "trace_id=\"", "span_id='", "traceId", "spanid:",
    "abc123", "deadbeef", "c0ffee-42", "8cdf340b84314531", "ERROR", "error", "Err", "WARN", "warning",
    "INFO", "info", "DEBUG", "TRACE", "FATAL", "CRITICAL", "crit", "PANIC", "emerg", "SEVERE", "INFOS",
    "é", "日本", "ſpan_id=", "Controller", "#46 ", "level=", '{"level":"', '"}', "msg=", "1:2:3",
)


def _line(rng: random.Random) -> str:
    text = "".join(rng.choice(_TOKENS) for _ in range(rng.randint(0, 40)))
    if rng.random() < 0.1:  # around the head's end
        text = rng.choice(("a", "é", " ")) * rng.randint(250, 320) + text
    return text


def _reference(lines: pd.Series) -> tuple[pd.Series, pd.Series]:
    text = pc.fill_null(pa.array(lines, type=pa.string(), from_pandas=True), "")
    head = pc.utf8_slice_codeunits(text, 0, t.HEAD_CHARS)
    removed = head
    for pattern, replacement in t._MASKS[:t._REMOVED]:
        removed = pc.replace_substring_regex(removed, pattern, replacement)
    removed = pc.utf8_slice_codeunits(pc.utf8_trim_whitespace(removed), 0, t.MASKED_CHARS)
    found = pc.struct_field(pc.extract_regex(head, t._LEVEL_RE2), "level")
    upper = pc.utf8_upper(pc.fill_null(found, ""))
    for alias, level in t._LEVEL_ALIASES.items():
        upper = pc.if_else(pc.equal(upper, alias), level, upper)
    return (pd.Series(t._masked(removed).to_pylist(), index=lines.index, dtype=object),
            pd.Series(upper.to_pylist(), index=lines.index, dtype=object))


def _same(got: pd.Series, want: pd.Series) -> None:
    assert got.dtype == "category"
    assert got.index.equals(want.index)
    assert list(got.astype(object)) == list(want)
    assert list(got.cat.categories) == sorted(set(want))


@pytest.mark.parametrize("seed", range(4))
def test_categorized_is_templating_each_whole_head(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    lines = pd.Series([_line(rng) for _ in range(3000)] + [None, ""], dtype=object,
                      index=pd.RangeIndex(3002)[::-1])
    monkeypatch.setattr(t, "_PART_LINES", 700)  # several parts, as a day's lines are
    want_template, want_level = _reference(lines)
    template, level = t.categorized(lines)
    _same(template, want_template)
    _same(level, want_level)
    assert t.templates(lines).index.equals(lines.index)
    assert list(t.templates(lines)) == list(want_template)
    assert list(t.levels(lines)) == list(want_level)


def test_categorized_arrow_takes_any_string_array() -> None:
    lines = ["17:02:12.420 INFO  a.B#1 TraceID: 8cdf34 [x 12][y]", None, "", "ERROR [z] 2023-01-29"]
    want = t.categorized(pd.Series(lines, dtype=object))
    for array in (pa.array(lines), pa.chunked_array([lines[:2], lines[2:]]), pa.array(lines, pa.large_string())):
        template, level = t.categorized_arrow(array)
        assert template.equals(want[0]) and level.equals(want[1])
        assert template.index.equals(pd.RangeIndex(4))
    template, level = t.categorized_arrow(pa.array([], pa.string()))
    assert template.empty and level.empty and str(template.dtype) == "category"
    assert list(t.templates(pd.Series(lines, dtype=object))) == list(np.asarray(want[0], dtype=object))
