"""The diagnostic path: walk the tools from a root span down to the suspect, as the model would."""

from __future__ import annotations

import pandas as pd

from thinkfl_operator.engines.heuristic.scoring import PodEvidence
from thinkfl_operator.evidence.toolbox import Toolbox
from thinkfl_operator.models import Span

#: Deepest chain of search_traces calls per trace.
MAX_DEPTH = 12
#: Levels explored below the suspect's span.
EXTRA_DEPTH = 1
#: The span columns walking a trace reads.
WALKED = ("trace_id", "span_id", "parent_id", "pod", "operation", "duration_us")
#: The span columns picking traces reads (the rest are not copied by its filters).
_PICKED = ("trace_id", "pod", "operation", "is_error", "self_us", "gap_us", "duration_us")


def pick_traces(window: pd.DataFrame, suspect: PodEvidence | None, limit: int) -> list[str]:
    """Window traces that show the suspect's strongest anomaly, most extreme first; traces with
    errors come first (the suspect's errors, or any, when there is no suspect)."""
    if window.empty:
        return []
    window = window[[c for c in window.columns if c in _PICKED]]
    spans = window if suspect is None else window[window["pod"] == suspect.pod]
    errors = spans[spans["is_error"] > 0] if "is_error" in spans else spans.iloc[:0]
    if not errors.empty:
        return list(errors["trace_id"].drop_duplicates()[:limit])
    if suspect is None:
        return list(window["trace_id"].drop_duplicates()[:limit])
    best = suspect.best
    if best is not None and best.kind in ("self", "net", "short"):
        column = {"self": "self_us", "net": "gap_us", "short": "duration_us"}[best.kind]
        same = spans[spans["operation"] == best.operation].dropna(subset=[column])
        if not same.empty:
            ordered = same.sort_values(column, ascending=best.kind == "short")
            return list(ordered["trace_id"].drop_duplicates()[:limit])
    return list(spans["trace_id"].drop_duplicates()[:limit])


def culprit_span(trace: pd.DataFrame, suspect: PodEvidence) -> str:
    """The span of the suspect pod in this trace that best matches its strongest anomaly."""
    spans = trace[trace["pod"] == suspect.pod]
    best = suspect.best
    if best is not None:
        same = spans[spans["operation"] == best.operation]
        if not same.empty:
            spans = same
    if spans.empty:
        return ""
    return str(spans.sort_values("duration_us", ascending=False)["span_id"].iloc[0])


def critical_leaf(trace: pd.DataFrame) -> str:
    """The deepest span reached from the root by always following the longest child."""
    if trace.empty:
        return ""
    ids = set(trace["span_id"])
    roots = trace[~trace["parent_id"].isin(ids)]
    current = str(roots.sort_values("duration_us", ascending=False)["span_id"].iloc[0])
    by_parent = trace.sort_values("duration_us", ascending=False).drop_duplicates("parent_id")
    longest = dict(zip(by_parent["parent_id"], by_parent["span_id"], strict=True))
    for _ in range(MAX_DEPTH):
        if current not in longest:
            break
        current = str(longest[current])
    return current


def walk_trace(tools: Toolbox, trace: pd.DataFrame, target_span: str) -> None:
    """search_traces from the root down the ancestors of ``target_span`` (and the target itself)."""
    parents = dict(zip(trace["span_id"], trace["parent_id"], strict=False))
    chain = [target_span]
    while chain[-1] in parents and parents[chain[-1]] in parents and len(chain) < MAX_DEPTH:
        chain.append(parents[chain[-1]])
    children: list[Span] = []
    for span_id in reversed(chain):
        children, _ = tools.search_traces(span_id)
        if not children:
            return
    # Look one or two levels under the suspect too: what it was waiting for, if anything.
    for _ in range(EXTRA_DEPTH):
        if not children:
            return
        longest = max(children, key=lambda s: s.duration)
        children, _ = tools.search_traces(longest.span_id)
