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
    """Every KPI series that leaves mean ± sigma·std around ``t_s``, most deviant first (each
    pod's, most deviant first, joined in pod order then sorted: both sorts keep ties in order)."""
    by_pod = fluctuations_by_pod(frames, t_s, nodes, baseline_s, current_s, sigma)
    found = [f for each in by_pod.values() for f in each]
    found.sort(key=lambda f: f.deviation, reverse=True)
    return found


def fluctuations_by_pod(
    frames: Mapping[str, KpiBlock | pd.DataFrame],
    t_s: float,
    nodes: dict[str, str],
    baseline_s: float = 1200.0,
    current_s: float = 600.0,
    sigma: float = 3.0,
) -> dict[str, list[Fluctuation]]:
    """``fluctuations`` of each pod of ``frames`` on its own (every pod a key), computed for
    all of them at once."""
    by_pod = _flagged(frames, t_s, nodes, baseline_s, current_s, sigma)
    for found in by_pod.values():
        found.sort(key=lambda f: f.deviation, reverse=True)
    return by_pod


def _flagged(
    frames: Mapping[str, KpiBlock | pd.DataFrame],
    t_s: float,
    nodes: dict[str, str],
    baseline_s: float,
    current_s: float,
    sigma: float,
) -> dict[str, list[Fluctuation]]:
    """Each pod's fluctuating series in its KPIs' order (unsorted). Pods with the same KPIs
    (two or more) are computed together, their samples stacked in rows padded with -0.0 (a sum
    plus -0.0 is the sum, bit for bit): numpy sums a column of a C-ordered block row after row,
    as it does each pod's own block, so the numbers are the per-pod ones, bit for bit."""
    blocks = {pod: as_block(data) for pod, data in frames.items()}
    by_pod: dict[str, list[Fluctuation]] = {pod: [] for pod in blocks}
    groups: dict[tuple[str, ...], list[str]] = {}
    for pod, block in blocks.items():
        groups.setdefault(block.kpis, []).append(pod)
    for kpis, pods in groups.items():
        if len(kpis) < 2:  # a one-column block is summed pairwise: each pod on its own
            for pod in pods:
                by_pod[pod] = _flagged_one(pod, blocks[pod], t_s, nodes, baseline_s, current_s, sigma)
            continue
        _flagged_together(by_pod, pods, [blocks[p] for p in pods], kpis, t_s, nodes,
                          baseline_s, current_s, sigma)
    return by_pod


def _flagged_one(
    pod: str, block: KpiBlock, t_s: float, nodes: dict[str, str],
    baseline_s: float, current_s: float, sigma: float,
) -> list[Fluctuation]:
    ts = block.ts
    base_mask = (ts >= t_s - baseline_s) & (ts <= t_s + baseline_s)
    cur_mask = (ts >= t_s - current_s) & (ts <= t_s + current_s)
    if not cur_mask.any():
        return []
    base, cur = block.values[base_mask], block.values[cur_mask]
    mean, std = _nan_mean_std(base)
    with np.errstate(invalid="ignore"):
        outside = np.abs(cur - mean) > sigma * std
    flagged = np.flatnonzero(np.isfinite(std) & (std > 0) & outside.any(axis=0))
    if len(flagged) == 0:
        return []
    cur_mean, cur_std = _nan_mean_std(cur[:, flagged])
    return [_fluctuation(pod, block.kpis[j], nodes, mean[j], std[j], cur_mean[i], cur_std[i])
            for i, j in enumerate(flagged)]


def _flagged_together(
    by_pod: dict[str, list[Fluctuation]], pods: list[str], blocks: list[KpiBlock],
    kpis: tuple[str, ...], t_s: float, nodes: dict[str, str],
    baseline_s: float, current_s: float, sigma: float,
) -> None:
    ts = np.concatenate([b.ts for b in blocks])
    values = np.concatenate([b.values for b in blocks])
    owner = np.repeat(np.arange(len(blocks)), [len(b.ts) for b in blocks])
    base, base_rows = stack_rows(values, owner, len(blocks),
                             (ts >= t_s - baseline_s) & (ts <= t_s + baseline_s))
    cur, cur_rows = stack_rows(values, owner, len(blocks),
                           (ts >= t_s - current_s) & (ts <= t_s + current_s))
    mean, std = _nan_mean_std_stacked(base, base_rows)
    with np.errstate(invalid="ignore"):
        outside = np.abs(cur - mean[:, None, :]) > sigma * std[:, None, :]
    flags = np.isfinite(std) & (std > 0) & outside.any(axis=1) & (cur_rows > 0)[:, None]
    if not flags.any():
        return
    cur_mean, cur_std = _nan_mean_std_stacked(cur, cur_rows)
    which, column = np.nonzero(flags)  # pod by pod, each in its KPIs' order
    base_mean, base_std = mean[which, column], std[which, column]
    now_mean, now_std = cur_mean[which, column], cur_std[which, column]
    singles = np.flatnonzero(np.bincount(which, minlength=len(blocks)) == 1)
    if len(singles):
        _single_columns(cur, cur_rows, singles, np.searchsorted(which, singles), column, now_mean, now_std)
    found = zip(which.tolist(), column.tolist(), base_mean.tolist(), base_std.tolist(),
                now_mean.tolist(), now_std.tolist(), strict=True)
    last, listed, pod, prefix = -1, list[Fluctuation](), "", ""
    for p, j, b_mean, b_std, c_mean, c_std in found:
        if p != last:  # a pod's first: its list, and its key's node and pod part
            last, listed, pod = p, [], pods[p]
            prefix = metric_key(nodes.get(pod, ""), pod, "")
            by_pod[pod] = listed
        kpi = kpis[j]
        key = f"{prefix}.{kpi}" if prefix and kpi else prefix or kpi  # metric_key(node, pod, kpi)
        listed.append(Fluctuation(key, pod, kpi, b_mean, b_std, c_mean, c_std))


