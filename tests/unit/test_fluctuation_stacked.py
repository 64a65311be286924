"""The pods computed together (stacked, padded) give each pod's own numbers, bit for bit."""

from __future__ import annotations

import numpy as np

from thinkfl_operator.evidence import metrics
from thinkfl_operator.telemetry.store import KpiBlock


def _random_block(rng: np.random.Generator, kpis: tuple[str, ...], t_s: float) -> KpiBlock:
    n = int(rng.integers(0, 90))
    ts = np.unique(t_s + rng.integers(-1500, 1500, n).astype(float))
    values = rng.standard_normal((len(ts), len(kpis))) * 10.0 ** rng.integers(-3, 6, len(kpis))
    values += rng.integers(-5, 5, len(kpis))
    if len(ts):  # a level shift after t, so that series fluctuate
        values[ts > t_s] += rng.integers(0, 40, len(kpis)) * rng.random(len(kpis))
    values[rng.random(values.shape) < 0.1] = np.nan
    for j in range(len(kpis)):
        kind = rng.integers(0, 6)
        if kind == 0:
            values[:, j] = -0.0  # negative zeros, all the column
        elif kind == 1:
            values[:, j] = 3.0
        elif kind == 2 and len(ts):
            values[ts > t_s, j] = -0.0  # a series that drops to -0
        elif kind == 3:
            values[:, j] = np.nan
    return KpiBlock(ts, values, kpis)


def _alone(frames: dict[str, KpiBlock], t_s: float, base_s: float, cur_s: float,
           nodes: dict[str, str]) -> list[str]:
    return [repr(f) for p, b in frames.items()
            for f in metrics._flagged_one(p, b, t_s, nodes, base_s, cur_s, 3.0)]


def test_stacked_pods_give_each_pods_own_bits() -> None:
    rng = np.random.default_rng(7)
    t_s = 1_700_000_000.0
    found = 0
    # the second windows: the current samples outside the baseline (a series at -0 now)
    for base_s, cur_s in [(1200.0, 600.0)] * 150 + [(300.0, 1200.0)] * 150:
        k = int(rng.integers(1, 8))
        kpis = tuple(f"k{j}" if j or rng.random() < 0.9 else "" for j in range(k))  # a nameless KPI too
        frames = {f"pod{i}": _random_block(rng, kpis if rng.random() < 0.8 else kpis[:1], t_s)
                  for i in range(int(rng.integers(1, 12)))}
        nodes = {p: str(rng.choice(["n", "", "node-1"])) for p in frames if rng.random() < 0.8}
        together = metrics._flagged(frames, t_s, nodes, base_s, cur_s, 3.0)
        alone = _alone(frames, t_s, base_s, cur_s, nodes)
        assert [repr(f) for each in together.values() for f in each] == alone
        found += len(alone)
        by_pod = metrics.fluctuations_by_pod(frames, t_s, nodes, base_s, cur_s)
        for pod, block in frames.items():
            assert by_pod[pod] == metrics.fluctuations({pod: block}, t_s, nodes, base_s, cur_s)
    assert found > 100


def test_a_series_at_negative_zero_now_keeps_its_sign() -> None:
    """A pod whose few current samples are -0.0 (padded to the busy pod's rows): the same
    bits as the pod alone (numpy's sums start from +0.0, and the padding adds -0.0)."""
    t_s = 1_700_000_000.0
    kpis = ("a", "b", "c")
    before = t_s - 1200.0 + 30.0 * np.arange(19)  # outside the current window
    ts = np.concatenate([before, [t_s]])
    values = np.vstack([np.full((19, 3), 5.0), [[-0.0, -0.0, 7.0]]])
    values[::2, :2] += 0.01
    quiet = KpiBlock(ts, values, kpis)
    busy_ts = t_s - 1200.0 + 10.0 * np.arange(240)
    busy = KpiBlock(busy_ts, np.sin(busy_ts)[:, None] * np.ones(3), kpis)
    frames = {"busy": busy, "quiet": quiet}
    by_pod = metrics.fluctuations_by_pod(frames, t_s, {})
    assert {f.kpi: f.current_mean for f in by_pod["quiet"]} == {"a": 0.0, "b": 0.0, "c": 7.0}
    assert [repr(f) for each in metrics._flagged(frames, t_s, {}, 1200.0, 600.0, 3.0).values()
            for f in each] == [repr(f) for p, b in frames.items()
                               for f in metrics._flagged_one(p, b, t_s, {}, 1200.0, 600.0, 3.0)]
