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
from itertools import combinations

import numpy as np
import torch

from active_learning.ml.acquisition import (  # noqa: F401 (re-exported for the model's code)
    AcquisitionParts,
    acquisition_parts,
    binary_entropy,
    box_thresholds,
    combine_parts,
    prediction_parts,
    prediction_score,
)
from active_learning.ml.evaluate import rouge_l_f1

LN2 = math.log(2.0)


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
