"""Per-span measurements and their shift between a normal baseline and the incident window.

Each span yields up to three measurements, each owned by the pod that most plausibly caused it:

* ``self``: the span's own time (duration minus its children's), owned by the span's pod. CPU
  starvation and slow local work (databases included) show here.
* ``net``: the gap between a client span and the server span it called in another service
  (client duration minus server duration), owned by the callee: a delay on the callee's network
  path stretches exactly this gap on every call into it, while its own spans look normal.
* ``dur``: the span's total duration, used for spans that end early (``short``): a span that
  suddenly takes a fraction of its usual time while its children did not shrink the same way
  returned or failed before doing its work.

and two ratios per (service, operation): ``error`` (share of spans with an error status) and
``fanout`` (children per span: calls that stop happening).

For every key (kind, pod, operation context) the baseline median and a robust scale
(1.4826·MAD, floored) give a shift score ``z = (window median − baseline median) / scale``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Status values that mean success in the sources we read.
OK_STATUS = frozenset({"", "0", "200", "ok", "unset", "status_code_ok", "status_code_unset", "false"})
#: Smallest scale of a time shift (µs): shifts below ~0.5 ms are noise in every system we saw.
SCALE_FLOOR_US = 500.0
#: Relative scale floor: a shift must be a noticeable fraction of the usual value.
SCALE_FLOOR_REL = 0.10
#: A value must fall by at least this share to count as "ends early" or "stops calling".
MIN_DROP = 0.3
MIN_WINDOW = 3
MIN_BASELINE = 5


@dataclass(frozen=True, slots=True)
class Shift:
    """One key's change between baseline and window."""

    kind: str  # self | net | short | error | fanout
    pod: str
    service: str
    operation: str
    caller: str  # for net: the calling service
    baseline: float
    window: float
    z: float
    n_window: int


