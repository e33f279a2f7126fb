"""Repeat-factor sampling of the training cases: rare findings seen more often.

With real-like prevalence most labelled cases show no finding and a rare one (pneumothorax at
0.6 % of images) is in one or two of 150 labels; uniform passes then spend almost every step on
normal images and common findings, and the detector's heads for the rare classes hardly learn.
Repeat-factor sampling (Gupta et al., "LVIS: A Dataset for Large Vocabulary Instance
Segmentation", CVPR 2019) repeats a case in each pass by

    r(case) = max(1, max over its findings c of sqrt(t / f(c)))

where f(c) is the share of training cases that hold c and t is ``threshold``; a case with no
finding keeps r = 1. A fractional r is rounded stochastically each pass, so it holds on average.

Training streams its cases (:data:`~active_learning.ml.interface.CaseSource`) and never holds
them all, so the frequencies are counted while the first pass streams uniformly; every later
pass repeats by them. No extra read of the images is needed. (torchvision's and detectron2's
samplers index a dataset held in memory, which a stream is not; this is their rule on a stream.)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping

import numpy as np

from active_learning.ml.interface import LabelledCase


def case_findings(case: LabelledCase) -> set[str]:
    """The findings a labelled case holds: its boxes' and those marked present."""
    return {box.finding for box in case.boxes} | {
        name for name, present in case.findings.items() if present
    }


def repeat_factors(counts: Mapping[str, int], cases: int, threshold: float) -> dict[str, float]:
    """Each finding's repeat factor ``max(1, sqrt(threshold / f))`` from how many of ``cases``
    training cases hold it."""
    if cases <= 0:
        return {}
    return {
        name: max(1.0, math.sqrt(threshold / (count / cases)))
        for name, count in counts.items()
        if count > 0
    }


class RepeatFactorSampler:
    """Passes over a streamed training set: the first uniform (counting), the later ones with
    each case repeated by its repeat factor. ``threshold`` <= 0 keeps every pass uniform."""

    def __init__(self, threshold: float, rng: np.random.Generator) -> None:
        self.threshold = threshold
        self.rng = rng
        self.factors: dict[str, float] | None = None
        self._counts: Counter[str] = Counter()
        self._cases = 0

    def case_factor(self, case: LabelledCase) -> float:
        """The case's repeat factor (1.0 before the first pass has been counted)."""
        if not self.factors:
            return 1.0
        return max((self.factors.get(name, 1.0) for name in case_findings(case)), default=1.0)

    def one_pass(self, cases: Iterable[LabelledCase]) -> Iterator[LabelledCase]:
        """One pass over ``cases``. The repeats of a case follow each other here; the training
        loop's shuffle buffer spreads them."""
        counting = self.factors is None
        for case in cases:
            if counting:
                self._cases += 1
                self._counts.update(case_findings(case))
                yield case
                continue
            factor = self.case_factor(case)
            whole = math.floor(factor)
            # No draw for a whole factor: with the sampler off the random stream is unchanged.
            repeats = whole + (int(self.rng.random() < factor - whole) if factor > whole else 0)
            for _ in range(repeats):
                yield case
        if counting:
            # Only a pass that ran to its end has counted the whole set.
            self.factors = (
                repeat_factors(self._counts, self._cases, self.threshold)
                if self.threshold > 0
                else {}
            )
