"""The diagnostic path: walk the tools from a root span down to the suspect, as the model would."""

from __future__ import annotations

import pandas as pd

from thinkfl_operator.engines.heuristic.scoring import PodEvidence
from thinkfl_operator.evidence.toolbox import Toolbox

#: Deepest chain of search_traces calls per trace.
MAX_DEPTH = 12


def pick_traces(window: pd.DataFrame, suspect: PodEvidence | None, limit: int) -> list[str]:
    """Window traces that show the suspect's strongest anomaly, most extreme first."""
    if suspect is None or window.empty:
        return list(window["trace_id"].drop_duplicates()[:limit])
    best = suspect.best
    spans = window[window["pod"] == suspect.pod]
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


def walk_trace(tools: Toolbox, trace: pd.DataFrame, target_span: str) -> None:
    """search_traces from the root down the ancestors of ``target_span`` (and the target itself)."""
    parents = dict(zip(trace["span_id"], trace["parent_id"], strict=False))
    chain = [target_span]
    while chain[-1] in parents and parents[chain[-1]] in parents and len(chain) < MAX_DEPTH:
        chain.append(parents[chain[-1]])
    for span_id in reversed(chain):
        children, _ = tools.search_traces(span_id)
        if not children:
            break
