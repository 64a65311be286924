"""Incident times from the command line: RFC 3339, "YYYY-MM-DD HH:MM:SS" (UTC) or epoch s/ms."""

from __future__ import annotations

from thinkfl_operator.core import rfc3339
from thinkfl_operator.core.errors import InvalidIncident


def parse_time(text: str, field: str = "--time") -> float:
    """Epoch seconds; a time without a zone is UTC, and so is one ending in " UTC" (as this
    command prints times: what it printed can be given back)."""
    raw = text.strip()
    if raw.upper().endswith(" UTC"):
        raw = raw[:-4].rstrip()
    if raw.replace(".", "", 1).isdigit():
        value = float(raw)
        return value / 1000.0 if value > 1e11 else value
    try:
        return rfc3339.parse_loose(raw).timestamp()
    except ValueError:
        raise InvalidIncident(
            f'{field} "{text}" is not a time like 2023-01-30 11:51:46 (UTC) or an RFC 3339 time'
        ) from None


#: How the command line prints a time (what ``parse_time`` reads back).
iso = rfc3339.human_utc
