"""``hybrid``: uncertain, diverse and partly random batches (the default for a running loop).

How one batch of ``b = context.batch_size`` cases is built:

1. the pool: the top ``pool_factor * b`` cases by ``case_score``;
2. ``ceil((1 - random_share) * b)`` of them by k-center greedy on embeddings, starting from the
   labelled embeddings (or, before any label, from the most uncertain case in the pool);
3. the rest of the batch drawn at random (``context.seed``) from *all* remaining candidates;
4. after the batch, every other case in uncertainty order.

Why: uncertainty alone fills a batch with near-duplicates of one hard pattern; k-center greedy
over the uncertain pool spreads the batch (Sener & Savarese, ICLR 2018, core-set approach).
The random share is insurance: published comparisons disagree on how much active learning gains
over random sampling in medical imaging (see the survey by Budd, Robinson & Kainz, Medical
Image Analysis 2021), and careful re-evaluations find random baselines hard to beat (Munjal et
al., CVPR 2022). Random picks keep the labelled set an unbiased sample of the pool, so the loop
cannot do much worse than random even when the model's uncertainty is miscalibrated.

Fallbacks: no candidate has a ``case_score`` -> the ``diversity`` order; no candidate in the pool
has an embedding -> the most uncertain cases, still with the random share.
"""

from __future__ import annotations

import math
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
from active_learning.strategies.diversity import (
    diversity_order,
    embedding_matrix,
    k_center_greedy,
    split_by_embedding,
)
from active_learning.strategies.uncertainty import order_by_score

SCORE_KEY = "case_score"


def batch_split(batch_size: int, random_share: float) -> tuple[int, int]:
    """``(informed, random)`` picks in a batch: ``ceil((1 - random_share) * batch_size)`` chosen
    by uncertainty and diversity, the rest at random. ``(10, 0.15)`` -> ``(9, 1)``."""
    # Rounding first stops float noise from adding a pick: (1 - 0.3) * 10 is 7.000000000000001.
    informed = math.ceil(round((1.0 - random_share) * batch_size, 9))
    informed = min(max(informed, 0), batch_size)
    return informed, batch_size - informed


def hybrid_order(candidates: Sequence[Candidate], context: RankingContext) -> list[int]:
    """All case ids: the hybrid batch first (informed picks, then random picks), then the rest in
    uncertainty order. See the module docstring."""
    ids = case_ids(candidates)
    if not any(c.score(SCORE_KEY) is not None for c in candidates):
        return diversity_order(candidates, context)

    uncertainty = order_by_score(candidates, SCORE_KEY)
    batch_size = min(context.batch_size, len(ids))
    informed_count, random_count = batch_split(batch_size, context.random_share)

    by_id = {c.case_id: c for c in candidates}
    pool = uncertainty[: context.pool_factor * batch_size]
    # The pool stays in uncertainty order, so index 0 is the most uncertain case with an
    # embedding and k-center ties favour the more uncertain case.
    with_embedding, _ = split_by_embedding([by_id[case_id] for case_id in pool])
    informed: list[int] = []
    if with_embedding and informed_count:
        picks = k_center_greedy(
            embedding_matrix(with_embedding),
            informed_count,
            initial=context.labelled_embeddings,
            start=0,
        )
        informed = [with_embedding[i].case_id for i in picks]
    chosen = set(informed)
    for case_id in pool:  # too few embeddings in the pool: top up by uncertainty
        if len(informed) >= informed_count:
            break
        if case_id not in chosen:
            informed.append(case_id)
            chosen.add(case_id)

    remaining = sorted(set(ids) - chosen)
    rng = np.random.default_rng(context.seed)
    drawn = rng.choice(len(remaining), size=min(random_count, len(remaining)), replace=False)
    random_picks = [remaining[int(i)] for i in drawn]
    chosen.update(random_picks)

    return informed + random_picks + [case_id for case_id in uncertainty if case_id not in chosen]


class HybridStrategy(Strategy):
    """Batch-mode: k-center greedy among the most uncertain cases plus a random share."""

    name: ClassVar[str] = "hybrid"
    description: ClassVar[str] = (
        "Uncertain and diverse: k-center greedy among the most uncertain cases, plus a random "
        "share of each batch."
    )
    needs_scores: ClassVar[bool] = True
    needs_embeddings: ClassVar[bool] = True

    def rank(self, candidates: Sequence[Candidate], context: RankingContext) -> list[int]:
        return hybrid_order(candidates, context)


register_builtin(HybridStrategy())
