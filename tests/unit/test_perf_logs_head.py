"""``templates._head`` (a line's head cut from byte lengths) is ``utf8_slice_codeunits(text, 0,
n)``: lines shorter, as long as and longer than the cut, in bytes and in characters, with
characters of 2, 3 and 4 bytes before, at and after the cut, empty lines, sliced arrays. The
parts of slices joined (``_joined_parts``) are the parts of the whole."""

from __future__ import annotations

import itertools
import random

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from thinkfl_operator.evidence import templates as t

_PIECES = ("a", "b", " ", "[", "é", "中", "😀", "\\n", "7")


def _text(rng: random.Random, n: int) -> str:
    size = rng.choice((0, 1, n - 2, n - 1, n, n + 1, n + 2, 2 * n, 5 * n))
    if rng.random() < 0.5:  # ASCII
        return "".join(rng.choice("ab [7") for _ in range(max(size, 0)))
    return "".join(rng.choice(_PIECES) for _ in range(max(size, 0)))


@pytest.mark.parametrize("seed", range(6))
def test_head_is_the_character_slice(seed: int) -> None:
    rng = random.Random(seed)
    for n in (1, 2, 3, 4, 5, 8, 300):
        lines = pa.array([_text(rng, n) for _ in range(300)], type=pa.string())
        for array in (lines, lines.slice(7, 200), lines.slice(0, 0), pa.array([""] * 5)):
            got = t._head(array, n)
            assert got.to_pylist() == pc.utf8_slice_codeunits(array, 0, n).to_pylist()
            assert got.type == pa.string()
            got.validate(full=True)


def test_head_of_short_lines_is_the_lines() -> None:
    lines = pa.array(["abc", "", "中文"])
    assert t._head(lines, 300) is lines


def test_split_keeps_its_parts_on_real_shapes() -> None:
    rng = random.Random(9)
    lines = pa.array([("12:00:01.123 INFO  a.B#1 TraceID: " + "a" * 32 + " SpanID: " + "b" * 16 + " [x]"
                       + "".join(rng.choice(_PIECES) for _ in range(rng.choice((0, 250, 400)))))
                      for _ in range(200)])
    parts = t._split(lines)
    old = t._head
    try:
        t._head = lambda text, n: pc.utf8_slice_codeunits(text, 0, n)  # type: ignore[assignment]
        want = t._split(lines)
    finally:
        t._head = old
    assert _lists(parts) == _lists(want)


def _lists(parts: t._Parts) -> tuple[list[str | None], ...]:
    return (parts.before.take(pa.array(parts.before_codes)).to_pylist(), parts.after.to_pylist(),
            parts.level.take(pa.array(parts.level_codes)).to_pylist())


def test_joined_parts_are_the_parts_of_the_whole() -> None:
    rng = random.Random(3)
    lines = pa.array([("12:00:01.123 INFO  a.B#1 TraceID: " + "a" * 32 + " SpanID: " + "b" * 16 + " [x]"
                       if rng.random() < 0.7 else "") + "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 40)))
                      for _ in range(500)])
    whole = _lists(t._split(lines))
    for cuts in ([0, 500], [0, 1, 500], [0, 250, 251, 500], [0, 100, 200, 300, 400, 500]):
        chunks = [t._split(lines.slice(a, b - a)) for a, b in itertools.pairwise(cuts)]
        assert _lists(t._joined_parts(chunks)) == whole
