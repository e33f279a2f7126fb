"""``typiclust``: typical and diverse picks for the cold start (TypiClust).

Why: with few or no labels, the most informative cases are not the outliers k-center reaches
first, nor uncertain ones (no model is trusted yet), but *typical* cases of the parts of the data
not yet covered. Hacohen, Dekel & Weinshall, "Active Learning on a Budget: Opposite Strategies
Suit High and Low Budgets" (ICML 2022), cluster self-supervised embeddings into
``labelled + batch`` clusters, then take, from the largest clusters that hold no label yet, the
point of highest *typicality*: the inverse of its mean distance to its k nearest neighbours
within the cluster (the densest point, not the centroid, which may not be a case at all).

After the batch, the rest of the candidates follow in k-center order from everything labelled or
picked, so the whole ranking stays diverse. Candidates without an embedding come last, by case
id. Deterministic for a seed (k-means is seeded with ``context.seed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans

from active_learning.strategies.base import (
    Candidate,
    RankingContext,
    Strategy,
    case_ids,
    register_builtin,
)
from active_learning.strategies.diversity import (
    _as_initial,
    embedding_matrix,
    k_center_greedy,
    split_by_embedding,
)

# As in the paper: typicality over at most 20 neighbours; clusters smaller than 5 points are
# taken only when no larger cluster has candidates left (they are outliers, not modes).
NEIGHBOURS = 20
MIN_CLUSTER_SIZE = 5
# Above this many clusters, mini-batch k-means (the paper does the same for large budgets).
_FULL_KMEANS_MAX_CLUSTERS = 50


def typicality(points: np.ndarray, neighbours: int = NEIGHBOURS) -> np.ndarray:
    """``(n,)`` typicality of each row of ``points`` ``(n, d)``: 1 / (mean Euclidean distance to
    its ``min(neighbours, n - 1)`` nearest other rows + 1e-8); 0 for a lone point."""
    points = np.asarray(points, dtype=np.float64)
    n = points.shape[0]
    if n <= 1:
        return np.zeros(n)
    k = min(neighbours, n - 1)
    squared = np.einsum("ij,ij->i", points, points)
    distances = np.sqrt(
        np.maximum(squared[:, None] + squared[None, :] - 2.0 * points @ points.T, 0.0)
    )
    np.fill_diagonal(distances, np.inf)
    nearest = np.partition(distances, k - 1, axis=1)[:, :k]
    return 1.0 / (nearest.mean(axis=1) + 1e-8)


def cluster(points: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    """k-means labels ``(n,)`` of ``points`` into ``clusters`` groups (seeded)."""
    if clusters >= len(points):
        return np.arange(len(points))
    if clusters <= _FULL_KMEANS_MAX_CLUSTERS:
        model: KMeans | MiniBatchKMeans = KMeans(n_clusters=clusters, n_init=5, random_state=seed)
    else:
        model = MiniBatchKMeans(n_clusters=clusters, n_init=3, random_state=seed, batch_size=1024)
    return np.asarray(model.fit_predict(points), dtype=np.int64)


def typiclust_picks(
    points: np.ndarray, budget: int, labelled: np.ndarray | None = None, *, seed: int = 0
) -> list[int]:
    """Indices of ``budget`` rows of ``points`` ``(n, d)`` chosen by TypiClust, in pick order.

    ``labelled`` ``(m, d)``: embeddings already labelled; they count towards the clusters
    (``m + budget`` of them) and cover the clusters they fall in. Each pick takes, among the
    clusters with candidates left, one of at least :data:`MIN_CLUSTER_SIZE` points while any is
    left (as the paper drops smaller ones), then the one with the fewest labelled or picked
    points, then the largest, then the lowest label; and from it the candidate of highest
    typicality within the cluster.
    """
    points = np.asarray(points, dtype=np.float64)
    n = points.shape[0]
    budget = min(int(budget), n)
    if budget <= 0:
        return []
    covered_points = _as_initial(labelled, points.shape[1])
    m = 0 if covered_points is None else covered_points.shape[0]
    everything = points if covered_points is None else np.vstack([covered_points, points])
    labels = cluster(everything, min(m + budget, len(everything)), seed)
    sizes = np.bincount(labels)
    covered = np.bincount(labels[:m], minlength=len(sizes)).astype(np.int64)
    candidate_labels = labels[m:]
    # Most typical first within each cluster (typicality over all its points, labelled too).
    queues: dict[int, list[int]] = {}
    for label in np.unique(candidate_labels):
        members = np.flatnonzero(labels == label)
        scores = typicality(everything[members])
        order = members[np.argsort(-scores, kind="stable")]
        queues[int(label)] = [int(i) - m for i in order if i >= m]
    picks: list[int] = []
    while len(picks) < budget:
        open_clusters = [label for label, queue in queues.items() if queue]
        best = min(
            open_clusters,
            key=lambda c: (sizes[c] < MIN_CLUSTER_SIZE, covered[c], -sizes[c], c),
        )
        picks.append(queues[best].pop(0))
        covered[best] += 1
    return picks


def typiclust_order(candidates: Sequence[Candidate], context: RankingContext) -> list[int]:
    """All case ids: ``context.batch_size`` TypiClust picks, then the other candidates with an
    embedding in k-center order from the labelled and picked ones, then those without one."""
    case_ids(candidates)
    with_embedding, without = split_by_embedding(candidates)
    with_embedding.sort(key=lambda c: c.case_id)
    rest_ids = sorted(c.case_id for c in without)
    if not with_embedding:
        return rest_ids
    points = embedding_matrix(with_embedding)
    labelled = _as_initial(context.labelled_embeddings, points.shape[1])
    picks = typiclust_picks(points, context.batch_size, labelled, seed=context.seed)
    picked = set(picks)
    remaining = [i for i in range(len(points)) if i not in picked]
    order = list(picks)
    if remaining:
        seen = points[picks] if labelled is None else np.vstack([labelled, points[picks]])
        follow = k_center_greedy(points[remaining], len(remaining), initial=seen)
        order += [remaining[i] for i in follow]
    return [with_embedding[i].case_id for i in order] + rest_ids


class TypiClustStrategy(Strategy):
    """Typical and diverse: one case per uncovered k-means cluster of the embeddings, the
    densest of its cluster, largest clusters first (Hacohen et al. 2022). For the cold start."""

    name: ClassVar[str] = "typiclust"
    description: ClassVar[str] = (
        "Cold start (TypiClust): cluster the image embeddings, take the most typical case of "
        "each largest cluster without labels, then cover the rest by k-center."
    )
    needs_scores: ClassVar[bool] = False
    needs_embeddings: ClassVar[bool] = True

    def rank(self, candidates: Sequence[Candidate], context: RankingContext) -> list[int]:
        return typiclust_order(candidates, context)


register_builtin(TypiClustStrategy())
