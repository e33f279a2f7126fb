"""``fifo``: cases in the order they arrived (ascending case id)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from active_learning.strategies.base import (
    Candidate,
    RankingContext,
    Strategy,
    case_ids,
    register_builtin,
)


class FifoStrategy(Strategy):
    """First in, first out: ascending case id, which is arrival order."""

    name: ClassVar[str] = "fifo"
    description: ClassVar[str] = "First in, first out: oldest case first."
    needs_scores: ClassVar[bool] = False
    needs_embeddings: ClassVar[bool] = False

    def rank(self, candidates: Sequence[Candidate], context: RankingContext) -> list[int]:
        return sorted(case_ids(candidates))


register_builtin(FifoStrategy())
