"""Uncertainty estimates of the built-in model: pure numpy/torch functions, each cheap to test.

- Boxes: localization instability = 1 - mean IoU of the box matched (same class, greedy by IoU)
  in each test-time view (horizontal flip, rescales); a box not found again counts IoU 0.
  Class uncertainty: binary entropy (nats) of the box's class score.
- Findings: BALD = H(mean_k p_k) - mean_k H(p_k) (mutual information between the prediction and
  the weights, nats) over MC-dropout samples of calibrated probabilities; without MC dropout the
  binary entropy of the calibrated probability.
- Reports: mean token entropy and negative log-likelihood (nats per token) of the greedy draft,
  and disagreement = 1 - mean pairwise ROUGE-L F1 between MC-dropout drafts.
- Acquisition score: :mod:`active_learning.ml.acquisition` (every candidate, re-centred on its
  class's operating threshold, with a likely-miss term; torch-free, so ranking can read it).
- :func:`case_score` is the older entry point (no thresholds or finding probabilities known):
  class entropy stands for the ambiguity and there is no miss term.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from active_learning.ml.acquisition import (  # noqa: F401 (re-exported for the model's code)
    AcquisitionParts,
    acquisition_parts,
    box_thresholds,
    combine_parts,
    prediction_parts,
    prediction_score,
)
from active_learning.ml.uncertainty import (  # noqa: F401 (re-exported for the model's code)
    bald,
    binary_entropy,
    draft_disagreement,
)
from medloop.metrics.boxes import greedy_matches
from medloop.metrics.boxes import iou_matrix as box_iou

LN2 = math.log(2.0)


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
        for row, col in greedy_matches(iou):
            total[row] += iou[row, col]
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
    return combine_parts(
        ambiguity=min(1.0, max(box_entropy, default=0.0) / LN2),
        instability=min(1.0, max(box_instability, default=0.0)),
        miss=0.0,
        finding_uncertainty=finding_uncertainty,
        report_token_entropy=report_token_entropy,
        vocab_size=vocab_size,
    ).combined
