"""search_fluctuating_metrics: the authors' 3-sigma rule over KPI series around a time.

For every KPI series of the service's pods (and of their nodes): the baseline is the samples in
[t − 20 min, t + 20 min]; the series fluctuates when any sample in [t − 10 min, t + 10 min] lies
outside baseline mean ± 3·std. Series with a zero (or undefined) baseline std are skipped.
Standard deviations are population ones (ddof = 0), as numpy computes them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from thinkfl_operator.core.models import Fluctuation
from thinkfl_operator.evidence.formatting import metrics_json
from thinkfl_operator.telemetry.store import KpiBlock, as_block


def normalize_timestamp(value: object) -> float:
    """Epoch seconds from a timestamp in s or ms (the reference keeps the first 10 digits)."""
    text = str(value).strip()
    digits = text.split(".")[0].lstrip("+")
    if not digits.isdigit():
        raise ValueError(f"timestamp {text!r} is not an epoch number")
    return float(digits[:10]) if len(digits) > 10 else float(text)


def metric_key(node: str, pod: str, kpi: str) -> str:
    return ".".join(part for part in (node, pod, kpi) if part)


def fluctuations(
    frames: Mapping[str, KpiBlock | pd.DataFrame],
    t_s: float,
    nodes: dict[str, str],
    baseline_s: float = 1200.0,
    current_s: float = 600.0,
    sigma: float = 3.0,
) -> list[Fluctuation]:
    """Every KPI series that leaves mean ± sigma·std around ``t_s``, most deviant first."""
    found: list[Fluctuation] = []
    for pod, data in frames.items():
        block = as_block(data)
        ts = block.ts
        base_mask = (ts >= t_s - baseline_s) & (ts <= t_s + baseline_s)
        cur_mask = (ts >= t_s - current_s) & (ts <= t_s + current_s)
        if not cur_mask.any():
            continue
        base, cur = block.values[base_mask], block.values[cur_mask]
        mean, std = _nan_mean_std(base)
        with np.errstate(invalid="ignore"):
            outside = np.abs(cur - mean) > sigma * std
        flagged = np.flatnonzero(np.isfinite(std) & (std > 0) & outside.any(axis=0))
        if len(flagged) == 0:
            continue
        cur_mean, cur_std = _nan_mean_std(cur[:, flagged])
        for i, j in enumerate(flagged):
            kpi = block.kpis[j]
            found.append(
                Fluctuation(
                    key=metric_key(nodes.get(pod, ""), pod, kpi),
                    pod=pod,
                    kpi=kpi,
                    regular_mean=float(mean[j]),
                    regular_std_dev=float(std[j]),
                    current_mean=float(cur_mean[i]),
                    current_std_dev=float(cur_std[i]),
                )
            )
    found.sort(key=lambda f: f.deviation, reverse=True)
    return found


def _nan_mean_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nanmean`` and ``np.nanstd`` (ddof 0) of each column, NaN for a column without a
    number: the same operations numpy's nan-functions run (so the same bits), done once for
    both and without their per-call checks, which cost more than the arithmetic on a pod's
    few dozen samples."""
    mask = np.isnan(values)
    arr = values.copy()
    np.copyto(arr, 0.0, where=mask)
    count = np.asarray(np.sum(~mask, axis=0, dtype=np.intp, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.divide(np.sum(arr, axis=0, keepdims=True), count)
        np.subtract(arr, mean, out=arr)
        np.copyto(arr, 0.0, where=mask)
        np.multiply(arr, arr, out=arr)
        dof = count[0]
        var = np.divide(np.sum(arr, axis=0), dof)
    var[dof <= 0] = np.nan
    return mean[0], np.sqrt(var)


def render(found: list[Fluctuation], max_chars: int) -> str:
    entries = {
        f.key: {
            "regular_mean": round(f.regular_mean, 2),
            "regular_std_dev": round(f.regular_std_dev, 2),
            "current_mean": round(f.current_mean, 2),
            "current_std_dev": round(f.current_std_dev, 2),
        }
        for f in found
    }
    return metrics_json(entries, max_chars)


def summarize(service: str, found: list[Fluctuation]) -> str:
    if not found:
        return f"no fluctuating metrics for {service}"
    top = ", ".join(f"{f.kpi} {f.regular_mean:.2f}→{f.current_mean:.2f}" for f in found[:3])
    return f"{len(found)} fluctuating metric(s) for {service}: {top}"
