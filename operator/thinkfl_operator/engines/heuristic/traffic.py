"""How much each log template's calls changed: the traffic a template's share is judged against.

A log line that carries a span ID belongs to a span, so each template belongs to an operation
(the one most of its lines' spans have). When a caller stops calling a service, that
service's lines of the operation fall with the calls: no fault of its own. When the calls
still arrive and a line vanishes, or an ERROR line appears, the service itself changed. So
each template's expected share in the window is weighted by how its operation's calls moved
(window rate over history rate, from the spans), and only what the traffic does not explain
is a log shift. Templates whose lines carry no span ID (or match no span) keep weight 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Weights are kept within these bounds (a few calls more or less is no reason to explode).
MIN_WEIGHT, MAX_WEIGHT = 0.05, 20.0


def template_operations(spans: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """(service, template) → the operation most of its lines' spans have (columns service,
    template, operation); empty when lines carry no span IDs or none matches a span."""
    empty = pd.DataFrame({"service": [], "template": [], "operation": []})
    if spans.empty or lines.empty or "template" not in lines or not (lines["span_id"] != "").any():
        return empty
    ops = spans[["span_id", "service", "operation"]].drop_duplicates("span_id")
    joined = lines[["service", "template", "span_id"]].merge(
        ops.rename(columns={"service": "span_service"}), on="span_id", how="inner")
    joined = joined[joined["service"].astype(str) == joined["span_service"].astype(str)]
    if joined.empty:
        return empty
    return (joined.groupby(["service", "template", "operation"], observed=True).size()
            .reset_index(name="n").sort_values("n", ascending=False, kind="stable")
            .drop_duplicates(["service", "template"])[["service", "template", "operation"]])


def template_traffic(spans: pd.DataFrame, owners: pd.DataFrame, window: tuple[float, float],
                     history: tuple[float, float]) -> dict[tuple[str, str], float]:
    """(service, template) → calls of its operation (``owners``: ``template_operations``) per
    second in ``window`` over ``history`` (the part of it the spans cover)."""
    if spans.empty or owners.empty:
        return {}
    ratio = _operation_ratios(spans, window, history)
    out: dict[tuple[str, str], float] = {}
    for service, template, operation in zip(owners["service"], owners["template"], owners["operation"],
                                            strict=True):
        value = ratio.get((str(service), str(operation)))
        if value is not None:
            out[(str(service), str(template))] = float(np.clip(value, MIN_WEIGHT, MAX_WEIGHT))
    return out


def _operation_ratios(spans: pd.DataFrame, window: tuple[float, float],
                      history: tuple[float, float]) -> dict[tuple[str, str], float]:
    t_all = spans["start_us"].to_numpy() / 1e6
    first = float(t_all.min()) if len(t_all) else history[0]
    h_lo = max(history[0], first)
    w_sec, h_sec = window[1] - window[0], history[1] - h_lo
    if w_sec <= 0 or h_sec <= 0:
        return {}
    period = spans[(t_all >= h_lo) & (t_all < window[1])]
    t = period["start_us"].to_numpy() / 1e6
    keys = period["service"].astype(str) + "\x00" + period["operation"].astype(str)
    in_w = keys[(t >= window[0]) & (t < window[1])].value_counts()
    in_h = keys[(t >= h_lo) & (t < history[1])].value_counts()
    both = in_h.index.union(in_w.index)
    w = in_w.reindex(both, fill_value=0).to_numpy(dtype="float64")
    h = in_h.reindex(both, fill_value=0).to_numpy(dtype="float64")
    rates = ((w + 1.0) / w_sec) / ((h + 1.0) / h_sec)
    out: dict[tuple[str, str], float] = {}
    for key, rate in zip(both, rates, strict=True):
        service, operation = str(key).split("\x00", 1)
        out[(service, operation)] = float(rate)
    return out