def _single_columns(cur: np.ndarray, cur_rows: np.ndarray, pods: np.ndarray, at: np.ndarray,
                    column: np.ndarray, now_mean: np.ndarray, now_std: np.ndarray) -> None:
    """The current mean and std (into ``now_mean``, ``now_std`` at ``at``) of the pods with
    one flagged column (``pods``; their entries ``at``): a one-column block is summed
    pairwise, as the pod's own was. The pods with as many current rows at once, each pod's
    column a contiguous row of a (pods, rows) array reduced along it: the same pairwise sums
    as ``_nan_mean_std`` of the one column, one numpy call each for them all."""
    rows = cur_rows[pods]
    for n in np.unique(rows).tolist():
        same = rows == n
        j = at[same]
        series = cur[pods[same][:, None], np.arange(n)[None, :], column[j][:, None]]
        now_mean[j], now_std[j] = _nan_mean_std(series, axis=1)


def stack_rows(values: np.ndarray, owner: np.ndarray, count: int,
               keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kept rows of ``values`` (samples, or samples × columns) of each of ``count`` owners
    in order, stacked as (owner, row[, column]) and padded with NaN, and each owner's number
    of rows: many small series computed in one numpy call each."""
    rows = np.flatnonzero(keep)
    whose = owner[rows]
    per_owner = np.bincount(whose, minlength=count)
    width = int(per_owner.max(initial=0))
    if count and values.dtype == np.float64 and (per_owner == width).all() \
            and bool(np.all(whose[1:] >= whose[:-1])):
        # owners in order, each with as many rows (series sampled alike): the kept rows as
        # they are, without padding (a fresh array: the same numbers in the same places)
        return values[rows].reshape(count, width, *values.shape[1:]), per_owner
    first = np.cumsum(per_owner) - per_owner
    stacked = np.full((count, int(per_owner.max(initial=0)), *values.shape[1:]), np.nan)
    stacked[whose, np.arange(len(rows)) - first[whose]] = values[rows]
    return stacked, per_owner


def _fluctuation(pod: str, kpi: str, nodes: dict[str, str], regular_mean: float,
                 regular_std: float, current_mean: float, current_std: float) -> Fluctuation:
    return Fluctuation(
        key=metric_key(nodes.get(pod, ""), pod, kpi),
        pod=pod,
        kpi=kpi,
        regular_mean=float(regular_mean),
        regular_std_dev=float(regular_std),
        current_mean=float(current_mean),
        current_std_dev=float(current_std),
    )


def _nan_mean_std_stacked(values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_nan_mean_std`` of each block of ``values`` (block, row, column) whose first
    ``rows[block]`` rows are samples and the rest padding: the same operations, the padding
    -0.0 in both sums (a sum plus -0.0 is the sum) and out of the counts."""
    mask = np.isnan(values)
    pad = np.arange(values.shape[1])[None, :] >= rows[:, None]
    arr = values.copy()
    np.copyto(arr, 0.0, where=mask)
    arr[pad] = -0.0
    count = np.asarray(np.sum(~mask, axis=1, dtype=np.intp, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.divide(np.sum(arr, axis=1, keepdims=True), count)
        np.subtract(arr, mean, out=arr)
        np.copyto(arr, 0.0, where=mask)
        np.multiply(arr, arr, out=arr)
        arr[pad] = -0.0
        dof = count[:, 0]
        var = np.divide(np.sum(arr, axis=1), dof)
    var[dof <= 0] = np.nan
    return mean[:, 0], np.sqrt(var)


def _nan_mean_std(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``np.nanmean`` and ``np.nanstd`` (ddof 0) of each column (``axis`` 1: of each row of a
    C-ordered (series, samples) array, a contiguous run summed pairwise as a column is), NaN
    for one without a number: the same operations numpy's nan-functions run (so the same bits),
    done once for both and without their per-call checks, which cost more than the arithmetic
    on a pod's few dozen samples."""
    mask = np.isnan(values)
    arr = values.copy()
    np.copyto(arr, 0.0, where=mask)
    count = np.asarray(np.sum(~mask, axis=axis, dtype=np.intp, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.divide(np.sum(arr, axis=axis, keepdims=True), count)
        np.subtract(arr, mean, out=arr)
        np.copyto(arr, 0.0, where=mask)
        np.multiply(arr, arr, out=arr)
        dof = count.squeeze(axis)
        var = np.divide(np.sum(arr, axis=axis), dof)
    var[dof <= 0] = np.nan
    return mean.squeeze(axis), np.sqrt(var)


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
