"""Training-format rendering: the root-span table, span lists and metric maps, each capped."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from thinkfl_operator.core.models import Span

#: Column order of the first user message's root-span table.
ROOT_COLUMNS = ("timestamp", "cmdb_id", "span_id", "trace_id", "duration", "type", "status_code",
                "operation_name", "parent_span")


def root_span_table(span: Span, index: int = 0) -> str:
    """The root span as pandas prints a one-row frame (header line, then index and values)."""
    row: dict[str, Any] = {
        "timestamp": span.timestamp,
        "cmdb_id": span.cmdb_id,
        "span_id": span.span_id,
        "trace_id": span.trace_id,
        "duration": span.duration,
        "type": span.type,
        "status_code": span.status_code,
        "operation_name": span.operation_name,
        "parent_span": span.parent_span or float("nan"),
    }
    frame = pd.DataFrame([row], index=[index], columns=list(ROOT_COLUMNS))
    return str(frame.astype({"parent_span": object}).to_string())


def spans_json(spans: Sequence[Span], max_chars: int) -> str:
    """Child spans as the training JSON list (sorted keys, compact), whole items up to the cap."""
    items = [json.dumps(s.training_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
             for s in spans]
    return _capped(items, "[]", max_chars, "spans")


def _capped(items: list[str], brackets: str, max_chars: int, noun: str) -> str:
    """Items joined inside ``brackets`` ("[]" or "{}"), whole items only, up to ``max_chars``;
    a line after the JSON says how many were left out."""
    kept: list[str] = []
    used = 2
    for item in items:
        if used + len(item) + 2 > max_chars and kept:
            break
        kept.append(item)
        used += len(item) + 2
    text = brackets[0] + ", ".join(kept) + brackets[1]
    if len(kept) < len(items):
        text += f"\n({len(items) - len(kept)} more {noun} not shown)"
    return text


def metrics_json(entries: dict[str, dict[str, float]], max_chars: int) -> str:
    """The fluctuating-metrics map (keys ``node.pod.kpi``), whole entries up to the cap."""
    items = [json.dumps({key: stats}, ensure_ascii=False)[1:-1] for key, stats in entries.items()]
    return _capped(items, "{}", max_chars, "metrics")


def ms(duration_us: int) -> str:
    """A duration in µs as a short human string."""
    if duration_us >= 1_000_000:
        return f"{duration_us / 1e6:.2f} s"
    if duration_us >= 100:
        return f"{duration_us / 1e3:.1f} ms"
    return f"{duration_us} µs"
