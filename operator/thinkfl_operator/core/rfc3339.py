"""Times as text, in one place: RFC 3339 read and written, and the one-line UTC form people read.

* ``parse``: an RFC 3339 time with a zone (``Z`` or ``±hh:mm``; ``T`` and ``Z`` in either case,
  any number of fraction digits, finer than microseconds cut) → an aware ``datetime``. The
  grammar is checked first (``datetime.fromisoformat`` alone would take a date without a time, a
  space for ``T`` or a time without a zone); then ``fromisoformat`` reads it and checks the
  calendar. ``NotRFC3339`` when the grammar is wrong, a plain ``ValueError`` (its own words,
  e.g. "day is out of range for month") when the date does not exist.
* ``parse_loose``: what ``fromisoformat`` reads (the command line's times); no zone means UTC.
* ``format_utc``: a ``datetime`` (naive = UTC) or epoch seconds → ``2023-01-30T11:51:46Z``, or
  with ``fraction=True`` the microseconds too, trailing zeros dropped (``…:46.5Z``).
* ``human_utc``: epoch seconds → ``2023-01-30 11:51:46 UTC`` (what the CLI prints and reads back).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

#: The grammar ``parse`` accepts (RFC 3339 ``date-time``: section 5.6).
GRAMMAR = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)


class NotRFC3339(ValueError):
    """The text is not in RFC 3339's grammar (as opposed to a date that does not exist)."""


def parse(text: str) -> datetime:
    """An aware ``datetime`` of an RFC 3339 time; ``NotRFC3339`` or ``ValueError`` if none."""
    if GRAMMAR.fullmatch(text) is None:
        raise NotRFC3339(f"{text!r} is not an RFC 3339 time")
    return datetime.fromisoformat(text.upper())  # Python 3.11's: "Z", any fraction digits


def parse_loose(text: str) -> datetime:
    """Any time ``datetime.fromisoformat`` reads (``2023-01-30 11:51:46``, ``2023-01-30``, RFC
    3339), aware: without a zone it is UTC. ``ValueError`` when it reads none."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def format_utc(moment: datetime | float, *, fraction: bool = False) -> str:
    """``2023-01-30T11:51:46Z`` (``fraction``: ``…:46.5Z``, microseconds at most)."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if fraction and moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def human_utc(seconds: float) -> str:
    """``2023-01-30 11:51:46 UTC``: what the command line prints (and reads back)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
