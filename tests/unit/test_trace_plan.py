"""The pure parts of the live query plan: search order, entry services, even samples."""

from __future__ import annotations

import math

from thinkfl_operator.telemetry.trace_plan import (
    by_priority,
    entry_services,
    fit,
    slow_and_spread,
    spread,
)


def test_slices_in_the_focus_window_come_first_then_the_baseline_outwards() -> None:
    slices = [(0.0, 300.0), (300.0, 600.0), (600.0, 660.0), (660.0, 720.0), (720.0, 1020.0),
              (1020.0, 1320.0)]
    ordered = by_priority(slices, focus=(600.0, 720.0))
    assert ordered[:2] == [(600.0, 660.0), (660.0, 720.0)]
    # Then the nearest baseline on either side, the farthest last.
    assert set(ordered[2:4]) == {(300.0, 600.0), (720.0, 1020.0)}
    assert set(ordered[4:]) == {(0.0, 300.0), (1020.0, 1320.0)}


def test_without_a_focus_the_latest_slices_come_first() -> None:
    assert by_priority([(0.0, 1.0), (2.0, 3.0), (1.0, 2.0)], None) == [(2.0, 3.0), (1.0, 2.0),
                                                                      (0.0, 1.0)]


def test_entry_services_are_the_callers_nobody_calls_busiest_first() -> None:
    edges = [("gateway", "orders", 100), ("orders", "db", 300), ("admin", "orders", 5),
             ("gateway", "users", 50), ("users", "users", 9)]
    assert entry_services(edges) == ["gateway", "admin"]


def test_a_graph_that_is_all_cycle_still_names_its_busiest_callers() -> None:
    edges = [("a", "b", 1), ("b", "a", 10)]
    assert entry_services(edges) == ["b", "a"]
    assert entry_services([]) == []


def test_spread_takes_evenly_over_time_whatever_the_input_order() -> None:
    items = [(float(t), f"t{t}") for t in (9, 0, 5, 3, 1, 7, 2, 8, 4, 6)]
    assert spread(items, 2) == ["t2", "t7"]
    assert spread(items, 5) == ["t1", "t3", "t5", "t7", "t9"]
    assert spread(items, 20) == [f"t{t}" for t in range(10)]
    assert spread(items, 0) == []


def test_fit_merges_the_narrowest_adjacent_baseline_slices_never_the_focus() -> None:
    slices = [(0.0, 300.0), (300.0, 600.0), (600.0, 660.0), (660.0, 720.0), (720.0, 1020.0),
              (1020.0, 1100.0)]
    assert fit(slices, (600.0, 720.0), 6) == sorted(slices)
    assert fit(slices, (600.0, 720.0), 5) == [(0.0, 300.0), (300.0, 600.0), (600.0, 660.0),
                                              (660.0, 720.0), (720.0, 1100.0)]
    assert fit(slices, (600.0, 720.0), 1) == [(0.0, 600.0), (600.0, 660.0), (660.0, 720.0),
                                              (720.0, 1100.0)]


def test_half_the_window_sample_is_the_slowest_for_its_root_the_rest_spread() -> None:
    # /cart calls take ~20 ms, /home ~200 ms: /home being slow is normal, /cart at 2 s is not
    items = [(float(t), f"c{t}", 20.0 + t % 3, "front /cart") for t in range(20)]
    items += [(float(t) + 0.5, f"h{t}", 200.0, "front /home") for t in range(20)]
    items += [(7.2, "slow-cart", 2000.0, "front /cart"), (9.9, "odd", math.nan, "front /cart")]
    chosen = slow_and_spread(items, 6)
    assert chosen[0] == "slow-cart"  # 100x its root's median, not merely the longest
    assert len(chosen) == 6 and len(set(chosen)) == 6
    # a /cart call 10% over the median is not slow: the other five are spread over time
    assert chosen[1:] == spread([(t, i) for t, i, _, _ in items if i != "slow-cart"], 5)


def test_without_slow_traces_or_durations_the_sample_is_only_spread() -> None:
    even = [(float(t), f"t{t}", 10.0, "r") for t in range(10)]
    assert slow_and_spread(even, 4) == spread([(t, i) for t, i, _, _ in even], 4)
    unknown = [(float(t), f"t{t}", math.nan, "") for t in range(10)]
    assert slow_and_spread(unknown, 4) == spread([(t, i) for t, i, _, _ in unknown], 4)
    assert slow_and_spread(unknown, 20) == [f"t{t}" for t in range(10)]
    assert slow_and_spread(unknown, 0) == []
