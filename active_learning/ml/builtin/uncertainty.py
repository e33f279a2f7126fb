"""Uncertainty estimates of the built-in model: pure numpy/torch functions, each cheap to test.

- Boxes: localization instability = 1 - mean IoU of the box matched (same class, greedy by IoU)
  in each test-time view (horizontal flip, rescales); a box not found again counts IoU 0.
  Class uncertainty: binary entropy (nats) of the box's class score.
- Findings: BALD = H(mean_k p_k) - mean_k H(p_k) (mutual information between the prediction and
  the weights, nats) over MC-dropout samples of calibrated probabilities; without MC dropout the
  binary entropy of the calibrated probability.
- Reports: mean token entropy and negative log-likelihood (nats per token) of the greedy draft,
  and disagreement = 1 - mean pairwise ROUGE-L F1 between MC-dropout drafts.
- Acquisition score (:func:`acquisition_parts`, :func:`prediction_score`) in [0, 1], from
  every detector candidate (low scores included), not only the boxes shown. Per candidate j of
  class k with score s_j, the class's operating threshold t_k (the fitted one; the fallback
  display threshold where the class has none) and localization instability v_j:

  - ambiguity a_j = H(sigmoid(logit s_j - logit t_k)) / ln 2: the binary entropy of the score
    re-centred on the operating point, 1 for a candidate exactly at its threshold (shown or
    not is a coin toss), near 0 far above or far below it;
  - instability u_j = min(1, s_j / t_k) * v_j: faint candidates count in proportion (a faint
    one that vanishes in another view says little);
  - likely miss m_k = p_k * [no box of class k shown]: the calibrated finding probability of a
    class nothing is shown for (a lesion the findings head sees and the boxes do not show,
    including the classes too thinly validated to show boxes at all).

  Image part I = 1 - (1 - A)(1 - U)(1 - M) with A = max_j a_j, U = max_j u_j, M = max_k m_k
  (maxima: one unsure lesion makes a case worth labelling; a mean would be diluted by the many
  confident background candidates). Findings part F = max_k finding uncertainty_k / ln 2;
  report part R = mean token entropy / ln(vocab). Combined = 0.6 I + 0.25 F + 0.15 R: every
  part counts (0 when absent) and the image part weighs more than the two parts the clinical
  text and labs feed into together, so a case is never ranked by its text and labs alone.
  Every part is in [0, 1] with no scale learnt from data, so a score means the same across
  versions.
- :func:`case_score` is the older entry point (no thresholds or finding probabilities known):
  class entropy stands for the ambiguity and there is no miss term.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import torch

from active_learning.ml.evaluate import rouge_l_f1

LN2 = math.log(2.0)
#: Weights of the image, findings and report parts in the combined acquisition score.
IMAGE_WEIGHT, FINDINGS_WEIGHT, REPORT_WEIGHT = 0.6, 0.25, 0.15
#: Threshold used for a class with no fitted operating threshold (the built-in default).
FALLBACK_THRESHOLD = 0.25


def binary_entropy(p: np.ndarray | float) -> np.ndarray:
    """Entropy in nats of Bernoulli(p), elementwise; 0 at p in {0, 1}, ln 2 at 0.5."""
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    return -(q * np.log(q) + (1 - q) * np.log(1 - q))


def bald(samples: np.ndarray) -> np.ndarray:
    """Mutual information (nats) per column of ``samples`` ``(K, ...)`` of probabilities."""
    samples = np.asarray(samples, dtype=np.float64)
    return np.maximum(
        binary_entropy(samples.mean(axis=0)) - binary_entropy(samples).mean(axis=0), 0.0
    )


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of boxes ``(N, 4)`` and ``(M, 4)`` given as x1, y1, x2, y2."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def localization_instability(
    boxes: np.ndarray,
    labels: np.ndarray,
    views: Sequence[tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Per box of ``boxes`` ``(N, 4)`` (x1, y1, x2, y2) with ``labels`` ``(N,)``: 1 - mean over
    ``views`` (each boxes, labels already mapped back to the same pixels) of the IoU of its greedy
    same-class match. Greedy: pairs are taken by decreasing IoU, each view box used once."""
    if len(boxes) == 0:
        return np.zeros(0)
    if not views:
        return np.zeros(len(boxes))
    total = np.zeros(len(boxes))
    for view_boxes, view_labels in views:
        iou = box_iou(boxes, view_boxes)
        iou = np.where(labels[:, None] == view_labels[None, :], iou, 0.0)
        matched = np.zeros(len(boxes))
        used_rows: set[int] = set()
        used_cols: set[int] = set()
        for flat in np.argsort(-iou, axis=None):
            row, col = divmod(int(flat), iou.shape[1])
            if iou[row, col] <= 0:
                break
            if row in used_rows or col in used_cols:
                continue
            matched[row] = iou[row, col]
            used_rows.add(row)
            used_cols.add(col)
        total += matched
    return 1.0 - total / len(views)


def token_uncertainty(logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> tuple:
    """Mean token entropy and mean NLL (nats per token) per sequence.

    ``logits`` ``(B, T, V)`` are the scores each generated token was chosen from, ``tokens``
    ``(B, T)`` the chosen tokens, ``mask`` ``(B, T)`` 1 for real tokens (up to and including
    the end token). The NLL is ``-log_softmax(logits)[token]``, what
    ``GenerationMixin.compute_transition_scores(..., normalize_logits=True)`` returns negated.
    """
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    entropy = -(log_probs.exp() * log_probs).sum(-1)
    nll = -log_probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    weights = mask.float()
    count = weights.sum(1).clamp(min=1.0)
    return (entropy * weights).sum(1) / count, (nll * weights).sum(1) / count


def draft_disagreement(drafts: Sequence[str]) -> float:
    """1 - mean pairwise ROUGE-L F1 of the drafts (lower-cased words); 0 when all agree."""
    if len(drafts) < 2:
        return 0.0
    tokens = [draft.lower().split() for draft in drafts]
    scores = [rouge_l_f1(a, b) for a, b in combinations(tokens, 2)]
    return 1.0 - float(np.mean(scores))


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
    return _combine(
        ambiguity=ambiguity,
        instability=instability_part,
        miss=miss,
        finding_uncertainty=finding_uncertainty,
        report_token_entropy=report_token_entropy,
        vocab_size=vocab_size,
    )


def _combine(
    *,
    ambiguity: float,
    instability: float,
    miss: float,
    finding_uncertainty: Sequence[float],
    report_token_entropy: float | None,
    vocab_size: int,
) -> AcquisitionParts:
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


def case_score(
    finding_uncertainty: Sequence[float],
    box_instability: Sequence[float],
    box_entropy: Sequence[float],
    report_token_entropy: float | None,
    vocab_size: int,
) -> float:
    """The combined score when only box instabilities and class entropies are known (the older
    entry point, without thresholds or finding probabilities): the ambiguity is the largest
    class entropy / ln 2 (re-centred on 0.5 rather than on an operating threshold), the
    instability the largest one given, and there is no miss term."""
    return _combine(
        ambiguity=min(1.0, max(box_entropy, default=0.0) / LN2),
        instability=min(1.0, max(box_instability, default=0.0)),
        miss=0.0,
        finding_uncertainty=finding_uncertainty,
        report_token_entropy=report_token_entropy,
        vocab_size=vocab_size,
    ).combined
