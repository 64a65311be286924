"""Log lines → templates: what stays the same when the same statement logs again.

A template is the line with its variable parts masked (clock prefixes, trace and span IDs, hex
and UUID-like IDs, numbers not glued to a name such as ``Controller#46``), cut to its first
``TEMPLATE_TOKENS`` tokens: the level, the logger and the first words of the message identify
the statement that wrote it, and what follows is mostly data. All of it runs vectorized in
pyarrow (RE2), over 100k lines a second.

Why not drain3: measured on the TrainTicket days, drain3's prefix tree merged statements of
different loggers into one cluster (``INFO <*> TraceID: <*> SpanID: <*> <*> …`` held 12k of the
75k lines of 2023-01-29: its first levels split by token count and first tokens, which differ
by data, not by statement), and it took 1.6 s for those lines in Python against 0.6 s here. Masking then cutting keeps one
template per logging statement on every system we read (Java logback, Go, Python, JSON lines).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from thinkfl_operator.telemetry.csvio import THREADS

#: Tokens of a masked line kept as its template.
TEMPLATE_TOKENS = 4
#: Characters of a line looked at (the template is in the first words): clocks and trace
#: fields are cut from this head, the rest is masked in its first ``MASKED_CHARS``.
HEAD_CHARS = 300
MASKED_CHARS = 120
LEVELS = ("FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE")
_LEVEL_ALIASES = {"WARNING": "WARN", "CRITICAL": "FATAL", "SEVERE": "ERROR", "PANIC": "FATAL",
                  "ERR": "ERROR", "CRIT": "FATAL", "EMERG": "FATAL"}
_LEVEL_RE2 = (
    r"(?i)(?:^|[\s\[\"'=:|])(?P<level>FATAL|CRITICAL|CRIT|PANIC|EMERG|SEVERE|ERROR|ERR|WARNING|WARN|INFO|DEBUG"
    r"|TRACE)(?:$|[\s\]\"',:|])")
#: (RE2 pattern, replacement), applied in order; the first three remove, the rest mask.
#: What the removals can match decides where heads may be cut (``_CUT``), and ``_removed``
#: looks for dates only in texts holding a ``-`` or ``/``.
_REMOVED = 3
_MASKS = (
    # clock and date prefixes: 17:02:12.420, 2023-01-29T09:02:12.42Z, 2023/01/29 09:02:12
    (r"\d{4}[-/]\d{2}[-/]\d{2}[T ]?(\d{2}:\d{2}:\d{2}([.,]\d+)?)?(Z|[+-]\d{2}:?\d{2})?", ""),
    (r"\b\d{1,2}:\d{2}:\d{2}([.,]\d+)?\b", ""),
    # trace context fields carry no meaning of their own
    (r"(?i)\b(trace_?id|span_?id|traceid|spanid)[\"']?\s*[:=]\s*[\"']?[0-9a-f-]*[\"']?", ""),
    # UUIDs and long hex or base64-like IDs
    (r"\b[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b", "<ID>"),
    (r"\b[0-9a-fA-F]*\d[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b|\b[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\d[0-9a-fA-F]*\b",
     "<ID>"),
    # numbers that stand alone (not the line number in Controller#46 or a name like ts2)
    (r"(^|[^#\w.])[-+]?\d+(\.\d+)?", r"\1<N>"),
    (r"\s+", " "),
)


#: Lines templated per thread (pyarrow's kernels run without the GIL; one kernel call is
#: single-threaded, so a long array is cut in parts, one per core).
_PART_LINES = 20_000
#: Where a head is cut in two (its first occurrence) for the removals. No removal pattern
#: can match ``[`` (clock and date characters; the letters of trace/span/id, hex digits,
#: quotes, ``-``, ``:``, ``=`` and whitespace), and it is no word character, so no removal
#: straddles it and a ``\b`` beside it reads the same in a part as in the whole head: each
#: removal pass over the whole head is that pass over the part before it joined to that pass
#: over the part from it on (the ``[`` stays, so this holds pass after pass). Lines differ
#: mostly by what comes before their first ``[`` (clock, level, logger, trace IDs) and
#: repeat what follows it: the part from it on is read once per distinct value.
_CUT = "["


def templates(lines: pd.Series) -> pd.Series:
    """The template of each line (same index)."""
    if lines.empty:
        return pd.Series([], index=lines.index, dtype=object)
    template, _ = categorized(lines)
    return pd.Series(np.asarray(template, dtype=object), index=lines.index)


def levels(lines: pd.Series) -> pd.Series:
    """The severity each line states ("" when none), normalized to ``LEVELS``."""
    if lines.empty:
        return pd.Series([], index=lines.index, dtype=object)
    found = pc.dictionary_encode(_level_words(pc.utf8_slice_codeunits(_text(_arrow(lines)), 0, HEAD_CHARS)),
                                 null_encoding="encode")
    upper = _normalized(found.dictionary).take(found.indices)
    return pd.Series(np.asarray(upper.to_numpy(zero_copy_only=False), dtype=object), index=lines.index)


def categorized(lines: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``templates(lines)`` and ``levels(lines)`` as categorical columns (same values and the
    same categories ``astype("category")`` gives), made from their few distinct values: a
    cache of many incidents keeps these, and counts their codes."""
    return categorized_arrow(_arrow(lines), lines.index)


