"""Acquisition strategies: orders a user would see in the queue. Pure Python: no database."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from active_learning import strategies
from active_learning.strategies import (
    Candidate,
    RankingContext,
    Strategy,
    UnknownStrategy,
    available,
    get,
    priorities,
    register,
    reset,
)
from active_learning.strategies.base import SCORE_KEYS
from active_learning.strategies.diversity import k_center_greedy
from active_learning.strategies.hybrid import batch_split

BUILTIN_NAMES = {
    "random",
    "fifo",
    "uncertainty",
    "uncertainty-boxes",
    "uncertainty-findings",
    "uncertainty-report",
    "diversity",
    "hybrid",
    "typiclust",
    "class-balanced",
}
CLUSTERS = 5
PER_CLUSTER = 40


@pytest.fixture(autouse=True)
def _builtin_registry():
    reset()
    yield
    reset()


def _clustered(seed: int = 0, dims: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """5 tight clusters of 40 points, far apart: (points (200, dims) float32, cluster label)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=10.0, size=(CLUSTERS, dims))
    labels = np.repeat(np.arange(CLUSTERS), PER_CLUSTER)
    points = centres[labels] + rng.normal(scale=0.05, size=(len(labels), dims))
    return points.astype(np.float32), labels


def _candidates_with_concentrated_uncertainty(seed: int = 0) -> tuple[list[Candidate], dict]:
    """Clustered candidates whose most uncertain cases all sit in cluster 0. Case ids are
    shuffled against the clusters so case-id order carries no cluster information."""
    points, labels = _clustered(seed)
    rng = np.random.default_rng(seed + 1)
    high = rng.uniform(0.9, 1.0, len(labels))
    low = rng.uniform(0.0, 0.5, len(labels))
    scores = np.where(labels == 0, high, low)
    ids = rng.permutation(np.arange(1000, 1000 + len(labels)))
    candidates = [
        Candidate(
            case_id=int(ids[i]),
            scores={"case_score": float(scores[i]), "boxes": float(scores[i])},
            embedding=points[i],
        )
        for i in range(len(labels))
    ]
    cluster_of = {int(ids[i]): int(labels[i]) for i in range(len(labels))}
    return candidates, cluster_of


def _mixed_candidates(n: int = 60, seed: int = 3) -> list[Candidate]:
    """Candidates with every score, some missing scores and some missing embeddings."""
    rng = np.random.default_rng(seed)
    candidates = []
    for i in range(n):
        scores = {key: float(rng.uniform()) for key in SCORE_KEYS}
        if i % 7 == 0:
            scores = {}
        embedding = rng.normal(size=8).astype(np.float32) if i % 5 else None
        candidates.append(Candidate(case_id=500 - 3 * i, scores=scores, embedding=embedding))
    return candidates


@pytest.mark.parametrize("name", sorted(BUILTIN_NAMES))
def test_every_strategy_returns_a_permutation_of_the_candidate_ids(name):
    candidates = _mixed_candidates()
    for context in (RankingContext(), RankingContext(batch_size=100, seed=4)):
        order = get(name).rank(candidates, context)
        assert sorted(order) == sorted(c.case_id for c in candidates)
    assert get(name).rank([], RankingContext()) == []


def test_builtins_are_registered_with_a_description():
    listed = dict(available())
    assert set(listed) == BUILTIN_NAMES
    assert all(description for description in listed.values())
    assert get("uncertainty").needs_scores and not get("uncertainty").needs_embeddings
    assert get("diversity").needs_embeddings and not get("random").needs_scores


def test_random_is_reproducible_per_seed_and_differs_across_seeds():
    candidates = _mixed_candidates()
    random = get("random")
    first = random.rank(candidates, RankingContext(seed=7))
    assert random.rank(list(reversed(candidates)), RankingContext(seed=7)) == first
    assert random.rank(candidates, RankingContext(seed=8)) != first
    assert first != sorted(first)


def test_fifo_serves_the_oldest_case_first():
    candidates = [Candidate(case_id=i) for i in (42, 7, 19, 3)]
    assert get("fifo").rank(candidates, RankingContext()) == [3, 7, 19, 42]


