"""Uncertainty sampling: the cases the serving model is least sure of come first.

One strategy per stored score: ``uncertainty`` (the combined ``case_score``),
``uncertainty-boxes``, ``uncertainty-findings`` and ``uncertainty-report``.
"""

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


def order_by_score(candidates: Sequence[Candidate], key: str) -> list[int]:
    """Case ids by descending ``scores[key]``, ties by ascending case id; candidates without
    that score (missing or NaN) follow, in case-id order."""
    case_ids(candidates)
    scored = [(c.score(key), c.case_id) for c in candidates]
    ranked = sorted((-score, case_id) for score, case_id in scored if score is not None)
    unscored = sorted(case_id for score, case_id in scored if score is None)
    return [case_id for _, case_id in ranked] + unscored


class UncertaintyStrategy(Strategy):
    """Descending uncertainty under ``score_key``; unscored cases last, in case-id order."""

    name: ClassVar[str] = "uncertainty"
    description: ClassVar[str] = "Most uncertain case first (combined case score)."
    needs_scores: ClassVar[bool] = True
    needs_embeddings: ClassVar[bool] = False
    score_key: ClassVar[str] = "case_score"

    def rank(self, candidates: Sequence[Candidate], context: RankingContext) -> list[int]:
        return order_by_score(candidates, self.score_key)


class BoxUncertaintyStrategy(UncertaintyStrategy):
    name: ClassVar[str] = "uncertainty-boxes"
    description: ClassVar[str] = "Most uncertain lesion boxes first."
    score_key: ClassVar[str] = "boxes"


class FindingUncertaintyStrategy(UncertaintyStrategy):
    name: ClassVar[str] = "uncertainty-findings"
    description: ClassVar[str] = "Most uncertain finding classification first."
    score_key: ClassVar[str] = "findings"


class ReportUncertaintyStrategy(UncertaintyStrategy):
    name: ClassVar[str] = "uncertainty-report"
    description: ClassVar[str] = "Most uncertain generated report first."
    score_key: ClassVar[str] = "report"


for _strategy_class in (
    UncertaintyStrategy,
    BoxUncertaintyStrategy,
    FindingUncertaintyStrategy,
    ReportUncertaintyStrategy,
):
    register_builtin(_strategy_class())
