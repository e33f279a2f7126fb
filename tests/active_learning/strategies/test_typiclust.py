"""TypiClust, the cold-start strategy: one case per uncovered cluster, the most typical of it,
largest clusters first; the rest by k-center. Pure Python: no database."""

from __future__ import annotations

import numpy as np
import pytest

from active_learning.strategies import Candidate, RankingContext, get, reset
from active_learning.strategies.diversity import diversity_order
from active_learning.strategies.typiclust import typicality, typiclust_picks


@pytest.fixture(autouse=True)
def _builtin_registry():
    reset()
    yield
    reset()


def _blob(centre: tuple[float, float], rings: int, rng: np.random.Generator) -> np.ndarray:
    """A point exactly at ``centre`` (the blob's densest, most typical point) surrounded by
    ``rings`` rings of 8 points at radius 1, 2, ... with a little jitter."""
    points = [np.asarray(centre, dtype=np.float64)]
    for ring in range(1, rings + 1):
        angles = np.arange(8) * np.pi / 4 + rng.uniform(0, 0.3)
        radius = ring + rng.uniform(-0.1, 0.1, 8)
        points += list(
            np.asarray(centre) + np.stack([np.cos(angles), np.sin(angles)], 1) * radius[:, None]
        )
    return np.stack(points)


def _hand_made(seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """Three blobs far apart: 25 points (A, at 0,0), 17 (B, at 60,0) and 9 (C, at 0,60).
    Returns the points and the row of each blob's centre, largest blob first."""
    rng = np.random.default_rng(seed)
    blobs = [_blob((0, 0), 3, rng), _blob((60, 0), 2, rng), _blob((0, 60), 1, rng)]
    starts = np.cumsum([0] + [len(b) for b in blobs[:-1]])
    points = np.vstack(blobs)
    order = rng.permutation(len(points))  # rows shuffled: no position carries the answer
    inverse = np.argsort(order)
    return points[order], [int(inverse[s]) for s in starts]


def test_the_centre_of_a_ring_is_the_most_typical_point():
    points = _blob((5, 5), 3, np.random.default_rng(1))
    assert int(np.argmax(typicality(points))) == 0
    assert typicality(points[:1]).tolist() == [0.0]


def test_typiclust_picks_one_per_cluster_from_its_most_typical_point_largest_first():
    points, centres = _hand_made()
    assert typiclust_picks(points, 3, seed=0) == centres


def test_typiclust_skips_clusters_that_already_hold_a_label():
    points, centres = _hand_made(seed=2)
    labelled = points[centres[0]][None, :] + 0.01  # a label at the largest blob's centre
    picks = typiclust_picks(points, 2, labelled, seed=0)
    assert picks == centres[1:]


def test_the_strategy_ranks_typical_cases_first_where_k_center_takes_an_outlier():
    points, centres = _hand_made(seed=4)
    outlier = np.array([[200.0, 200.0]])
    points = np.vstack([points, outlier])
    candidates = [Candidate(case_id=100 + i, embedding=p) for i, p in enumerate(points)]
    order = get("typiclust").rank(candidates, RankingContext(batch_size=3, seed=1))
    assert sorted(order) == sorted(c.case_id for c in candidates)
    outlier_id = 100 + len(points) - 1
    # k-center greedy reaches the outlier within its first two picks; TypiClust's batch keeps
    # to the dense blobs (the outlier's one-point cluster is too small to be a mode).
    assert outlier_id in diversity_order(candidates, RankingContext(batch_size=3))[:2]
    assert outlier_id not in order[:3]
    assert order[0] in {100 + i for i in centres}


def test_cases_without_an_embedding_come_last_in_case_id_order():
    points, _ = _hand_made()
    candidates = [Candidate(case_id=10 + i, embedding=p) for i, p in enumerate(points)]
    candidates += [Candidate(case_id=9), Candidate(case_id=3, embedding=np.array([np.nan, 1.0]))]
    order = get("typiclust").rank(candidates, RankingContext(batch_size=5))
    assert order[-2:] == [3, 9]
    assert get("typiclust").needs_embeddings and not get("typiclust").needs_scores
