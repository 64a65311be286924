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

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

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
    parts = _parallel(_split, text)
    before = pc.dictionary_encode(parts.field("before"))  # removed already
    after = pc.dictionary_encode(parts.field("after"))  # null: no cut
    n_after = len(after.dictionary)
    after_removed = pa.concat_arrays([_removed(pc.binary_join_element_wise(_CUT, after.dictionary, "")),
                                      pa.array([""])])  # the last one: no cut
    key = (before.indices.to_numpy(zero_copy_only=False).astype(np.int64) * (n_after + 1)
           + pc.fill_null(after.indices, n_after).to_numpy(zero_copy_only=False))
    pair_codes, pairs = pd.factorize(key)  # the distinct (before, after) of the lines
    joined = pc.binary_join_element_wise(before.dictionary.take(pa.array(pairs // (n_after + 1))),
                                         after_removed.take(pa.array(pairs % (n_after + 1))), "")
    heads = pc.dictionary_encode(pc.utf8_slice_codeunits(pc.utf8_trim_whitespace(joined), 0, MASKED_CHARS))
    codes = heads.indices.to_numpy(zero_copy_only=False)[pair_codes]
    found = pc.dictionary_encode(parts.field("level"), null_encoding="encode")
    return (_categorical(_masked(heads.dictionary), pa.array(codes), index),
            _categorical(_normalized(found.dictionary), found.indices, index))


def _categorical(values: pa.Array, indices: pa.Array, index: pd.Index) -> pd.Series:
    """The series ``values[indices]`` as a categorical whose categories are the sorted
    distinct values (what pandas makes of the full column)."""
    distinct = pd.Categorical(np.asarray(values.to_numpy(zero_copy_only=False), dtype=object))
    codes = np.asarray(distinct.codes)[indices.to_numpy(zero_copy_only=False)]
    return pd.Series(pd.Categorical.from_codes(codes, dtype=distinct.dtype), index=index)


def _parallel(function: Callable[[pa.Array], pa.Array], text: pa.Array) -> pa.Array:
    """``function`` over ``text`` in one part per core (parts of at least ``_PART_LINES``)."""
    parts = max(1, min(THREADS, len(text) // _PART_LINES))
    if parts == 1:
        return function(text)
    size = -(-len(text) // parts)
    with ThreadPoolExecutor(max_workers=parts) as pool:
        chunks = list(pool.map(function, [text.slice(i, size) for i in range(0, len(text), size)]))
    return pa.chunked_array(chunks).combine_chunks()


def _split(lines: pa.Array) -> pa.StructArray:
    """Each line's head cut before its first ``_CUT`` (see there): ``before`` the part before
    it with clocks and trace fields removed, ``after`` the part after it (null when the head
    has none); ``level`` the head's first level word (null when none)."""
    head = pc.utf8_slice_codeunits(lines, 0, HEAD_CHARS)
    pieces = pc.split_pattern(head, _CUT, max_splits=1)
    offsets = pieces.offsets.to_numpy()
    first, cut = offsets[:-1], np.diff(offsets) == 2
    before = pieces.values.take(pa.array(first))
    after = pieces.values.take(pa.array(first + 1, mask=~cut))
    return pa.StructArray.from_arrays([_removed(before), after, _level_words(head)],
                                      names=["before", "after", "level"])


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