def span_measurements(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``self_us``, ``gap_us`` (net, owned by the callee), ``parent_service`` and child counts."""
    frame = frame.reset_index(drop=True)
    key = frame["trace_id"] + "\x1f" + frame["span_id"]
    parent_key = frame["trace_id"] + "\x1f" + frame["parent_id"]
    position = pd.Series(np.arange(len(frame)), index=key)
    position = position[~position.index.duplicated()]
    parent_row = parent_key.map(position)
    has_parent = parent_row.notna().to_numpy()
    prow = parent_row.fillna(-1).astype("int64").to_numpy()

    duration = frame["duration_us"].to_numpy(dtype="float64")
    service = frame["service"].to_numpy(dtype=object)
    parent_service = np.where(has_parent, service[np.clip(prow, 0, None)], "")
    parent_duration = np.where(has_parent, duration[np.clip(prow, 0, None)], np.nan)
    cross = has_parent & (parent_service != service)

    child_sum = np.zeros(len(frame))
    child_count = np.zeros(len(frame))
    cross_children = np.zeros(len(frame))
    np.add.at(child_sum, prow[has_parent], duration[has_parent])
    np.add.at(child_count, prow[has_parent], 1)
    np.add.at(cross_children, prow[cross], 1)

    out = frame.assign(
        parent_service=parent_service,
        self_us=np.clip(duration - child_sum, 0, None),
        gap_us=np.where(cross, parent_duration - duration, np.nan),
        parent_children=np.where(has_parent, child_count[np.clip(prow, 0, None)], 0),
        child_count=child_count,
        cross_children=cross_children,
        is_error=~frame["status"].str.lower().isin(OK_STATUS).to_numpy(),
    )
    # A client span whose only work is calling another service: its "self" is the network gap,
    # which belongs to the callee, so it is not counted as the caller's own time.
    out.loc[out["cross_children"] > 0, "self_us"] = np.nan
    # A gap is only the network when the client span made exactly this one call.
    out.loc[out["parent_children"] != 1, "gap_us"] = np.nan
    return out


def _shifts(
    base: pd.DataFrame, win: pd.DataFrame, value: str, keys: list[str], kind: str, larger_is_worse: bool = True
) -> list[Shift]:
    b = base[keys + [value]].dropna(subset=[value])
    w = win[keys + [value]].dropna(subset=[value])
    if b.empty or w.empty:
        return []
    bg = b.groupby(keys, sort=False)[value]
    stats = pd.DataFrame({"b_med": bg.median(), "b_n": bg.size()})
    b = b.join(stats["b_med"], on=keys)
    b["dev"] = (b[value] - b["b_med"]).abs()
    stats["b_mad"] = b.groupby(keys, sort=False)["dev"].median()
    wg = w.groupby(keys, sort=False)[value]
    stats = stats.join(pd.DataFrame({"w_med": wg.median(), "w_n": wg.size()}), how="inner")
    stats = stats[(stats["w_n"] >= MIN_WINDOW) & (stats["b_n"] >= MIN_BASELINE)]
    if stats.empty:
        return []
    scale = np.maximum.reduce([
        1.4826 * stats["b_mad"].to_numpy(),
        SCALE_FLOOR_REL * stats["b_med"].abs().to_numpy(),
        np.full(len(stats), SCALE_FLOOR_US),
    ])
    delta = stats["w_med"].to_numpy() - stats["b_med"].to_numpy()
    z = (delta if larger_is_worse else -delta) / scale
    out = []
    for (idx, row), zi in zip(stats.iterrows(), z, strict=True):
        parts = dict(zip(keys, idx if isinstance(idx, tuple) else (idx,), strict=True))
        out.append(
            Shift(
                kind=kind,
                pod=str(parts.get("pod", "")),
                service=str(parts.get("service", "")),
                operation=str(parts.get("operation", "")),
                caller=str(parts.get("parent_service", "")),
                baseline=float(row["b_med"]),
                window=float(row["w_med"]),
                z=float(zi),
                n_window=int(row["w_n"]),
            )
        )
    return out


def _ratio_shifts(
    base: pd.DataFrame, win: pd.DataFrame, value: str, kind: str, rise: bool, median: bool = False
) -> list[Shift]:
    """Relative shifts of a per-span value per (pod, operation): a rise in a share (errors), or
    a drop to a fraction of the usual (children per span, duration); z = 10 × the change."""
    keys = ["pod", "service", "operation"]
    how = "median" if median else "mean"
    b = base.groupby(keys, sort=False)[value].agg([how, "size"]).rename(columns={how: "mean"})
    w = win.groupby(keys, sort=False)[value].agg([how, "size"]).rename(columns={how: "mean"})
    joined = b.join(w, lsuffix="_b", rsuffix="_w", how="inner")
    joined = joined[(joined["size_w"] >= MIN_WINDOW) & (joined["size_b"] >= MIN_BASELINE)]
    out = []
    for idx, row in joined.iterrows():
        mb, mw = float(row["mean_b"]), float(row["mean_w"])
        change = (mw - mb) if rise else (mb - mw) / max(mb, 1e-9)
        if change <= 0 or (not rise and change < MIN_DROP):
            continue
        pod, service, operation = idx
        out.append(Shift(kind, str(pod), str(service), str(operation), "", mb, mw,
                         float(change * 10.0), int(row["size_w"])))
    return out


def compute_shifts(base: pd.DataFrame, win: pd.DataFrame) -> list[Shift]:
    """Every key's shift between the measured baseline and window frames."""
    shifts: list[Shift] = []
    shifts += _shifts(base, win, "self_us", ["pod", "service", "operation"], "self")
    shifts += _shifts(base, win, "gap_us", ["pod", "service", "parent_service", "operation"], "net")
    shifts += _ratio_shifts(base, win, "duration_us", "short", rise=False, median=True)
    if win["is_error"].any():
        shifts += _ratio_shifts(base, win, "is_error", "error", rise=True)
    fanout = _ratio_shifts(base, win, "child_count", "fanout", rise=False)
    shifts += fanout
    shifts += _truncations(base, win, fanout)
    return shifts


def _truncations(base: pd.DataFrame, win: pd.DataFrame, fanout: list[Shift]) -> list[Shift]:
    """Who was called last before a caller gave up early: votes for the callee of the last call.

    For every operation whose calls per span dropped, each of its window spans that made fewer
    calls than usual votes for the pod that served its last-ending call (the server span under
    the client span, when there is one). A pod that fails fast is where its callers stop.
    """
    if not fanout:
        return []
    usual = {(f.pod, f.operation): f.baseline for f in fanout}
    spans = win[["trace_id", "span_id", "parent_id", "pod", "service", "operation", "child_count",
                 "start_us", "duration_us"]]
    keyed = list(zip(spans["pod"], spans["operation"], strict=True))
    short_mask = np.array([k in usual and c < usual[k] for k, c in zip(keyed, spans["child_count"], strict=True)])
    cut = spans[short_mask]
    if cut.empty:
        return []
    ids = cut["trace_id"] + "\x1f" + cut["span_id"]
    children = spans.assign(pkey=spans["trace_id"] + "\x1f" + spans["parent_id"],
                            end_us=spans["start_us"] + spans["duration_us"])
    last = children[children["pkey"].isin(set(ids))].sort_values("end_us").groupby("pkey").tail(1)
    # Follow a client span to the server span it called, when that is in another pod.
    sub = children.assign(ckey=children["trace_id"] + "\x1f" + children["parent_id"])
    served = sub.drop_duplicates("ckey").set_index("ckey")[["pod", "service"]]
    last_key = last["trace_id"] + "\x1f" + last["span_id"]
    callee = served.reindex(last_key.to_numpy())
    pods = np.where(callee["pod"].notna(), callee["pod"], last["pod"].to_numpy())
    svcs = np.where(callee["service"].notna(), callee["service"], last["service"].to_numpy())
    votes = pd.Series(list(zip(pods, svcs, strict=True))).value_counts()
    total = float(len(cut))
    return [Shift("truncated", str(p), str(s), "last call before callers stopped", "", 0.0,
                  n / total, 10.0 * n / total, int(n)) for (p, s), n in votes.items()]
