"""The incident's log shifts made for all services at once and the pods' first lines found
without a sort give what the per-service and sorting code gave (kept here as the references)
on generated inputs: ties of ``z``, services new to the window or silent, weights and NaN
weights, few and many templates a service."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest

from thinkfl_operator.engines.heuristic.traffic import MAX_WEIGHT, MIN_WEIGHT
from thinkfl_operator.evidence.logshift import (
    KEPT_TEMPLATES,
    MIN_SHOWN_Z,
    SILENT_MIN_EXPECTED,
    ServiceLogs,
    TemplateShift,
    _first_rows,
    _pods,
    _service_shifts,
)
from thinkfl_operator.telemetry.spans import codes_of


def _old_service_shift(service: str, templates_: np.ndarray, levels_: np.ndarray, w: np.ndarray, h: np.ndarray,
                       w_min: float, h_min: float, weights: np.ndarray | None = None) -> ServiceLogs:
    """One service's shift, as it was made service by service."""
    n_w, n_h = float(w.sum()), float(h.sum())
    result = ServiceLogs(service, 0.0, int(n_w), int(n_h))
    if n_h == 0:
        return result
    if n_w == 0:
        silent_expected = n_h / h_min * w_min
        if silent_expected >= SILENT_MIN_EXPECTED:
            result.score, result.silent = silent_expected / math.sqrt(silent_expected + 1.0), True
        return result
    share = (h + 0.5) / (n_h + 0.5 * len(h))
    if weights is not None:
        share = share * weights / float(np.sum(share * weights))
    expected = n_w * share
    z = (w - expected) / np.sqrt(expected * (1.0 - share) + 1.0)
    order = np.argsort(-np.abs(z))
    result.score = float(abs(z[order[0]]))
    for i in order[:KEPT_TEMPLATES]:
        if abs(z[i]) < MIN_SHOWN_Z:
            break
        result.shifts.append(TemplateShift(service, str(templates_[i]), str(levels_[i]),
                                           h[i] / h_min, w[i] / w_min, float(z[i])))
    return result


def _same(a: ServiceLogs, b: ServiceLogs) -> None:
    assert repr(a) == repr(b)
    assert type(a.score) is type(b.score)
    for x, y in zip(a.shifts, b.shifts, strict=True):
        assert (type(x.before_per_min), type(x.during_per_min), type(x.z)) == (
            type(y.before_per_min), type(y.during_per_min), type(y.z))


@pytest.mark.parametrize("seed", range(40))
def test_service_shifts_are_each_service_alone(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, rng.choice([4, 40, 300]), size=rng.integers(1, 30))
    rows = int(sizes.sum())
    pattern = rng.choice(["few", "ties", "zeros", "big"])
    if pattern == "ties":  # equal counts: equal z
        w = rng.choice([0, 3, 7], size=rows).astype("float64")
        h = rng.choice([0, 5, 40], size=rows).astype("float64")
    else:
        scale = {"few": 5, "zeros": 2, "big": 5000}[pattern]
        w = rng.poisson(scale, size=rows).astype("float64")
        h = rng.poisson(scale * 10, size=rows).astype("float64")
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    for k in range(len(sizes)):  # silent and new services
        if rng.random() < 0.15:
            w[starts[k]:starts[k] + sizes[k]] = 0
        elif rng.random() < 0.1:
            h[starts[k]:starts[k] + sizes[k]] = 0
    runs = [(f"s{k:03d}", (int(lo), int(lo + n))) for k, (lo, n) in enumerate(zip(starts, sizes, strict=True))]
    templates_ = np.array([f"t{i}" for i in range(rows)], dtype=object)
    levels_ = np.array([random.Random(i).choice(["ERROR", "INFO", ""]) for i in range(rows)], dtype=object)
    w_min, h_min = float(rng.choice([1.0, 2.5, 7.0])), float(rng.choice([20.0, 29.5, 3.0]))
    for weights in (None, rng.choice([MIN_WEIGHT, 0.3, 1.0, 1.0, 2.5, MAX_WEIGHT], size=rows),
                    np.where(rng.random(rows) < 0.05, np.nan, 1.0)):
        new = _service_shifts(runs, templates_, levels_, w, h, w_min, h_min, weights)
        assert len(new) == len(runs)
        for found, (service, (lo, hi)) in zip(new, runs, strict=True):
            old = _old_service_shift(service, templates_[lo:hi], levels_[lo:hi], w[lo:hi], h[lo:hi], w_min, h_min,
                                     None if weights is None else weights[lo:hi])
            _same(found, old)


def test_first_rows_are_numpys_unique() -> None:
    rng = np.random.default_rng(3)
    for size in (1, 2, 5, 60, 1000):
        for n in (0, 1, 7, 5000):
            codes = rng.integers(0, size, size=n).astype("int64")
            present, first = _first_rows(codes, size)
            values, index = np.unique(codes, return_index=True)
            assert present.tolist() == values.tolist() and first.tolist() == index.tolist()


def _old_pods(lines: pd.DataFrame) -> dict[str, str]:
    """``_pods`` as it was: a sort of every line's pod code, the services taken by pandas."""
    codes, uniques = codes_of(lines["pod"])
    first = np.unique(codes, return_index=True)[1]
    services = lines["service"].iloc[first].to_numpy()
    return {str(uniques[c]): str(s) for c, s in zip(codes[first], services, strict=True) if uniques[c]}


@pytest.mark.parametrize("seed", range(12))
def test_pods_are_the_first_lines_services(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.choice([1, 5, 300, 5000]))
    pods = rng.choice(["p-a-1", "p-b-2", "", "p-c-3", "p-a-2"], size=n)
    services = np.array([p.split("-")[1] if p else "?" for p in pods], dtype=object)
    services[rng.random(n) < 0.05] = "other"  # a pod's lines need not share a service
    lines = pd.DataFrame({"pod": pods, "service": services})
    if seed % 2:
        lines = lines.astype("category")
    if seed % 3 == 0:  # missing values
        lines.loc[rng.random(n) < 0.1, "service"] = None
        lines.loc[rng.random(n) < 0.1, "pod"] = None
    lines = lines.iloc[int(rng.integers(0, max(n // 3, 1))):]  # a period of the cached lines
    assert list(_pods(lines).items()) == list(_old_pods(lines).items())