def categorized_arrow(lines: pa.Array | pa.ChunkedArray,
                      index: pd.Index | None = None) -> tuple[pd.Series, pd.Series]:
    """``categorized`` of lines held by pyarrow (nulls read as ""), indexed by ``index``
    (default: positions).

    A line's template is made of its head (its first ``HEAD_CHARS`` characters) with clocks
    and trace fields removed (the first ``_REMOVED`` masks), trimmed and cut to
    ``MASKED_CHARS``; the remaining masks run on each distinct such head once. Lines are
    unique mostly by their clock and trace IDs, which come before the head's first ``_CUT``:
    only that part is removed from per line, the rest once per distinct value (see
    ``_CUT``); a day's 75k lines hold ~300 distinct parts before it once removed, ~4k after
    it. The level is the first level word of each line's whole head (``levels``)."""
    text = _text(lines)
    if index is None:
        index = pd.RangeIndex(len(text))
    if len(text) == 0:
        return (pd.Series([], index=index, dtype="category"),
                pd.Series([], index=index, dtype="category"))
    parts = _parallel(text)
    after = pc.dictionary_encode(parts.after)  # null: no cut
    n_after = len(after.dictionary)
    after_removed = pa.concat_arrays([_removed(pc.binary_join_element_wise(_CUT, after.dictionary, "")),
                                      pa.array([""])])  # the last one: no cut
    # the parts before by their codes (equal codes, equal texts; equal texts may have
    # different codes: the heads are made distinct by value below)
    key = parts.before_codes * (n_after + 1) + pc.fill_null(after.indices, n_after).to_numpy(zero_copy_only=False)
    pair_codes, pairs = pd.factorize(key)  # the distinct (before, after) codes of the lines
    joined = pc.binary_join_element_wise(parts.before.take(pa.array(pairs // (n_after + 1))),
                                         after_removed.take(pa.array(pairs % (n_after + 1))), "")
    heads = pc.dictionary_encode(pc.utf8_slice_codeunits(pc.utf8_trim_whitespace(joined), 0, MASKED_CHARS))
    codes = heads.indices.to_numpy(zero_copy_only=False)[pair_codes]
    return (_categorical(_masked(heads.dictionary), pa.array(codes), index),
            _categorical(_normalized(parts.level), pa.array(parts.level_codes), index))


def _categorical(values: pa.Array, indices: pa.Array, index: pd.Index) -> pd.Series:
    """The series ``values[indices]`` as a categorical whose categories are the sorted
    distinct values (what pandas makes of the full column)."""
    distinct = pd.Categorical(np.asarray(values.to_numpy(zero_copy_only=False), dtype=object))
    codes = np.asarray(distinct.codes)[indices.to_numpy(zero_copy_only=False)]
    return pd.Series(pd.Categorical.from_codes(codes, dtype=distinct.dtype), index=index)


class _Parts(NamedTuple):
    """Each line's head cut before its first ``_CUT`` (see there): the part before it with
    clocks and trace fields removed (``before[before_codes]``), the part after it (``after``,
    null when the head has none), the head's first level word (``level[level_codes]``, null
    when none). ``before`` and ``level`` may repeat values."""

    before_codes: np.ndarray
    before: pa.Array
    after: pa.Array
    level_codes: np.ndarray
    level: pa.Array


def _parallel(text: pa.Array) -> _Parts:
    """``_split`` of ``text`` in one part per core (parts of at least ``_PART_LINES``), joined."""
    parts = max(1, min(THREADS, len(text) // _PART_LINES))
    if parts == 1:
        return _split(text)
    size = -(-len(text) // parts)
    with ThreadPoolExecutor(max_workers=parts) as pool:
        chunks = list(pool.map(_split, [text.slice(i, size) for i in range(0, len(text), size)]))
    return _joined_parts(chunks)


def _joined_parts(chunks: list[_Parts]) -> _Parts:
    """The parts of consecutive slices as those of the whole (each slice's codes past the values
    of the slices before it)."""
    before_at = np.cumsum([0, *(len(c.before) for c in chunks)])
    level_at = np.cumsum([0, *(len(c.level) for c in chunks)])
    return _Parts(np.concatenate([c.before_codes + at for c, at in zip(chunks, before_at, strict=False)]),
                  pa.concat_arrays([c.before for c in chunks]), pa.concat_arrays([c.after for c in chunks]),
                  np.concatenate([c.level_codes + at for c, at in zip(chunks, level_at, strict=False)]),
                  pa.concat_arrays([c.level for c in chunks]))


def _split(lines: pa.Array) -> _Parts:
    """Each line's head cut before its first ``_CUT`` (see ``_Parts``)."""
    head = _head(lines, HEAD_CHARS)
    pieces = pc.split_pattern(head, _CUT, max_splits=1)
    offsets = pieces.offsets.to_numpy()
    first, cut = offsets[:-1], np.diff(offsets) == 2
    before = pieces.values.take(pa.array(first))
    after = pieces.values.take(pa.array(first + 1, mask=~cut))
    before_codes, removed, level_codes, level = _removed_and_level_codes(before, head)
    return _Parts(before_codes, removed, after, level_codes, level)


def _head(text: pa.Array, n: int) -> pa.Array:
    """``utf8_slice_codeunits(text, 0, n)`` of texts without a null, mostly from byte lengths: a
    text of at most ``n`` bytes is whole (so many bytes are at most so many characters; when
    every text is, ``text`` itself), a longer one whose first ``n`` bytes are ASCII is those
    bytes (a character each); only the others (a character of several bytes among their first
    ``n`` bytes) are sliced by characters. One copy of byte ranges instead of a walk over
    every character."""
    offsets = _offsets(text)
    begin, end = offsets[:-1], offsets[1:]
    over = np.flatnonzero(end - begin > n)
    if not len(over):
        return text
    data = text.buffers()[2]
    stop = np.minimum(end, begin + n)
    ascii_ = np.asarray(pc.string_is_ascii(_ranges(data, begin[over], stop[over])).to_numpy(zero_copy_only=False))
    head = _ranges(data, begin, stop)
    wide = over[~ascii_]
    if not len(wide):
        return head
    mask = np.zeros(len(text), dtype=bool)
    mask[wide] = True
    return pc.replace_with_mask(head, pa.array(mask), pc.utf8_slice_codeunits(text.take(pa.array(wide)), 0, n))


def _ranges(data: pa.Buffer, starts: np.ndarray, stops: np.ndarray) -> pa.Array:
    """The byte ranges [start, stop) of ``data`` (each after the one before) as strings, one
    copy: every other element of a view of ``data`` (the ranges and what lies between)."""
    bounds = np.empty(2 * len(starts) + 1, dtype=np.int32)
    bounds[0:-1:2], bounds[1::2] = starts, stops
    bounds[-1] = bounds[-2] if len(starts) else 0
    both = pa.Array.from_buffers(pa.string(), 2 * len(starts), [None, pa.py_buffer(bounds), data])
    return both.take(pa.array(2 * np.arange(len(starts))))


#: The usual part of a line before its first ``_CUT`` (Java logback with trace fields):
#: ``17:02:12.420 INFO  v.c.VerifyCodeController#54 TraceID: <32 hex> SpanID: <16 hex> ``
#: with no ``-`` or ``/`` in it (told without this regex, which costs more: ``_shaped``).
#: Its clock (``_CLOCK``) and trace tail (``_TAIL``) differ from line to line; what lies
#: between does not.
_SHAPE = r"^\d\d:\d\d:\d\d\.\d\d\d [^-/]* TraceID: [0-9a-f]{32} SpanID: [0-9a-f]{16} $"
#: The shape's first and last characters: ``\0`` a digit, ``\1`` a hex digit (lower case).
_CLOCK = "\0\0:\0\0:\0\0.\0\0\0"
_TAIL = " TraceID: " + "\1" * 32 + " SpanID: " + "\1" * 16 + " "
#: What the removals leave of a shaped text's trace tail after its key (see ``_removed_and_level``).
_TAIL_LEFT = "  "


def _removed_and_level(before: pa.Array, head: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``_removed(before)`` and ``_level_words(head)`` (``before``: each head's part before its
    first ``_CUT``, no nulls), the removals and the level read once per distinct key for the
    texts of ``_SHAPE``, whose key is ``k = before[len(_CLOCK):len(before) - len(_TAIL) + 1]``
    (bytes; the shape's clock and tail are ASCII), i.e. ``" " + M + " "`` for
    ``before = C + " " + M + T`` with ``C`` the clock and ``T = " TraceID: <h1> SpanID: <h2> "``
    (``M``: anything without ``-`` or ``/``, even clocks, trace fields, quotes, non-ASCII text,
    or nothing). ``C`` and ``T`` hold no ``-`` or ``/``: ``before`` holds one when ``k`` does,
    so it is looked for in the distinct keys.

    Exactness, ``_removed(before) == _removed(k) + _TAIL_LEFT``, pass by pass (the passes are
    global replacements, leftmost first, none matches the empty text, each reads its whole text
    for ``\\b``):
    dates: neither ``before`` nor ``k`` holds ``-`` or ``/``, so neither is searched.
    clocks: at 0 the clock pattern matches ``C`` exactly (its greedy first path succeeds: the
    digits end at a space, a ``\\b``). No match touches ``T``: a match holds only digits, ``:``,
    ``.`` and ``,``, so not ``T``'s first space, and after it every ``:`` of ``T`` is followed
    by a space where a match needs a digit. The matches between are those of ``k``: one starts
    with a digit, so not at ``k``'s first space (the only position whose left neighbour
    differs: a digit in ``before``, none in ``k``), and ends before ``k``'s last space, which
    both texts have next. So after this pass ``before`` is ``R + T`` and ``k`` is ``R + " "``
    (``R`` starts with ``k``'s first space, never matched).
    trace fields: a match starting in ``R`` is the same in both: past ``R`` it can only take
    the space that follows ``R`` in both texts (by its last ``\\s*``; the earlier ``\\s*`` must
    be followed by ``:`` or ``=``), and nothing after that space (``T``'s ``T`` is no quote,
    space, ``:``, ``=`` or hex digit even ignoring case; ``k`` ends there). Then ``T``'s
    ``TraceID: <h1>`` and ``SpanID: <h2>`` each match exactly (a word boundary before them, the
    hex runs end at a space), and its three spaces stay unless the first was taken with the
    last match of ``R``, as ``k``'s last space then is: ``T`` leaves the two spaces more.

    The level: ``_LEVEL_RE2``'s leftmost match in ``head`` is the one in ``k`` when ``k`` has
    one (none starts in ``C``: its ``:`` are followed by digits; one starting in ``k`` reads
    nothing past ``k``'s last space, the same in both), else one in ``head`` past ``before``'s
    end or none: in ``T`` every word after a space or ``:`` is ``TraceID`` (``TRACE`` followed
    by a letter), ``SpanID``, or hex digits (every level word holds a letter that is no hex
    digit). Those lines' heads are read again whole, as the texts of other shapes are."""
    removed_codes, removed, level_codes, level = _removed_and_level_codes(before, head)
    return removed.take(pa.array(removed_codes)), level.take(pa.array(level_codes))


def _removed_and_level_codes(before: pa.Array,
                             head: pa.Array) -> tuple[np.ndarray, pa.Array, np.ndarray, pa.Array]:
    """``_removed_and_level`` as codes into values (``removed[removed_codes]``,
    ``level[level_codes]``; values may repeat), not taken per line."""
    fast = np.flatnonzero(_shaped(before))
    keys = pc.dictionary_encode(_byte_slices(before, fast, len(_CLOCK), len(_TAIL) - 1))
    dashed = pc.or_(_holds(keys.dictionary, "-"), _holds(keys.dictionary, "/"))
    key_codes = keys.indices.to_numpy(zero_copy_only=False)
    keep = ~np.asarray(dashed.to_numpy(zero_copy_only=False))[key_codes]
    fast, key_codes = fast[keep], key_codes[keep]
    if not len(fast):
        removed = pc.dictionary_encode(_removed(before))
        return (removed.indices.to_numpy(zero_copy_only=False).astype(np.int64), removed.dictionary,
                np.arange(len(before), dtype=np.int64), _level_words(head))
    rest = np.setdiff1d(np.arange(len(before)), fast, assume_unique=True)
    removed_keys = pc.binary_join_element_wise(_removed(keys.dictionary), _TAIL_LEFT, "")
    removed_rest = pc.dictionary_encode(_removed(before.take(pa.array(rest))))
    codes = np.empty(len(before), dtype=np.int64)
    codes[fast] = key_codes
    codes[rest] = len(removed_keys) + removed_rest.indices.to_numpy(zero_copy_only=False)
    removed = pa.concat_arrays([removed_keys, removed_rest.dictionary])
    level_keys = _level_words(keys.dictionary)
    unread = np.asarray(level_keys.is_null().to_numpy(zero_copy_only=False))[key_codes]
    ask = np.sort(np.concatenate([rest, fast[unread]]))
    level_codes = np.empty(len(before), dtype=np.int64)
    level_codes[fast] = key_codes
    level_codes[ask] = len(level_keys) + np.arange(len(ask))
    level = pa.concat_arrays([level_keys, _level_words(head.take(pa.array(ask)))])
    return codes, removed, level_codes, level


def _shaped(text: pa.Array) -> np.ndarray:
    """Which texts (no nulls) start with ``_CLOCK`` and a space and end with ``_TAIL``:
    ``_SHAPE`` but for ``-`` and ``/``."""
    offsets = _offsets(text)
    data = np.frombuffer(text.buffers()[2] or b"", dtype=np.uint8)
    shaped = np.diff(offsets) >= len(_CLOCK) + 1 + len(_TAIL)
    rows = np.flatnonzero(shaped)
    if len(rows):
        shaped[rows] = (_fits(data, offsets[rows], _CLOCK + " " + "\2" * 3)
                        & _fits(data, offsets[rows + 1] - len(_TAIL) - 4, "\2" * 4 + _TAIL))
    return shaped


def _fits(data: np.ndarray, starts: np.ndarray, template: str) -> np.ndarray:
    """Whether the bytes of ``data`` at each start spell ``template`` (a multiple of 8 long;
    ``\\0``: a digit, ``\\1``: a digit or ``a``-``f``, ``\\2``: any byte). Eight bytes at a
    time: a byte ``x`` below 128 lies in ``[lo, hi]`` when ``x + 128 - lo`` has its top bit and
    ``x + 127 - hi`` has not (no sum carries out of its byte); a byte from 128 on is no digit."""
    code = np.frombuffer(template.encode(), dtype=np.uint8)

    def lanes(mask: np.ndarray, value: np.ndarray | int) -> np.ndarray:
        return np.where(mask, value, 0).astype(np.uint8).view(np.uint64)

    literal, value = lanes(code > 2, 0xFF), lanes(code > 2, code)
    digit, hexa = lanes(code == 0, 0x80), lanes(code == 1, 0x80)
    block = np.lib.stride_tricks.sliding_window_view(data, len(code))[starts].view(np.uint64)
    ok = np.ones(len(starts), dtype=bool)
    for j in range(block.shape[1]):
        word = block[:, j]
        if literal[j]:
            ok &= (word & literal[j]) == value[j]
        need = digit[j] | hexa[j]  # the top bit of each byte of a class
        if need:
            low = word & _every(0x7F)
            good = _within(low, ord("0"), ord("9"))
            if hexa[j]:  # a class byte is good as a digit, or as a-f where a hex digit is asked
                good = (good & need) | (_within(low, ord("a"), ord("f")) & hexa[j])
            ok &= (good & ~word & need) == need  # and below 128 (its own top bit clear)
    return ok


def _every(byte: int) -> np.uint64:
    """``byte`` in each of a word's eight bytes."""
    return np.uint64(int.from_bytes(bytes([byte]) * 8, "little"))


def _within(low: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The top bit of each byte of ``low`` (bytes below 128) set when it lies in ``[lo, hi]``."""
    return (low + _every(0x80 - lo)) & ~(low + _every(0x7F - hi)) & _every(0x80)


def _offsets(text: pa.Array) -> np.ndarray:
    """A string array's offsets into its data (n + 1 of them), as int64."""
    return np.frombuffer(text.buffers()[1], dtype=np.int32, count=len(text) + 1, offset=4 * text.offset).astype(np.int64)


def _byte_slices(text: pa.Array, rows: np.ndarray, lead: int, trail: int) -> pa.Array:
    """Bytes ``[lead, len - trail)`` of the texts at ``rows`` (ascending; each at least
    ``lead + trail`` bytes long, cut at character starts), one copy (``_ranges``)."""
    offsets = _offsets(text)
    return _ranges(text.buffers()[2], offsets[rows] + lead, offsets[rows + 1] - trail)


def _removed(text: pa.Array) -> pa.Array:
    """Clocks and trace fields removed (the first ``_REMOVED`` masks, in order). The dates'
    pattern reads a ``-`` or ``/``: only texts holding one are searched for dates."""
    dated = pc.or_(_holds(text, "-"), _holds(text, "/"))
    pattern, replacement = _MASKS[0]
    text = pc.replace_with_mask(text, dated, pc.replace_substring_regex(text.filter(dated), pattern, replacement))
    for pattern, replacement in _MASKS[1:_REMOVED]:
        text = pc.replace_substring_regex(text, pattern, replacement)
    return text


def _holds(text: pa.Array, literal: str) -> pa.Array:
    """Whether each text holds ``literal`` (splitting finds it faster than ``match_substring``)."""
    return pc.greater(pc.list_value_length(pc.split_pattern(text, literal, max_splits=1)), 1)


def _masked(heads: pa.Array) -> pa.Array:
    """Heads (clocks and trace fields removed, trimmed, cut) to templates: IDs and numbers
    masked, the first ``TEMPLATE_TOKENS`` tokens kept."""
    text = heads
    for pattern, replacement in _MASKS[_REMOVED:]:
        text = pc.replace_substring_regex(text, pattern, replacement)
    text = pc.utf8_trim_whitespace(text)
    tokens = pc.split_pattern(text, " ", max_splits=TEMPLATE_TOKENS)
    head = pc.list_slice(tokens, 0, TEMPLATE_TOKENS)
    return pc.binary_join(head, " ")


def _level_words(text: pa.Array) -> pa.Array:
    """The first level word of each text as written (null when none)."""
    return pc.struct_field(pc.extract_regex(text, _LEVEL_RE2), "level")


def _normalized(words: pa.Array) -> pa.Array:
    """Level words (``_level_words``) normalized to ``LEVELS`` ("" for none)."""
    upper = pc.utf8_upper(pc.fill_null(words, ""))
    for alias, level in _LEVEL_ALIASES.items():
        upper = pc.if_else(pc.equal(upper, alias), level, upper)
    return upper


def _arrow(lines: pd.Series) -> pa.Array:
    """The lines as one pyarrow string array (no copy when pandas already holds them so)."""
    return pa.array(lines, type=pa.string(), from_pandas=True)


def _text(lines: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One string array, nulls as ""."""
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    if lines.type != pa.string():
        lines = lines.cast(pa.string())
    return pc.fill_null(lines, "")


def is_problem(level: str) -> bool:
    return level in ("FATAL", "ERROR", "WARN")
