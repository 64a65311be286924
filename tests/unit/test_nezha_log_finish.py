"""Cheaper steps of the Nezha log reader give what their old form (kept here) gives:
``_finish`` skipping the escape passes whose escape is nowhere in the texts, ``_separated``
reading the separator as three 4-byte words, ``_repeated`` comparing texts by codes."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from thinkfl_operator.telemetry.loglines import MAX_LINE_CHARS
from thinkfl_operator.telemetry.nezha_logs import (
    _DOCKER_PREFIX,
    _DOCKER_SEPARATOR,
    _ESCAPES,
    _LINE_END,
    _SEPARATOR,
    _cut,
    _escapes_in,
    _finish,
    _repeated,
    _separated,
    _taken,
)


def _old_finish(line: pa.Array) -> tuple[pa.Array, int]:
    """``_finish`` before: every pass, always."""
    if int(pc.max(pc.binary_length(line)).as_py() or 0) > _LINE_END - len(_DOCKER_PREFIX):
        line = pc.utf8_slice_codeunits(line, 0, _LINE_END - len(_DOCKER_PREFIX))
    for escaped, plain in _ESCAPES:
        line = pc.replace_substring(line, escaped, plain)
    line = pc.utf8_rtrim(line, characters="\r\n")
    if int(pc.max(pc.binary_length(line)).as_py() or 0) <= MAX_LINE_CHARS:
        return line, 0
    long = pc.sum(pc.cast(pc.greater(pc.utf8_length(line), MAX_LINE_CHARS), pa.int64())).as_py() or 0
    return pc.utf8_slice_codeunits(line, 0, MAX_LINE_CHARS), int(long)


_PIECES = ("\\n", "\\t", '\\"', "\\/", "\\\\", "\\", "n", "t", '"', "/", "a", "é", "\r", "\n", "\\u003c", " ")


@pytest.mark.parametrize("seed", range(8))
def test_finish_skips_only_passes_that_change_nothing(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(60):
        pieces = rng.sample(_PIECES, rng.randint(1, len(_PIECES)))  # some escapes absent
        texts = ["".join(rng.choice(pieces) for _ in range(rng.choice((0, 1, 3, 20)))) for _ in range(rng.randint(1, 12))]
        if rng.random() < 0.1:
            texts.append(rng.choice(pieces) * 1100)  # past the cuts
        array = pa.array(texts, pa.string())
        if rng.random() < 0.3 and len(array) > 2:
            array = array.slice(1)  # a buffer holding bytes of no text
        got, want = _finish(array), _old_finish(array)
        assert got[0].equals(want[0]) and got[1] == want[1]


@pytest.mark.parametrize("seed", range(6))
def test_cut_is_the_slice_and_the_count_of_characters(seed: int) -> None:
    """``_cut`` (by bytes where the bytes tell) against ``utf8_slice_codeunits`` and the
    count by ``utf8_length``: lines around ``MAX_LINE_CHARS`` characters and bytes, with
    characters of 2, 3 and 4 bytes before, at and after the cut, empty lines, sliced arrays."""
    rng = random.Random(seed)
    fills = ("a", "é", "中", "😀", " ", "\\n")
    texts = []
    for _ in range(300):
        size = rng.choice([0, 1, MAX_LINE_CHARS - 1, MAX_LINE_CHARS, MAX_LINE_CHARS + 1,
                           rng.randint(MAX_LINE_CHARS - 10, MAX_LINE_CHARS + 10), rng.randint(0, 3 * MAX_LINE_CHARS)])
        text = ["a"] * size
        for _ in range(rng.choice([0, 0, 1, 3])):
            if size:
                text[rng.randrange(size)] = rng.choice(fills)
        if size and rng.random() < 0.3:
            at = min(size - 1, MAX_LINE_CHARS - rng.randint(-2, 2))
            text[at] = rng.choice(fills)
        texts.append("".join(text))
    array = pa.array(texts, pa.string())
    for part in (array, array.slice(7), array.slice(0, 1), array.slice(3, 0)):
        lines, long = _cut(part)
        assert lines.equals(pc.utf8_slice_codeunits(part, 0, MAX_LINE_CHARS))
        assert long == int(pc.sum(pc.cast(pc.greater(pc.utf8_length(part), MAX_LINE_CHARS), pa.int64())).as_py() or 0)


def test_escapes_in_are_the_escapes_in_the_bytes() -> None:
    assert _escapes_in(pa.array(["a\\", "tb", "\\\\"])) == {"\\t", "\\\\"}  # a pair across two texts counts
    assert _escapes_in(pa.array([], pa.string())) == set()
    assert _escapes_in(pa.array(["\\u0041 \\"])) == set()


def _old_separated(data: np.ndarray, quote: np.ndarray, end: np.ndarray) -> np.ndarray:
    near = data[np.minimum(quote[:, None] + np.arange(len(_SEPARATOR)), len(data) - 1)]
    return (near == _SEPARATOR).all(axis=1) & (quote + len(_SEPARATOR) <= end)


@pytest.mark.parametrize("seed", range(4))
def test_separated_is_the_byte_comparison(seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(rng.choice(('"', ",", "s", "x", _DOCKER_SEPARATOR, _DOCKER_SEPARATOR[:7], "é"))
                   for _ in range(400)) + rng.choice(("", _DOCKER_SEPARATOR, _DOCKER_SEPARATOR[:-1]))
    data = np.frombuffer(text.encode(), dtype=np.uint8)
    at = np.arange(len(data), dtype=np.int64)
    for end in (np.full(len(at), len(data)), np.minimum(at + rng.randint(0, 20), len(data))):
        got = _separated(data, at) & (at + len(_SEPARATOR) <= end)
        assert got.tolist() == _old_separated(data, at, end).tolist()
    assert _separated(data, at).sum() >= text.count(_DOCKER_SEPARATOR) > 0
    short = np.frombuffer(b'","', dtype=np.uint8)
    assert _separated(short, np.array([0, 1, 2])).tolist() == [False, False, False]


def _old_repeated(times: np.ndarray, lines: pa.Table) -> np.ndarray:
    order = np.argsort(times, kind="stable")
    same = times[order][1:] == times[order][:-1]
    shared = np.zeros(len(times), dtype=bool)
    shared[order] = np.r_[same, False] | np.r_[False, same]
    rows = np.flatnonzero(shared)
    repeated = np.zeros(len(times), dtype=bool)
    if len(rows):
        part = pd.DataFrame({"time_ns": times[rows],
                             "pod": np.asarray(_taken(lines.column("pod"), rows).to_pylist(), dtype=object),
                             "line": np.asarray(_taken(lines.column("line"), rows).to_pylist(), dtype=object)})
        repeated[rows] = part.duplicated(keep="first").to_numpy()
    return repeated


@pytest.mark.parametrize("seed", range(5))
def test_repeated_is_the_duplicated_rows(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.choice((0, 1, 50, 800))
    times = np.array([rng.randint(0, 30) for _ in range(n)], dtype=np.int64)
    pods = [rng.choice(("a-1", "b-2", "", None, "é")) for _ in range(n)]
    texts = [rng.choice(("x", "y", "", None, "日本", "x ")) for _ in range(n)]
    cut = rng.randint(0, n)
    table = pa.Table.from_batches([pa.record_batch({"pod": pa.array(p, pa.string()), "line": pa.array(t, pa.string())})
                                   for p, t in ((pods[:cut], texts[:cut]), (pods[cut:], texts[cut:]))])
    assert _repeated(times, table).tolist() == _old_repeated(times, table).tolist()
    if n > 100:
        assert _repeated(times, table).sum() > 0
