"""The authors' 3-sigma rule (search_fluctuating_metrics) on hand-made per-pod KPI frames."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from thinkfl_operator.evidence.metrics import fluctuations, metric_key, normalize_timestamp

T = 1_647_758_880.0  # the queried time (epoch s, on a sample)
STEP = 60.0


def _ts(minutes: int = 30) -> np.ndarray:
    """Samples every 60 s from T − minutes to T + minutes."""
    return T + STEP * np.arange(-minutes, minutes + 1, dtype=np.float64)


def _frame(columns: dict[str, np.ndarray], ts: np.ndarray | None = None) -> pd.DataFrame:
    index = pd.Index(_ts() if ts is None else ts, name="ts", dtype="float64")
    return pd.DataFrame(columns, index=index)


def _noise(seed: int = 0, n: int = 61, level: float = 10.0) -> np.ndarray:
    return level + np.random.default_rng(seed).normal(0.0, 0.1, n)


def _spiked(offset_min: int, seed: int = 0, height: float = 50.0) -> np.ndarray:
    values = _noise(seed)
    values[30 + offset_min] += height  # index 30 is T
    return values


def test_spike_inside_current_window_is_flagged_with_numpy_stats() -> None:
    values = _spiked(5)
    found = fluctuations({"cartservice-2": _frame({"cpu": values})}, T, {})
    assert len(found) == 1
    f = found[0]
    ts = _ts()
    base = values[(ts >= T - 1200) & (ts <= T + 1200)]
    cur = values[(ts >= T - 600) & (ts <= T + 600)]
    assert len(base) == 41 and len(cur) == 21
    assert f.regular_mean == pytest.approx(np.mean(base), rel=1e-12)
    assert f.regular_std_dev == pytest.approx(np.std(base, ddof=0), rel=1e-12)
    assert f.current_mean == pytest.approx(np.mean(cur), rel=1e-12)
    assert f.current_std_dev == pytest.approx(np.std(cur, ddof=0), rel=1e-12)
    assert (f.pod, f.kpi) == ("cartservice-2", "cpu")


def test_spike_at_the_current_window_edge_counts() -> None:
    assert len(fluctuations({"p": _frame({"cpu": _spiked(10)})}, T, {})) == 1
    assert len(fluctuations({"p": _frame({"cpu": _spiked(-10)})}, T, {})) == 1


def test_spike_outside_current_but_inside_baseline_is_not_flagged() -> None:
    for offset in (11, 15, -15, 20):
        frame = _frame({"cpu": _spiked(offset)})
        assert fluctuations({"p": frame}, T, {}) == [], offset


def test_spike_outside_the_baseline_does_not_touch_the_stats() -> None:
    values = _spiked(8)
    values[0] += 1e6  # T − 30 min: outside [T − 20 m, T + 20 m]
    found = fluctuations({"p": _frame({"cpu": values})}, T, {})
    ts = _ts()
    base = values[(ts >= T - 1200) & (ts <= T + 1200)]
    assert found[0].regular_mean == pytest.approx(np.mean(base))


def test_constant_column_is_skipped() -> None:
    frame = _frame({"flat": np.full(61, 3.0), "cpu": _spiked(0)})
    found = fluctuations({"p": frame}, T, {})
    assert [f.kpi for f in found] == ["cpu"]


def test_all_nan_column_is_skipped_without_warnings() -> None:
    frame = _frame({"empty": np.full(61, np.nan), "cpu": _spiked(0)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = fluctuations({"p": frame}, T, {})
    assert [f.kpi for f in found] == ["cpu"]


def test_nan_values_inside_a_series_are_ignored() -> None:
    values = _spiked(3)
    values[[25, 28, 40]] = np.nan
    found = fluctuations({"p": _frame({"cpu": values})}, T, {})
    assert len(found) == 1
    ts = _ts()
    base = values[(ts >= T - 1200) & (ts <= T + 1200)]
    cur = values[(ts >= T - 600) & (ts <= T + 600)]
    assert found[0].regular_mean == pytest.approx(np.nanmean(base))
    assert found[0].regular_std_dev == pytest.approx(np.nanstd(base))
    assert found[0].current_mean == pytest.approx(np.nanmean(cur))
    assert found[0].current_std_dev == pytest.approx(np.nanstd(cur))
    assert np.isfinite([found[0].regular_mean, found[0].current_std_dev]).all()


def test_keys_name_the_node_when_known() -> None:
    frames = {"cartservice-2": _frame({"cpu": _spiked(0)}),
              "frontend-0": _frame({"mem": _spiked(1, seed=1)})}
    found = fluctuations(frames, T, {"cartservice-2": "node-6"})
    assert sorted(f.key for f in found) == ["frontend-0.mem", "node-6.cartservice-2.cpu"]
    assert metric_key("node-6", "cartservice-2", "cpu") == "node-6.cartservice-2.cpu"
    assert metric_key("", "frontend-0", "mem") == "frontend-0.mem"


def _spikes(count: int, seed: int) -> np.ndarray:
    """``count`` tall spikes inside T ± 10 min: more spikes move the window mean further."""
    values = _noise(seed)
    values[[28, 30, 32][:count]] += 1000.0
    return values


def test_results_are_sorted_by_deviation_descending() -> None:
    frames = {
        "a-0": _frame({"one": _spikes(1, seed=1)}),
        "b-0": _frame({"two": _spikes(2, seed=2), "three": _spikes(3, seed=3)}),
    }
    found = fluctuations(frames, T, {})
    assert [f.kpi for f in found] == ["three", "two", "one"]
    deviations = [f.deviation for f in found]
    assert deviations == sorted(deviations, reverse=True)
    assert deviations[0] > deviations[1] > deviations[2]


def test_frame_without_samples_in_the_current_window_is_skipped() -> None:
    ts = T + STEP * np.arange(-20, -10, dtype=np.float64)  # baseline only
    frame = _frame({"cpu": np.arange(10, dtype=np.float64)}, ts)
    assert fluctuations({"p": frame}, T, {}) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1647758897785", 1647758897.0), ("1647758897", 1647758897.0),
     (1647758897.5, 1647758897.5), (" 1647758897 ", 1647758897.0)],
)
def test_normalize_timestamp_accepts_seconds_and_milliseconds(value: object,
                                                              expected: float) -> None:
    assert normalize_timestamp(value) == expected


@pytest.mark.parametrize("value", ["abc", "", "2022-03-20 06:48:17"])
def test_normalize_timestamp_rejects_non_numbers(value: str) -> None:
    with pytest.raises(ValueError):
        normalize_timestamp(value)
