"""One trace, no baseline: where did the trace's time go?

When there is nothing normal to compare with (a single exported trace, a brand-new service),
each pod is scored by the share of the root span's duration it accounts for: its own time, and
the waits on calls it made (the client side sees the wait) or served (the callee's network may
be the cause, so it gets half of that share).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from thinkfl_operator.engines.heuristic.scoring import PodEvidence, score_pods
from thinkfl_operator.engines.heuristic.signals import Shift

#: Share of a call's wait credited to the callee when there is no baseline to tell who is slow.
CALLEE_SHARE = 0.5


def trace_evidence(trace: pd.DataFrame) -> dict[str, PodEvidence]:
    """Pod → evidence from one measured trace (own time and call waits as shares of the root)."""
    if trace.empty:
        return {}
    total = float(trace["duration_us"].max()) or 1.0
    shifts: list[Shift] = []
    own = trace.groupby(["pod", "service"], observed=True)["self_us"].sum()
    for (pod, service), value in own.items():
        shifts.append(_share("share", str(pod), str(service), "own time in this trace", float(value), total))
    waits = trace.dropna(subset=["gap_us"])
    rows = trace.set_index(trace.index)
    for _, span in waits.iterrows():
        parent = int(span["parent_row"])
        if parent not in rows.index:
            continue
        caller = rows.loc[parent]
        gap = float(span["gap_us"])
        shifts.append(_share("share", str(caller["pod"]), str(caller["service"]),
                             f"waits on {span['operation']}", gap, total))
        shifts.append(_share("share", str(span["pod"]), str(span["service"]),
                             f"slow to answer {span['operation']}", CALLEE_SHARE * gap, total))
    return score_pods([s for s in shifts if s.z > 0])


def _share(kind: str, pod: str, service: str, what: str, value: float, total: float) -> Shift:
    share = max(value, 0.0) / total
    return Shift(kind, pod, service, what, "", 0.0, value, float(np.round(100 * share, 3)), 1)
