"""``random``: a seeded shuffle, the baseline every other strategy must beat."""

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


def seeded_shuffle(ids: Sequence[int], seed: int) -> list[int]:
    """``ids`` in a random order that depends only on the set of ids and ``seed``.

    The ids are sorted first, so the order does not depend on how the caller listed them.
    """
    ordered = sorted(ids)
    permutation = np.random.default_rng(seed).permutation(len(ordered))
    return [ordered[int(i)] for i in permutation]


class RandomStrategy(Strategy):
    """Every case equally likely at every position; reproducible for a given ``context.seed``."""

    name: ClassVar[str] = "random"
    description: ClassVar[str] = "Random order (seeded): the baseline active learning must beat."
    needs_scores: ClassVar[bool] = False
    needs_embeddings: ClassVar[bool] = False

    def rank(self, candidates: Sequence[Candidate], context: RankingContext) -> list[int]:
        return seeded_shuffle(case_ids(candidates), context.seed)


register_builtin(RandomStrategy())
