"""The traffic weights read by key number, and the calls of a period counted from sorted
times, give what the per-owner code by name and the comparison of every time gave (kept here
as the references) on generated spans: unsorted and missing times, owners whose operation has
no calls, a missing service named like an empty one, empty and reversed periods. The
templates' owners found with services compared by number and keys counted by hashing give
what string comparison and ``np.unique`` gave (missing services, text and categorical
columns, ties of counts)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from thinkfl_operator.engines.heuristic.traffic import (
    MAX_WEIGHT,
    MIN_WEIGHT,
    OperationCalls,
    TemplateTraffic,
    _first_spans,
    _group_codes,
    _strings,
    _values,
    template_operations,
)


def _old_ratios(calls: OperationCalls, window: tuple[float, float],
                history: tuple[float, float]) -> dict[tuple[str, str], float]:
    """``OperationCalls.ratios`` as it was: every time compared with each period's bounds."""
    first = float(calls.t.min()) if len(calls.t) else history[0]
    h_lo = max(history[0], first)
    w_sec, h_sec = window[1] - window[0], history[1] - h_lo
    if w_sec <= 0 or h_sec <= 0:
        return {}
    in_w = (calls.t >= window[0]) & (calls.t < window[1])
    in_h = (calls.t >= h_lo) & (calls.t < history[1])
    groups = len(calls.keys)
    w = np.bincount(calls.codes[in_w], minlength=groups).astype("float64")
    h = np.bincount(calls.codes[in_h], minlength=groups).astype("float64")
    seen = np.flatnonzero((w > 0) | (h > 0))
    rates = ((w[seen] + 1.0) / w_sec) / ((h[seen] + 1.0) / h_sec)
    return {calls.keys[int(i)]: float(r) for i, r in zip(seen, rates, strict=True)}


def _old_traffic(calls: OperationCalls, owners: pd.DataFrame, window: tuple[float, float],
                 history: tuple[float, float]) -> dict[tuple[str, str], float]:
    """``template_traffic`` as it was: owner by owner, by name."""
    if len(calls.t) == 0 or owners.empty:
        return {}
    ratio = _old_ratios(calls, window, history)
    out: dict[tuple[str, str], float] = {}
    for service, template, operation in zip(owners["service"], owners["template"], owners["operation"],
                                            strict=True):
        value = ratio.get((str(service), str(operation)))
        if value is not None:
            out[(str(service), str(template))] = min(max(value, MIN_WEIGHT), MAX_WEIGHT)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_traffic_by_key_number_is_by_name(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.choice([0, 1, 50, 3000]))
    t = rng.uniform(0, 3600, size=n)
    if seed % 2:
        t.sort()
    if seed % 3 == 0 and n:
        t[rng.random(n) < 0.05] = np.nan
    services = rng.choice(["a", "b", "c"], size=n)
    operations = rng.choice(["get", "put", "list", ""], size=n)
    spans = pd.DataFrame({"start_us": t * 1e6, "service": services, "operation": operations})
    if seed % 4 == 1:  # a missing service: "" by codes_of, the same name as an empty one
        spans["service"] = pd.Categorical(np.where(rng.random(n) < 0.1, None, services), categories=["a", "", "b", "c"])
    owners = pd.DataFrame({"service": ["a", "b", "c", "a", "d", "", "b"],
                           "template": ["t1", "t2", "t3", "t4", "t5", "t6", "t2"],
                           "operation": ["get", "put", "list", "nope", "get", "get", ""]})
    if seed % 5 == 2:
        owners = owners.astype("category")
    calls = OperationCalls(spans)
    traffic = TemplateTraffic(calls, owners)
    for window, history in (((1800, 1920), (0, 1740)), ((3000, 3100), (1000, 2900)), ((5, 5), (0, 1)),
                            ((600, 700), (-500, 540)), ((100, 200), (300, 250)), ((0, 3600), (0, 3600))):
        assert calls.ratios(window, history) == _old_ratios(calls, window, history)
        new, old = traffic.between(window, history), _old_traffic(calls, owners, window, history)
        assert list(new.items()) == list(old.items())
        assert all(type(v) is float for v in new.values())


def _old_template_operations(spans: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """``template_operations`` as it was: services compared as Python strings, keys counted
    by ``np.unique``."""
    empty = pd.DataFrame({"service": [], "template": [], "operation": []})
    if spans.empty or lines.empty or "template" not in lines or not (lines["span_id"] != "").any():
        return empty
    line_rows, span_rows = _first_spans(_strings(lines["span_id"]), _strings(spans["span_id"]))
    service, services = _group_codes(lines["service"])
    template, templates = _group_codes(lines["template"])
    operation, operations = _group_codes(spans["operation"])
    span_service, span_services = _group_codes(spans["service"])
    service, template = service[line_rows], template[line_rows]
    operation, span_service = operation[span_rows], span_service[span_rows]
    same = (np.asarray(services.astype(str), dtype=object)[service]
            == np.asarray(span_services.astype(str), dtype=object)[span_service])
    same &= (service >= 0) & (template >= 0) & (operation >= 0)
    if not same.any():
        return empty
    service, template, operation = service[same], template[same], operation[same]
    n_t, n_o = len(templates) + 1, len(operations) + 1
    keys, n = np.unique((service * n_t + template) * n_o + operation, return_counts=True)
    order = np.argsort(-n, kind="stable")
    pair = keys[order] // n_o
    first = order[np.sort(np.unique(pair, return_index=True)[1])]
    pair, op = keys[first] // n_o, keys[first] % n_o
    return pd.DataFrame({"service": _values(services, pair // n_t), "template": _values(templates, pair % n_t),
                         "operation": _values(operations, op)})


@pytest.mark.parametrize("seed", range(16))
def test_owners_by_numbers_are_by_names(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_spans, n_lines = int(rng.choice([1, 40, 2000])), int(rng.choice([1, 50, 3000]))
    ids = [f"{i:016x}" for i in range(max(n_spans // 2, 1))]
    spans = pd.DataFrame({"span_id": rng.choice(ids, size=n_spans),
                          "service": rng.choice(["a", "b", "c", "z"], size=n_spans),
                          "operation": rng.choice(["get", "put", "list"], size=n_spans)})
    lines = pd.DataFrame({"span_id": rng.choice([*ids[:20], "", "nope"], size=n_lines),
                          "service": rng.choice(["a", "b", "c", "d"], size=n_lines),
                          "template": rng.choice(["t1", "t2", "t3", "t4"], size=n_lines)})
    if seed % 2:  # categoricals, some missing (code -1)
        spans["service"] = pd.Categorical(np.where(rng.random(n_spans) < 0.1, None, spans["service"]))
        lines["service"] = pd.Categorical(np.where(rng.random(n_lines) < 0.1, None, lines["service"]))
        lines["template"] = pd.Categorical(lines["template"])
    if seed % 3 == 0:
        spans["operation"] = pd.Categorical(np.where(rng.random(n_spans) < 0.1, None, spans["operation"]))
    new, old = template_operations(spans, lines), _old_template_operations(spans, lines)
    pd.testing.assert_frame_equal(new, old)
