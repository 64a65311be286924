"""The root span behind a conversation's first user message, read back from its table.

A record keeps messages, not span objects, but the conversation loop opens a conversation from a
root span (it prints the first user message itself). The pandas table is read by column: in a
one-row frame pandas right-aligns each header over its value, so every value ends where its
header ends, even when it holds spaces (HTTP operation names) or nothing at all (an empty type).
The span read back must print the very same message, or the record is refused: a replay must
show the model exactly what it was shown.
"""

from __future__ import annotations

from collections.abc import Mapping

from thinkfl_operator.core.models import Span
from thinkfl_operator.engines.thinkfl import prompt
from thinkfl_operator.evidence.formatting import ROOT_COLUMNS
from thinkfl_operator.feedback.shape import InvalidRecord

#: How pandas prints the empty parent of a root span.
_MISSING = "NaN"


def root_of(message: str, services: Mapping[str, str]) -> Span:
    """The root span ``message`` was built from; ``services`` maps its pod to its service (the
    table does not show the service)."""
    cells = _cells(message)
    try:
        span = Span(
            trace_id=cells["trace_id"], span_id=cells["span_id"],
            parent_span="" if cells["parent_span"] == _MISSING else cells["parent_span"],
            cmdb_id=cells["cmdb_id"], service=services.get(cells["cmdb_id"], ""),
            operation_name=cells["operation_name"], timestamp=int(cells["timestamp"]),
            duration=int(cells["duration"]), status_code=cells["status_code"], type=cells["type"],
        )
    except ValueError:
        raise _unreadable("its timestamp or duration is not a whole number") from None
    if prompt.first_user_message(span) != message:
        raise _unreadable("the span read back does not print the same message")
    return span


def _cells(message: str) -> dict[str, str]:
    """Column → text of the table's one row."""
    table = message.removeprefix(prompt.USER_PREFIX)
    lines = table.split("\n")
    if table == message or len(lines) != 2:
        raise _unreadable("it is not the trained prefix followed by a one-row table")
    header, row = lines
    cells: dict[str, str] = {}
    left = len(row.split(" ", 1)[0])  # after the index
    for column in ROOT_COLUMNS:
        found = header.find(column, left)
        if found < 0:
            raise _unreadable(f"its table has no {column} column")
        right = found + len(column)
        cells[column] = row[left:right].strip()
        left = right
    return cells


def _unreadable(why: str) -> InvalidRecord:
    return InvalidRecord(f"a recorded conversation cannot be replayed: its first user message "
                         f"does not read back as a root span ({why})")
