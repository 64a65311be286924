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


def templates(lines: pd.Series) -> pd.Series:
    """The template of each line (same index).

    Lines are unique mostly by their clock and trace IDs: once those are removed (the first
    ``_REMOVED`` masks, and the cut to ``MASKED_CHARS``), a day's 75k lines hold ~3k distinct
    heads, so the remaining masks run on each distinct head once."""
    if lines.empty:
        return pd.Series([], index=lines.index, dtype=object)
    heads = pc.dictionary_encode(_parallel(_head, _arrow(lines)))
    distinct = np.asarray(_masked(heads.dictionary).to_numpy(zero_copy_only=False), dtype=object)
    return pd.Series(distinct[heads.indices.to_numpy(zero_copy_only=False)], index=lines.index)


def categorized(lines: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``templates(lines)`` and ``levels(lines)`` as categorical columns (same values and the
    same categories ``astype("category")`` gives), made from their few distinct values: a
    cache of many incidents keeps these, and counts their codes."""
    if lines.empty:
        return (pd.Series([], index=lines.index, dtype="category"),
                pd.Series([], index=lines.index, dtype="category"))
    both = _parallel(_head_and_level, _arrow(lines))  # one pass of threads for both
    heads, found = pc.dictionary_encode(both.field(0)), pc.dictionary_encode(both.field(1))
    return (_categorical(_masked(heads.dictionary), heads.indices, lines.index),
            _categorical(found.dictionary, found.indices, lines.index))


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


def _head_and_level(lines: pa.Array) -> pa.Array:
    """``_head`` and ``_levels`` of the lines, as the two fields of a struct array."""
    return pa.StructArray.from_arrays([_head(lines), _levels(lines)], names=["head", "level"])


def _head(lines: pa.Array) -> pa.Array:
    """The line's head with clocks and trace fields removed, trimmed, cut to ``MASKED_CHARS``:
    what the template is made of."""
    text = pc.utf8_slice_codeunits(lines, 0, HEAD_CHARS)
    for pattern, replacement in _MASKS[:_REMOVED]:
        text = pc.replace_substring_regex(text, pattern, replacement)
    return pc.utf8_slice_codeunits(pc.utf8_trim_whitespace(text), 0, MASKED_CHARS)


def _masked(heads: pa.Array) -> pa.Array:
    """Heads (``_head``) to templates: IDs and numbers masked, the first ``TEMPLATE_TOKENS``
    tokens kept."""
    text = heads
    for pattern, replacement in _MASKS[_REMOVED:]:
        text = pc.replace_substring_regex(text, pattern, replacement)
    text = pc.utf8_trim_whitespace(text)
    tokens = pc.split_pattern(text, " ", max_splits=TEMPLATE_TOKENS)
    head = pc.list_slice(tokens, 0, TEMPLATE_TOKENS)
    return pc.binary_join(head, " ")


def levels(lines: pd.Series) -> pd.Series:
    """The severity each line states ("" when none), normalized to ``LEVELS``."""
    if lines.empty:
        return pd.Series([], index=lines.index, dtype=object)
    upper = _levels(_arrow(lines))
    return pd.Series(np.asarray(upper.to_numpy(zero_copy_only=False), dtype=object), index=lines.index)


def _levels(lines: pa.Array) -> pa.Array:
    head = pc.utf8_slice_codeunits(lines, 0, HEAD_CHARS)
    found = pc.struct_field(pc.extract_regex(head, _LEVEL_RE2), "level")
    upper = pc.utf8_upper(pc.fill_null(found, ""))
    for alias, level in _LEVEL_ALIASES.items():
        upper = pc.if_else(pc.equal(upper, alias), level, upper)
    return upper


def _arrow(lines: pd.Series) -> pa.Array:
    """The lines as one pyarrow string array (no copy when pandas already holds them so)."""
    array = pa.array(lines, type=pa.string(), from_pandas=True)
    return pc.fill_null(array, "")


def is_problem(level: str) -> bool:
    return level in ("FATAL", "ERROR", "WARN")
