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

from thinkfl_operator.telemetry.spans import codes_of

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


class OperationCalls:
    """The spans of one frame as (service, operation) codes and start times, coded once so each
    incident counts calls with ``bincount`` (an evaluation reuses one frame for a whole day)."""

    def __init__(self, spans: pd.DataFrame) -> None:
        self.t = spans["start_us"].to_numpy() / 1e6
        services, service_names = codes_of(spans["service"])
        operations, operation_names = codes_of(spans["operation"])
        pair = services * max(len(operation_names), 1) + operations
        codes, distinct = pd.factorize(pair)
        self.codes = np.asarray(codes, dtype="int64")
        self.keys = [(str(service_names[p // max(len(operation_names), 1)]),
                      str(operation_names[p % max(len(operation_names), 1)])) for p in distinct]

    def ratios(self, window: tuple[float, float], history: tuple[float, float]) -> dict[tuple[str, str], float]:
        """(service, operation) → calls per second in ``window`` over calls per second in the
        part of ``history`` the spans cover (one added to each count)."""
        first = float(self.t.min()) if len(self.t) else history[0]
        h_lo = max(history[0], first)
        w_sec, h_sec = window[1] - window[0], history[1] - h_lo
        if w_sec <= 0 or h_sec <= 0:
            return {}
        in_w = (self.t >= window[0]) & (self.t < window[1])
        in_h = (self.t >= h_lo) & (self.t < history[1])
        groups = len(self.keys)
        w = np.bincount(self.codes[in_w], minlength=groups).astype("float64")
        h = np.bincount(self.codes[in_h], minlength=groups).astype("float64")
        seen = np.flatnonzero((w > 0) | (h > 0))
        rates = ((w[seen] + 1.0) / w_sec) / ((h[seen] + 1.0) / h_sec)
        return {self.keys[int(i)]: float(r) for i, r in zip(seen, rates, strict=True)}


def template_traffic(calls: OperationCalls, owners: pd.DataFrame, window: tuple[float, float],
                     history: tuple[float, float]) -> dict[tuple[str, str], float]:
    """(service, template) → calls of its operation (``owners``: ``template_operations``) per
    second in ``window`` over ``history`` (the part of it the spans cover)."""
    if len(calls.t) == 0 or owners.empty:
        return {}
    ratio = calls.ratios(window, history)
    out: dict[tuple[str, str], float] = {}
    for service, template, operation in zip(owners["service"], owners["template"], owners["operation"],
                                            strict=True):
        value = ratio.get((str(service), str(operation)))
        if value is not None:
            out[(str(service), str(template))] = min(max(value, MIN_WEIGHT), MAX_WEIGHT)  # np.clip, per scalar
    return out

