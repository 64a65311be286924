"""Ranking candidates against the topology, the multi-factor grader, and R@k / MRR."""

from __future__ import annotations

import itertools

import pytest

from thinkfl_operator.core.models import Candidate, RootCause, Topology
from thinkfl_operator.engines.ranking import rank
from thinkfl_operator.evaluation.grader import grade
from thinkfl_operator.evaluation.scores import mrr, pod_rank, recall_at, service_rank

TOPO = Topology(
    pods={
        "cartservice-0": "cartservice",
        "cartservice-2": "cartservice",
        "frontend-2": "frontend",
        "adservice-0": "adservice",
        "redis-cart-0": "redis-cart",
        "emailservice-0": "emailservice",
    },
    nodes={"cartservice-0": "node-5", "cartservice-2": "node-6", "frontend-2": "node-1"},
)


def _check_scores(ranked: list[RootCause]) -> None:
    assert [r.rank for r in ranked] == list(range(1, len(ranked) + 1))
    scores = [r.score for r in ranked]
    assert all(type(s) is int and 0 <= s <= 100 for s in scores)
    assert scores == sorted(scores, reverse=True)


def test_unknown_names_are_dropped() -> None:
    ranked = rank([Candidate(service="ghostservice", score=9.0),
                   Candidate(pod="ghost-0", score=8.0),
                   Candidate(node="node-99", score=7.0),
                   Candidate(service="frontend", score=1.0)], TOPO, minimum=1)
    assert [r.service for r in ranked] == ["frontend"]
    assert all(r.node != "node-99" for r in ranked)


def test_pod_maps_to_its_service_and_node() -> None:
    ranked = rank([Candidate(pod="cartservice-2", score=1.0)], TOPO, minimum=1)
    assert (ranked[0].service, ranked[0].pod, ranked[0].node) == ("cartservice", "cartservice-2",
                                                                  "node-6")


def test_service_written_in_the_pod_field_is_accepted() -> None:
    ranked = rank([Candidate(pod="adservice", score=1.0)], TOPO, minimum=1)
    assert (ranked[0].service, ranked[0].pod) == ("adservice", "")


def test_pod_written_in_the_service_field_is_accepted() -> None:
    ranked = rank([Candidate(service="frontend-2", score=1.0)], TOPO, minimum=1)
    assert (ranked[0].service, ranked[0].pod, ranked[0].node) == ("frontend", "frontend-2",
                                                                  "node-1")


def test_duplicates_of_a_service_merge_into_the_first() -> None:
    ranked = rank(
        [Candidate(service="cartservice", reason="first", score=5.0),
         Candidate(service="frontend", reason="fe", score=4.0),
         Candidate(pod="cartservice-2", reason="second", score=3.0),
         Candidate(pod="cartservice-0", reason="third", score=2.0)],
        TOPO,
    )
    assert [r.service for r in ranked] == ["cartservice", "frontend"]
    first = ranked[0]
    assert first.reason == "first"
    assert first.pod == "cartservice-2"  # filled from the later candidate, not the third one
    assert first.node == "node-6"
    assert first.score == 100
    assert sum(r.service == "cartservice" for r in ranked) == 1


def test_pads_to_three_from_fallback_and_stops_there() -> None:
    fallback = [Candidate(service=s) for s in ("frontend", "adservice", "redis-cart",
                                               "emailservice")]
    ranked = rank([Candidate(service="frontend", score=2.0)], TOPO, fallback=fallback)
    assert [r.service for r in ranked] == ["frontend", "adservice", "redis-cart"]
    _check_scores(ranked)


def test_no_padding_needed_when_enough_candidates() -> None:
    cands = [Candidate(service=s, score=float(10 - i))
             for i, s in enumerate(("frontend", "adservice", "redis-cart", "emailservice"))]
    ranked = rank(cands, TOPO, fallback=[Candidate(service="cartservice")])
    assert [r.service for r in ranked] == ["frontend", "adservice", "redis-cart", "emailservice"]


def test_scores_are_ints_scaled_to_the_top_and_non_increasing() -> None:
    cands = [Candidate(service="frontend", score=4.0), Candidate(service="adservice", score=1.0),
             Candidate(service="redis-cart", score=3.0), Candidate(service="emailservice",
                                                                   score=-2.0)]
    ranked = rank(cands, TOPO)
    _check_scores(ranked)
    assert [r.score for r in ranked] == [100, 25, 25, 0]


def test_all_zero_scores_still_decrease_by_position() -> None:
    cands = [Candidate(service=s) for s in ("frontend", "adservice", "redis-cart",
                                             "emailservice")]
    ranked = rank(cands, TOPO)
    _check_scores(ranked)
    scores = [r.score for r in ranked]
    assert all(a > b for a, b in itertools.pairwise(scores))
    assert scores[0] == 100


def test_nothing_known_gives_an_empty_list() -> None:
    assert rank([Candidate(service="ghost")], TOPO) == []


# grader -------------------------------------------------------------------------------------

def _rc(rank_: int, service: str, pod: str = "", node: str = "") -> RootCause:
    return RootCause(rank=rank_, node=node, service=service, pod=pod, reason="", score=0)


ANSWER = [_rc(1, "cartservice", "cartservice-2", "node-6"), _rc(2, "frontend", "frontend-2"),
          _rc(3, "adservice")]


def test_perfect_answer_scores_one() -> None:
    assert grade(ANSWER, "cartservice", "cartservice-2", "node-6").score == 1.0
    assert grade(ANSWER, "cartservice").score == 1.0
    assert grade(ANSWER, "cartservice", "cartservice-2").rank == 1


def test_true_service_at_rank_two_halves_the_service_factor() -> None:
    g = grade(ANSWER, "frontend")
    assert g.factors["service"] == 0.5
    assert g.rank == 2
    assert g.score == pytest.approx((0.1 * 1.0 + 0.4 * 0.5) / 0.5, abs=1e-4)


def test_fewer_than_three_candidates_fail_the_format_factor() -> None:
    g = grade(ANSWER[:2], "cartservice")
    assert g.factors["format"] == 0.0
    assert g.score < 1.0


def test_pod_factor_only_when_a_pod_is_labeled() -> None:
    assert "pod" not in grade(ANSWER, "cartservice").factors
    assert "node" not in grade(ANSWER, "cartservice").factors
    with_pod = grade(ANSWER, "cartservice", pod="cartservice-0")
    assert with_pod.factors["pod"] == 0.0
    assert with_pod.score == pytest.approx((0.1 + 0.4) / 0.8, abs=1e-4)


def test_missing_service_scores_zero_on_that_factor() -> None:
    g = grade(ANSWER, "emailservice")
    assert g.factors["service"] == 0.0 and g.rank is None


# scores --------------------------------------------------------------------------------------

def test_recall_and_mrr_count_misses() -> None:
    ranks = [1, None, 3, 2, None]
    assert recall_at(ranks, 1) == pytest.approx(1 / 5)
    assert recall_at(ranks, 2) == pytest.approx(2 / 5)
    assert recall_at(ranks, 3) == pytest.approx(3 / 5)
    assert mrr(ranks) == pytest.approx((1 + 1 / 3 + 1 / 2) / 5)
    assert recall_at([], 1) == 0.0 and mrr([]) == 0.0
    assert mrr([None, None]) == 0.0


def test_service_and_pod_rank_find_the_first_match() -> None:
    assert service_rank(ANSWER, "frontend") == 2
    assert service_rank(ANSWER, "emailservice") is None
    assert pod_rank(ANSWER, "cartservice-2") == 1
    assert pod_rank(ANSWER, "cartservice-0") is None
