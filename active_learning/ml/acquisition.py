"""The acquisition score: how much labelling one case is worth to the loop, from what the
serving version predicted for it. Pure numpy (no torch, no Django), so the model's inference,
the ranking service and the benchmarks share one formula.

Every detector candidate counts (low scores included), not only the boxes shown. Per candidate
j of class k with score s_j, the class's operating threshold t_k (the fitted one; the fallback
display threshold where the class has none) and localization instability v_j (1 - mean IoU of
its matches across the test-time views):

- ambiguity a_j = H(sigmoid(logit s_j - logit t_k)) / ln 2: the binary entropy of the score
  re-centred on the operating point; 1 for a candidate exactly at its threshold (shown or not
  is a coin toss), near 0 far above or far below it;
- instability u_j = min(1, s_j / t_k) * v_j: faint candidates count in proportion (a faint one
  that vanishes in another view says little);
- likely miss m_k = p_k * [no box of class k shown]: the calibrated finding probability of a
  class nothing is shown for (a lesion the findings head sees and the boxes do not show,
  including the classes too thinly validated to show boxes at all).

Image part I = 1 - (1 - A)(1 - U)(1 - M) with A = max_j a_j, U = max_j u_j, M = max_k m_k
(maxima: one unsure lesion makes a case worth labelling; a mean would be diluted by the many
confident background candidates; the noisy-or lets each signal raise the part). Findings part
F = max_k finding uncertainty_k / ln 2 (BALD or entropy, nats); report part R = mean token
entropy / ln(vocab). Combined = 0.6 I + 0.25 F + 0.15 R: every part counts (0 when absent, so a
case without boxes is not ranked by its text alone) and the image part weighs more than the
two parts the clinical text and labs feed into together. Every part lies in [0, 1] with no
scale learnt from data, so a score means the same across versions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from active_learning.ml.uncertainty import binary_entropy

LN2 = math.log(2.0)
#: Weights of the image, findings and report parts in the combined acquisition score.
IMAGE_WEIGHT, FINDINGS_WEIGHT, REPORT_WEIGHT = 0.6, 0.25, 0.15
#: Threshold used for a class with no fitted operating threshold (the built-in default).
FALLBACK_THRESHOLD = 0.25


def _logit(p: np.ndarray | float) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


@dataclass(frozen=True)
class AcquisitionParts:
    """The parts of the acquisition score (module docstring), each in [0, 1]."""

    ambiguity: float
    instability: float
    miss: float
    image: float
    findings: float
    report: float
    combined: float


def acquisition_parts(
    *,
    candidate_findings: Sequence[str],
    candidate_scores: Sequence[float],
    candidate_instability: Sequence[float],
    shown_findings: Sequence[str],
    thresholds: Mapping[str, float | None],
    finding_probabilities: Mapping[str, float],
    finding_uncertainty: Sequence[float],
    report_token_entropy: float | None,
    vocab_size: int,
    fallback_threshold: float = FALLBACK_THRESHOLD,
) -> AcquisitionParts:
    """The acquisition score of one case and its parts (module docstring).

    ``candidate_*``: every detector candidate (finding, score in [0, 1], localization
    instability in [0, 1]); ``shown_findings``: the findings of the boxes shown to annotators;
    ``thresholds``: the operating threshold per finding (None or missing: ``fallback_threshold``);
    ``finding_probabilities``: calibrated probability per finding; ``finding_uncertainty``:
    nats per finding (BALD or entropy); ``report_token_entropy``: nats per token, or None."""
    scores = np.clip(np.asarray(candidate_scores, dtype=np.float64), 0.0, 1.0)
    instability = np.clip(np.asarray(candidate_instability, dtype=np.float64), 0.0, 1.0)
    threshold = np.array(
        [
            t if (t := thresholds.get(finding)) is not None else fallback_threshold
            for finding in candidate_findings
        ],
        dtype=np.float64,
    )
    ambiguity = instability_part = 0.0
    if len(scores):
        recentred = 1.0 / (1.0 + np.exp(-(_logit(scores) - _logit(threshold))))
        ambiguity = float(np.max(binary_entropy(recentred)) / LN2)
        weight = np.minimum(1.0, scores / np.maximum(threshold, 1e-6))
        instability_part = float(np.max(weight * instability))
    shown = set(shown_findings)
    miss = max(
        (float(p) for finding, p in finding_probabilities.items() if finding not in shown),
        default=0.0,
    )
    return combine_parts(
        ambiguity=ambiguity,
        instability=instability_part,
        miss=miss,
        finding_uncertainty=finding_uncertainty,
        report_token_entropy=report_token_entropy,
        vocab_size=vocab_size,
    )


def combine_parts(
    *,
    ambiguity: float,
    instability: float,
    miss: float,
    finding_uncertainty: Sequence[float],
    report_token_entropy: float | None,
    vocab_size: int,
) -> AcquisitionParts:
    """The parts clipped to [0, 1], the image part by noisy-or and the weighted combination
    (module docstring)."""

    def unit(value: float) -> float:
        return float(min(max(value, 0.0), 1.0))

    ambiguity, instability, miss = unit(ambiguity), unit(instability), unit(miss)
    image = 1.0 - (1.0 - ambiguity) * (1.0 - instability) * (1.0 - miss)
    findings = unit(max(finding_uncertainty, default=0.0) / LN2)
    report = 0.0
    if report_token_entropy is not None:
        report = unit(report_token_entropy / math.log(max(vocab_size, 2)))
    combined = IMAGE_WEIGHT * image + FINDINGS_WEIGHT * findings + REPORT_WEIGHT * report
    return AcquisitionParts(
        ambiguity=ambiguity,
        instability=instability,
        miss=miss,
        image=image,
        findings=findings,
        report=report,
        combined=float(combined),
    )


def box_thresholds(operating: Mapping[str, Any] | None) -> dict[str, float | None]:
    """Operating threshold per finding from a version's operating points
    (``{"boxes": {finding: {"threshold": ...}}}``); empty when never fitted."""
    points = (operating or {}).get("boxes") or {}
    return {
        finding: (point or {}).get("threshold") if isinstance(point, Mapping) else None
        for finding, point in points.items()
    }


def prediction_parts(
    prediction: Any,
    *,
    thresholds: Mapping[str, float | None],
    vocab_size: int,
    fallback_threshold: float = FALLBACK_THRESHOLD,
) -> AcquisitionParts:
    """:func:`acquisition_parts` of a :class:`~active_learning.ml.interface.CasePrediction`:
    its ``candidates`` (every candidate; its shown ``boxes`` when it has none), shown boxes,
    finding probabilities and uncertainties, and report token entropy."""
    candidates = list(getattr(prediction, "candidates", None) or prediction.boxes)
    return acquisition_parts(
        candidate_findings=[b.finding for b in candidates],
        candidate_scores=[b.score for b in candidates],
        candidate_instability=[b.localization_instability for b in candidates],
        shown_findings=[b.finding for b in prediction.boxes],
        thresholds=thresholds,
        finding_probabilities=prediction.findings,
        finding_uncertainty=list(prediction.finding_uncertainty.values()),
        report_token_entropy=prediction.report_uncertainty.get("mean_token_entropy"),
        vocab_size=vocab_size,
        fallback_threshold=fallback_threshold,
    )


def prediction_score(
    prediction: Any,
    *,
    thresholds: Mapping[str, float | None],
    vocab_size: int,
    fallback_threshold: float = FALLBACK_THRESHOLD,
) -> float:
    """The combined acquisition score of a prediction (:func:`prediction_parts`)."""
    return prediction_parts(
        prediction,
        thresholds=thresholds,
        vocab_size=vocab_size,
        fallback_threshold=fallback_threshold,
    ).combined
