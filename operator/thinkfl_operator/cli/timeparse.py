"""Incident times from the command line: RFC 3339, "YYYY-MM-DD HH:MM:SS" (UTC) or epoch s/ms."""

from __future__ import annotations

from datetime import UTC, datetime

from thinkfl_operator.errors import InvalidIncident


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
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidIncident(
            f'{field} "{text}" is not a time like 2023-01-30 11:51:46 (UTC) or an RFC 3339 time'
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def iso(t_s: float) -> str:
    return datetime.fromtimestamp(t_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