def test_uncertainty_serves_the_highest_score_first_and_unscored_cases_last():
    candidates = [
        Candidate(case_id=1, scores={"case_score": 0.2}),
        Candidate(case_id=9, scores={}),
        Candidate(case_id=2, scores={"case_score": 0.9}),
        Candidate(case_id=5, scores={"case_score": 0.5}),
        Candidate(case_id=4, scores={"case_score": 0.5}),
        Candidate(case_id=3, scores={"case_score": float("nan")}),
    ]
    assert get("uncertainty").rank(candidates, RankingContext()) == [2, 4, 5, 1, 3, 9]


def test_each_uncertainty_strategy_ranks_by_its_own_score():
    candidates = [
        Candidate(case_id=1, scores={"case_score": 0.9, "boxes": 0.1, "findings": 2.0}),
        Candidate(case_id=2, scores={"case_score": 0.1, "boxes": 3.0, "findings": 1.0}),
        Candidate(case_id=3, scores={"case_score": 0.5, "boxes": 1.0}),
    ]
    context = RankingContext()
    assert get("uncertainty").rank(candidates, context) == [1, 3, 2]
    assert get("uncertainty-boxes").rank(candidates, context) == [2, 3, 1]
    assert get("uncertainty-findings").rank(candidates, context) == [1, 2, 3]
    assert get("uncertainty-report").rank(candidates, context) == [1, 2, 3]  # none scored


def test_k_center_covers_every_cluster_where_uncertainty_stays_in_one():
    candidates, cluster_of = _candidates_with_concentrated_uncertainty()
    context = RankingContext()

    diverse = get("diversity").rank(candidates, context)[:CLUSTERS]
    assert {cluster_of[i] for i in diverse} == set(range(CLUSTERS))

    uncertain = get("uncertainty").rank(candidates, context)[:CLUSTERS]
    assert {cluster_of[i] for i in uncertain} == {0}


def test_k_center_greedy_function_picks_one_point_per_cluster():
    points, labels = _clustered(seed=5)
    picks = k_center_greedy(points, CLUSTERS)
    assert len(picks) == CLUSTERS
    assert set(labels[picks]) == set(range(CLUSTERS))
    assert k_center_greedy(points, 10_000) == k_center_greedy(points, len(points))
    assert sorted(k_center_greedy(points, len(points))) == list(range(len(points)))


def test_k_center_starts_away_from_labelled_cases():
    points, labels = _clustered(seed=2)
    labelled = points[labels <= 1][:5]  # some cases of clusters 0 and 1 are already labelled

    picks = k_center_greedy(points, 3, initial=labelled)
    assert set(labels[picks]) == {2, 3, 4}

    candidates, cluster_of = _candidates_with_concentrated_uncertainty(seed=2)
    embeddings = np.stack([c.embedding for c in candidates if cluster_of[c.case_id] <= 1])
    order = get("diversity").rank(candidates, RankingContext(labelled_embeddings=embeddings))
    assert {cluster_of[i] for i in order[:3]} == {2, 3, 4}


def test_diversity_puts_cases_without_embeddings_last_in_case_id_order():
    rng = np.random.default_rng(0)
    candidates = [
        Candidate(case_id=i, embedding=None if i in (4, 2) else rng.normal(size=4))
        for i in (5, 4, 3, 2, 1)
    ]
    assert get("diversity").rank(candidates, RankingContext())[-2:] == [2, 4]


def test_diversity_ranks_all_of_2000_cases_of_128_dimensions():
    # Its speed is a benchmark figure (bench/cycle_speed.py: ranking 2,000 cases), not a test.
    rng = np.random.default_rng(0)
    candidates = [
        Candidate(case_id=i, embedding=rng.normal(size=128).astype(np.float32)) for i in range(2000)
    ]
    order = get("diversity").rank(candidates, RankingContext())
    assert len(set(order)) == 2000


def test_batch_split_keeps_the_random_share():
    assert batch_split(10, 0.15) == (9, 1)
    assert batch_split(10, 0.3) == (7, 3)
    assert batch_split(10, 0.0) == (10, 0)
    assert batch_split(10, 1.0) == (0, 10)


def test_hybrid_batch_spans_clusters_when_uncertainty_sits_in_one():
    candidates, cluster_of = _candidates_with_concentrated_uncertainty(seed=4)
    batch = get("hybrid").rank(candidates, RankingContext(batch_size=10))[:10]
    assert len({cluster_of[i] for i in batch}) >= 3
    # a pure uncertainty batch would be ten near-duplicates from cluster 0
    uncertain = get("uncertainty").rank(candidates, RankingContext())[:10]
    assert {cluster_of[i] for i in uncertain} == {0}


