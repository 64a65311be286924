"""search_traces: the child spans of a span, by index lookup."""

from __future__ import annotations

from thinkfl_operator.core.models import Span
from thinkfl_operator.evidence.formatting import ms, spans_json
from thinkfl_operator.telemetry.spans import SpanTable


def search_traces(table: SpanTable, parent_span_id: str) -> list[Span]:
    """Every span whose parent is ``parent_span_id`` (empty for unknown IDs)."""
    return table.children(str(parent_span_id).strip())


def render(children: list[Span], max_chars: int) -> str:
    return spans_json(children, max_chars)


def summarize(parent_span_id: str, children: list[Span]) -> str:
    """One line for the diagnostic path."""
    if not children:
        return f"no child spans under {parent_span_id}"
    slowest = max(children, key=lambda s: s.duration)
    pods = sorted({s.cmdb_id for s in children})
    errors = sum(1 for s in children if s.status_code not in ("0", "", "200", "OK", "Ok", "ok", "STATUS_CODE_OK", "STATUS_CODE_UNSET"))
    line = (f"{len(children)} child span(s) on {', '.join(pods[:3])}{'…' if len(pods) > 3 else ''}; "
            f"slowest {slowest.cmdb_id} {slowest.operation_name} {ms(slowest.duration)}")
    if errors:
        line += f"; {errors} with error status"
    return line
