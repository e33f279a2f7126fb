"""``diversity``: k-center greedy on embeddings (the core-set approach).

Why: uncertainty alone tends to fill a batch with near-duplicates (ten views of the same hard
pattern). Sener & Savarese, "Active Learning for Convolutional Neural Networks: A Core-Set
Approach" (ICLR 2018), choose the batch whose points cover the embedding space best, which the
greedy 2-approximation below does: repeatedly take the point farthest from everything chosen
(or already labelled) so far.

Embeddings are used exactly as given: nothing is standardised or L2-normalised, so the scale of
each dimension is the caller's choice (a model embedding is usually comparable across
dimensions; hand-made image features should be put on comparable scales before storing them).
Distances are Euclidean.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from active_learning.strategies.base import (
    Candidate,
    RankingContext,
    Strategy,
    case_ids,
    register_builtin,
)

# Rows of the (n x chunk) distance block computed at once against labelled embeddings: keeps
# memory near 32 MB however many cases are labelled.
_DISTANCE_BLOCK_ELEMENTS = 4_000_000


def k_center_greedy(
    points: np.ndarray,
    k: int,
    initial: np.ndarray | None = None,
    *,
    start: int | None = None,
) -> list[int]:
    """Indices of ``k`` rows of ``points`` chosen by k-center greedy, in the order chosen.

    ``points``: ``(n, d)`` array of any real dtype. ``initial``: ``(m, d)`` points already
    covered (labelled embeddings); the first pick is then the point farthest from them. Without
    ``initial`` the first pick is ``start`` if given, else the point closest to the mean of
    ``points`` (deterministic). Each further pick is the point whose distance to its nearest
    chosen or initial point is largest; ties go to the lowest index. ``k`` is clipped to ``n``.

    Cost: O(n·d) per pick (one matrix-vector product and a running minimum), O(n·m·d) once for
    ``initial``.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(f"points must be a 2-D (n, d) array, got shape {points.shape}")
    n = points.shape[0]
    k = min(int(k), n)
    if k <= 0:
        return []
    # Centring changes no distance but keeps norms small, so ||a||² + ||b||² - 2a·b does not
    # lose precision to cancellation when features sit far from the origin.
    centre = points.mean(axis=0)
    points = points - centre
    squared_norms = np.einsum("ij,ij->i", points, points)
    min_distance = np.full(n, np.inf)

    covered = _as_initial(initial, points.shape[1])
    if covered is not None:
        covered = covered - centre
        block = max(1, _DISTANCE_BLOCK_ELEMENTS // max(n, 1))
        for begin in range(0, covered.shape[0], block):
            rows = covered[begin : begin + block]
            distances = (
                squared_norms[:, None]
                + np.einsum("ij,ij->i", rows, rows)[None, :]
                - 2.0 * points @ rows.T
            )
            np.minimum(min_distance, distances.min(axis=1), out=min_distance)
        first = int(np.argmax(min_distance))
    elif start is not None:
        if not 0 <= start < n:
            raise ValueError(f"start must index one of the {n} points, got {start}")
        first = int(start)
    else:
        first = int(np.argmin(squared_norms))  # centred: the norm is the distance to the mean

    chosen = [first]
    picked = first
    while len(chosen) < k:
        distances = squared_norms + squared_norms[picked] - 2.0 * (points @ points[picked])
        np.minimum(min_distance, distances, out=min_distance)
        min_distance[picked] = -np.inf  # never pick a point twice, even among duplicates
        picked = int(np.argmax(min_distance))
        chosen.append(picked)
    return chosen


def _as_initial(initial: np.ndarray | None, dimension: int) -> np.ndarray | None:
    """Labelled embeddings as a finite ``(m, d)`` float64 array, or ``None`` when there are none."""
    if initial is None:
        return None
    array = np.atleast_2d(np.asarray(initial, dtype=np.float64))
    if array.size == 0:
        return None
    if array.ndim != 2 or array.shape[1] != dimension:
        raise ValueError(
            f"labelled embeddings have shape {array.shape}, candidates have dimension {dimension}"
        )
    array = array[np.isfinite(array).all(axis=1)]
    return array if len(array) else None


def split_by_embedding(
    candidates: Sequence[Candidate],
) -> tuple[list[Candidate], list[Candidate]]:
    """``(with_embedding, without)`` in input order. An embedding holding NaN or infinity counts
    as unknown. ``ValueError`` when embeddings are not 1-D or differ in length."""
    with_embedding: list[Candidate] = []
    without: list[Candidate] = []
    dimension: int | None = None
    for candidate in candidates:
        embedding = candidate.embedding
        if embedding is None:
            without.append(candidate)
            continue
        embedding = np.asarray(embedding)
        if embedding.ndim != 1:
            raise ValueError(
                f"case {candidate.case_id}: embedding must be 1-D, got shape {embedding.shape}"
            )
        if dimension is None:
            dimension = embedding.shape[0]
        elif embedding.shape[0] != dimension:
            raise ValueError(
                f"case {candidate.case_id}: embedding has {embedding.shape[0]} dimensions, "
                f"others have {dimension}"
            )
        if np.isfinite(embedding).all():
            with_embedding.append(candidate)
        else:
            without.append(candidate)
    return with_embedding, without


def embedding_matrix(candidates: Sequence[Candidate]) -> np.ndarray:
    """``(n, d)`` float64 array of the candidates' embeddings, one row per candidate, in order.
    Every candidate must have an embedding (see :func:`split_by_embedding`)."""
    rows = [np.asarray(c.embedding, dtype=np.float64) for c in candidates]
    return np.stack(rows) if rows else np.empty((0, 0))


def diversity_order(candidates: Sequence[Candidate], context: RankingContext) -> list[int]:
    """All case ids: those with an embedding in k-center greedy order (starting from
    ``context.labelled_embeddings`` if any), then those without, in case-id order."""
    case_ids(candidates)
    with_embedding, without = split_by_embedding(candidates)
    # Sorting first makes ties (and the whole order) independent of how candidates were listed.
    with_embedding.sort(key=lambda c: c.case_id)
    picks = k_center_greedy(
        embedding_matrix(with_embedding),
        len(with_embedding),
        initial=context.labelled_embeddings,
    )
    return [with_embedding[i].case_id for i in picks] + sorted(c.case_id for c in without)


class DiversityStrategy(Strategy):
    """Cover the embedding space: each next case is the one farthest from all chosen and labelled
    cases (k-center greedy, Sener & Savarese 2018). Ignores uncertainty scores."""

    name: ClassVar[str] = "diversity"
    description: ClassVar[str] = (
        "Core-set (k-center greedy) on embeddings: each next case is the one least like "
        "anything labelled or already chosen."
    )
    needs_scores: ClassVar[bool] = False
    needs_embeddings: ClassVar[bool] = True

    def rank(self, candidates: Sequence[Candidate], context: RankingContext) -> list[int]:
        return diversity_order(candidates, context)


register_builtin(DiversityStrategy())