def test_hybrid_batch_holds_its_random_share_and_the_rest_follow_by_uncertainty():
    rng = np.random.default_rng(11)
    candidates = [
        Candidate(
            case_id=i,
            scores={"case_score": float(rng.uniform())},
            embedding=rng.normal(size=8).astype(np.float32),
        )
        for i in range(2000)
    ]
    by_uncertainty = get("uncertainty").rank(candidates, RankingContext())
    pool = set(by_uncertainty[:50])  # pool_factor 5 x batch 10

    outside_pool = []
    informed_parts = set()
    random_parts = set()
    for seed in range(20):
        order = get("hybrid").rank(candidates, RankingContext(random_share=0.3, seed=seed))
        batch = order[:10]
        assert set(batch[:7]) <= pool  # the informed picks come from the uncertain pool
        outside_pool.append(sum(i not in pool for i in batch))
        informed_parts.add(tuple(batch[:7]))
        random_parts.add(tuple(batch[7:]))
        assert order[10:] == [i for i in by_uncertainty if i not in set(batch)]
    assert max(outside_pool) <= 3
    assert 2.5 <= np.mean(outside_pool) <= 3.0  # about 30% random picks, drawn from everywhere
    assert len(informed_parts) == 1  # the seed only moves the random share
    assert len(random_parts) > 15

    default_batch = get("hybrid").rank(candidates, RankingContext())[:10]
    assert sum(i in pool for i in default_batch) >= 9  # default 15% share: one random pick


def test_hybrid_without_scores_falls_back_to_diversity():
    candidates, _ = _candidates_with_concentrated_uncertainty()
    unscored = [Candidate(case_id=c.case_id, embedding=c.embedding) for c in candidates]
    context = RankingContext(seed=3)
    assert get("hybrid").rank(unscored, context) == get("diversity").rank(unscored, context)


def test_hybrid_without_embeddings_is_uncertainty_with_a_random_share():
    rng = np.random.default_rng(5)
    candidates = [
        Candidate(case_id=i, scores={"case_score": float(rng.uniform())}) for i in range(200)
    ]
    by_uncertainty = get("uncertainty").rank(candidates, RankingContext())
    random_picks = set()
    for seed in range(5):
        order = get("hybrid").rank(candidates, RankingContext(seed=seed))
        assert order[:9] == by_uncertainty[:9]
        assert order[9] not in by_uncertainty[:9]
        random_picks.add(order[9])
        assert order[10:] == [i for i in by_uncertainty if i not in set(order[:10])]
    assert len(random_picks) > 1


def test_unknown_strategy_error_lists_the_known_names():
    with pytest.raises(UnknownStrategy) as error:
        get("entropy-of-vibes")
    assert isinstance(error.value, ValueError)
    for name in BUILTIN_NAMES:
        assert name in str(error.value)


class _Reverse(Strategy):
    name = "reverse-fifo"
    description = "Newest case first."
    needs_scores = False
    needs_embeddings = False

    def rank(self, candidates, context):
        return sorted((c.case_id for c in candidates), reverse=True)


def test_reset_restores_the_builtins_after_a_custom_strategy_is_registered():
    register(_Reverse())
    assert get("reverse-fifo").rank([Candidate(1), Candidate(2)], RankingContext()) == [2, 1]
    with pytest.raises(ValueError, match="already registered"):
        register(_Reverse())
    strategies.base.STRATEGIES.pop("fifo")

    reset()

    assert {name for name, _ in available()} == BUILTIN_NAMES
    with pytest.raises(UnknownStrategy):
        get("reverse-fifo")
    assert get("fifo").rank([Candidate(2), Candidate(1)], RankingContext()) == [1, 2]


def test_priorities_decrease_strictly_along_the_order():
    order = [17, 3, 99, 42]
    given = priorities(order)
    assert set(given) == set(order)
    values = [given[i] for i in order]
    assert all(a > b for a, b in itertools.pairwise(values))
    assert all(isinstance(v, float) for v in values)
    assert priorities([]) == {}


def test_duplicate_case_ids_are_refused():
    with pytest.raises(ValueError, match="more than once"):
        get("fifo").rank([Candidate(1), Candidate(1)], RankingContext())
