"""``class-balanced``: uncertainty sampling that reserves part of each batch for rare findings.

Why: the study this platform serves names uneven sample distribution as a core difficulty.
On a VinDr-like pool (70 % normal, pneumothorax 0.6 %) uncertainty sampling alone keeps
choosing cases of the common findings and the rare classes never reach the few validation
positives their operating points need, so their boxes are never shown. Class-balanced
acquisition (Aggarwal et al., "Active Learning for Imbalanced Datasets", WACV 2020; Bengar et
al., "Class-Balanced Active Learning for Image Classification", WACV 2022) picks the cases the
model believes show the under-represented classes.

A batch of ``b`` cases:

1. ``ceil(balanced_share * b)`` rare-finding picks, one at a time: the finding with the fewest
   positives so far (labelled positives, ``context.labelled_positives``, plus the expected
   positives already picked, i.e. the sum of the picks' probabilities for it), then the
   unpicked case most likely to show it (``p:<finding>`` scores, ties by ``case_score``). A
   finding whose best remaining case is below ``MIN_PROBABILITY`` is dropped from the rotation
   (the pool holds no likely example of it).
2. The rest of the batch by ``case_score`` (uncertainty), then every other case in that order.

Without per-class probabilities (no model yet, or a model kind that stores none) the order is
plain uncertainty; without any score, the ``diversity`` order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from active_learning.strategies.base import (
    CLASS_PROBABILITY_PREFIX,
    Candidate,
    RankingContext,
    Strategy,
    case_ids,
    register_builtin,
)
from active_learning.strategies.diversity import diversity_order
from active_learning.strategies.uncertainty import order_by_score

SCORE_KEY = "case_score"
#: A finding is only worth a rare-finding pick for a case at least this likely to show it.
MIN_PROBABILITY = 0.1


def findings_scored(candidates: Sequence[Candidate]) -> list[str]:
    """The findings some candidate has a stored probability for, sorted."""
    return sorted(
        {
            key[len(CLASS_PROBABILITY_PREFIX) :]
            for candidate in candidates
            for key in candidate.scores
            if key.startswith(CLASS_PROBABILITY_PREFIX)
        }
    )


def class_balanced_order(candidates: Sequence[Candidate], context: RankingContext) -> list[int]:
    """All case ids: the rare-finding picks, then the rest by uncertainty (module docstring)."""
    ids = case_ids(candidates)
    if not any(c.score(SCORE_KEY) is not None for c in candidates):
        return diversity_order(candidates, context)
    uncertainty = order_by_score(candidates, SCORE_KEY)
    findings = findings_scored(candidates)
    batch = min(context.batch_size, len(ids))
    balanced = min(math.ceil(round(context.balanced_share * batch, 9)), batch)
    rank = {case_id: index for index, case_id in enumerate(uncertainty)}
    positives = {f: float(context.labelled_positives.get(f, 0)) for f in findings}
    active = set(findings)
    chosen: list[int] = []
    taken: set[int] = set()
    while len(chosen) < balanced and active:
        finding = min(active, key=lambda f: (positives[f], f))
        pool = [
            c
            for c in candidates
            if c.case_id not in taken and (c.class_probability(finding) or 0.0) >= MIN_PROBABILITY
        ]
        if not pool:
            active.discard(finding)
            continue
        best = max(pool, key=lambda c: (c.class_probability(finding) or 0.0, -rank[c.case_id]))
        chosen.append(best.case_id)
        taken.add(best.case_id)
        for f in findings:  # every finding the pick probably shows counts for it
            positives[f] += best.class_probability(f) or 0.0
    return chosen + [case_id for case_id in uncertainty if case_id not in taken]


class ClassBalancedStrategy(Strategy):
    """Uncertainty with a share of each batch reserved for the rarest findings."""

    name: ClassVar[str] = "class-balanced"
    description: ClassVar[str] = (
        "Uncertain cases, with part of each batch kept for the findings with the fewest "
        "labelled examples (the cases most likely to show them)."
    )
    needs_scores: ClassVar[bool] = True
    needs_embeddings: ClassVar[bool] = False

    def rank(self, candidates: Sequence[Candidate], context: RankingContext) -> list[int]:
        return class_balanced_order(candidates, context)


register_builtin(ClassBalancedStrategy())
