"""Uncertainty measures every model kind shares: numpy only (no torch, no Django).

- :func:`binary_entropy`: entropy in nats of Bernoulli probabilities (class scores, findings).
- :func:`bald`: BALD, the mutual information between the prediction and the weights, from
  MC-dropout samples of probabilities: ``H(mean_k p_k) - mean_k H(p_k)``, nats.
- :func:`draft_disagreement`: 1 - mean pairwise ROUGE-L F1 of MC-dropout report drafts.

What each model kind samples, and the acquisition score built from these, are in
:mod:`active_learning.ml.builtin.uncertainty` and :mod:`active_learning.ml.acquisition`.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np

from medloop.metrics.text import rouge_l_f1, word_tokens

__all__ = ["bald", "binary_entropy", "draft_disagreement"]


def binary_entropy(p: np.ndarray | float) -> np.ndarray:
    """Entropy in nats of Bernoulli(p), elementwise; 0 at p in {0, 1}, ln 2 at 0.5."""
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    return -(q * np.log(q) + (1 - q) * np.log(1 - q))


def bald(samples: np.ndarray) -> np.ndarray:
    """BALD (mutual information, nats) per column of ``samples`` ``(n_samples, ...)`` of Bernoulli
    probabilities: entropy of the mean minus the mean entropy, clipped at 0 (it is >= 0 up to
    rounding)."""
    samples = np.asarray(samples, dtype=np.float64)
    return np.maximum(
        binary_entropy(samples.mean(axis=0)) - binary_entropy(samples).mean(axis=0), 0.0
    )


def draft_disagreement(drafts: Sequence[str]) -> float:
    """1 - mean pairwise ROUGE-L F1 of the drafts (:func:`~medloop.metrics.text.word_tokens`:
    lower-cased words); 0 when all agree or there are fewer than two."""
    if len(drafts) < 2:
        return 0.0
    tokens = [word_tokens(draft) for draft in drafts]
    scores = [rouge_l_f1(a, b) for a, b in combinations(tokens, 2)]
    return 1.0 - float(np.mean(scores))
