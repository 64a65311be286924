"""The cap on spans one diagnosis keeps (memory bounded whatever the backend returns)."""

from __future__ import annotations

import pandas as pd

from thinkfl_operator.telemetry.quality import DataQuality
from thinkfl_operator.telemetry.spans import cap_spans


def _frame(traces: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """trace ID → (start µs, span count)."""
    rows = [{"trace_id": tid, "span_id": f"{tid}-{i}", "start_us": start + i}
            for tid, (start, count) in traces.items() for i in range(count)]
    return pd.DataFrame(rows).sort_values("start_us", ignore_index=True)


def test_whole_traces_nearest_the_incident_are_kept_and_the_cut_is_counted() -> None:
    frame = _frame({"far": (0, 40), "near": (1_000_000, 30), "mid": (700_000, 30)})
    quality = DataQuality()
    kept = cap_spans(frame, 65, around_us=1_000_000, quality=quality)
    assert set(kept["trace_id"]) == {"near", "mid"}  # whole traces: 60 spans, not 65 cut ones
    assert list(kept["start_us"]) == sorted(kept["start_us"])
    [note] = quality.notes()
    assert note.startswith("skipped 40 spans past the cap of 65 per diagnosis")


def test_under_the_cap_nothing_changes_and_one_huge_trace_keeps_its_earliest_spans() -> None:
    frame = _frame({"a": (0, 10)})
    quality = DataQuality()
    assert cap_spans(frame, 10, None, quality) is frame and not quality.notes()
    huge = _frame({"huge": (0, 100_000)})
    kept = cap_spans(huge, 1000, 50_000, quality)
    assert len(kept) == 1000 and kept["start_us"].max() == 999
