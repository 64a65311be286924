"""The shaped lines' fast path (``templates._removed_and_level``: the clock and trace tail of a
Java logback head left out, the rest removed and levelled once per distinct value) gives what
the removal passes and the level pattern give over each whole text (the reference: the old
code, one pass of each over every text); ``_shaped`` is ``_SHAPE`` but for ``-`` and ``/``."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tests.unit.test_templates_fast import _TOKENS, _reference, _same
from thinkfl_operator.evidence import templates as t

_HEX = "0123456789abcdef"


def _clock(rng: random.Random) -> str:
    if rng.random() < 0.9:
        return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}"
    return rng.choice(("1:02:03.456", "12:02:03,456", "12:02:03.4567", "12:02:03", "12:0a:03.456", "١٢:02:03.456"))


def _hex(rng: random.Random, n: int) -> str:
    text = "".join(rng.choice(_HEX) for _ in range(n))
    if n and rng.random() < 0.05:  # near misses: upper case, a dash, a non-hex letter, non-ASCII
        i = rng.randrange(n)
        text = text[:i] + rng.choice("AF-gZé ") + text[i + 1:]
    return text


def _tail(rng: random.Random) -> str:
    trace, span = _hex(rng, rng.choice((32,) * 9 + (31, 33))), _hex(rng, rng.choice((16,) * 9 + (15, 0)))
    tail = f" TraceID: {trace} SpanID: {span} "
    if rng.random() < 0.05:
        tail = rng.choice((tail.replace("TraceID", "traceid"), tail.replace(": ", "="), tail[:-1],
                           tail + " ", tail.replace("SpanID: ", "SpanID:  ")))
    return tail


def _middle(rng: random.Random) -> str:
    """What lies between: anything (clocks, trace fields in any case, ``=``, quotes, levels,
    non-ASCII text, dates, nothing), rarely a ``-`` or ``/`` (the texts then go the long way)."""
    tokens = [t for t in _TOKENS if t != "[" and ("-" not in t and "/" not in t or rng.random() < 0.05)]
    return "".join(rng.choice(tokens) for _ in range(rng.choice((0, 1, 2, 5, 12))))


def _before(rng: random.Random) -> str:
    return _clock(rng) + rng.choice((" ",) * 19 + ("", "\t")) + _middle(rng) + _tail(rng)


def _lines(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        before = _before(rng)
        after = "".join(rng.choice(_TOKENS) for _ in range(rng.randint(0, 12)))
        out.append(before + rng.choice(("[", "", "[[")) + after if rng.random() < 0.95 else after)
    return out


def _old(before: pa.Array, head: pa.Array) -> tuple[pa.Array, pa.Array]:
    return t._removed(before), t._level_words(head)


def _parts(lines: list[str]) -> tuple[pa.Array, pa.Array]:
    head = pc.utf8_slice_codeunits(pa.array(lines, pa.string()), 0, t.HEAD_CHARS)
    pieces = pc.split_pattern(head, t._CUT, max_splits=1)
    return pieces.values.take(pa.array(pieces.offsets.to_numpy()[:-1])), head


@pytest.mark.parametrize("seed", range(6))
def test_removed_and_level_is_each_whole_text(seed: int) -> None:
    rng = random.Random(seed)
    before, head = _parts(_lines(rng, 4000) + ["", " ", "["])
    removed, level = t._removed_and_level(before, head)
    want_removed, want_level = _old(before, head)
    assert removed.equals(want_removed)
    assert level.equals(want_level)
    assert t._shaped(before).sum() > 1000  # the fast path was taken


def test_shaped_is_the_shape_but_for_dashes() -> None:
    rng = random.Random(7)
    texts = pa.array([_before(rng) for _ in range(5000)] + ["", "x", "0" * 90], pa.string())
    shaped = t._shaped(texts)
    dashed = np.asarray(pc.match_substring_regex(texts, "[-/]").to_numpy(zero_copy_only=False))
    regex = np.asarray(pc.match_substring_regex(texts, t._SHAPE).to_numpy(zero_copy_only=False))
    assert (regex == (shaped & ~dashed)).all()
    assert regex.sum() > 1000 and (~regex).sum() > 200
    sliced = texts.slice(1000, 2000)  # an array not starting at its buffers' start
    assert (t._shaped(sliced) == shaped[1000:3000]).all()


def test_fast_path_edges() -> None:
    tail = " TraceID: " + "a" * 32 + " SpanID: " + "0" * 16 + " "
    middles = ["", " ", "INFO", "12:00:00", "12:00:00 ", "traceid:", "spanid: ", "spanid=", "SPAN_ID='",
               "trace_id=\"", "ſpan_id: ", "2023", "INFO 2023-01-29 ", "é日本 WARN", "TRACE", "info:",
               "\"level\":\"error", "x 12:00:002023", "Err", "TraceID: " + "b" * 32]
    lines = [f"17:02:12.420 {m}{tail}{rest}" for m in middles for rest in ("", "[", "[INFO] x", "[12:00:00]")]
    before, head = _parts(lines)
    removed, level = t._removed_and_level(before, head)
    want_removed, want_level = _old(before, head)
    assert removed.equals(want_removed) and level.equals(want_level)
    assert t._shaped(before).all()
    frame = pd.Series(lines, dtype=object)
    want_template, want_level_ = _reference(frame)
    template, level_ = t.categorized(frame)
    _same(template, want_template)
    _same(level_, want_level_)
