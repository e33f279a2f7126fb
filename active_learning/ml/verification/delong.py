"""DeLong's test for two correlated AUROCs measured on the same cases.

DeLong, DeLong & Clarke-Pearson (1988), computed with the midrank algorithm of Sun & Xu (2014):
for ``m`` positives and ``n`` negatives, the structural components of each model are
``V10_i = (rank of positive i among all cases - its rank among positives) / n`` and
``V01_j = 1 - (rank of negative j among all cases - its rank among negatives) / m`` (midranks,
so ties count one half); AUROC is the mean of ``V10``; the covariance of the two AUROCs is
``S10 / m + S01 / n`` with ``S10``, ``S01`` the sample covariance matrices of the components.
The difference ``A - B`` has ``z = (A - B) / sqrt(var A + var B - 2 cov)`` and a two-sided
normal p-value. Ranks from ``scipy.stats.rankdata``; O((m + n) log(m + n)).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm, rankdata


@dataclass(frozen=True)
class DeLongResult:
    """Both AUROCs with their DeLong standard errors, the difference ``auroc_a - auroc_b`` with
    its standard error, ``confidence`` interval, ``z`` and two-sided ``p_value`` (``z`` and
    ``p_value`` are ``None`` when the difference has no variance, e.g. identical scores)."""

    auroc_a: float
    auroc_b: float
    se_a: float
    se_b: float
    covariance: float
    difference: float
    se_difference: float
    low: float
    high: float
    z: float | None
    p_value: float | None
    positives: int
    negatives: int
    confidence: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def structural_components(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``V10`` ``(k, m)`` and ``V01`` ``(k, n)`` of ``k`` score rows ``(k, cases)`` against 0/1
    ``labels`` ``(cases,)``."""
    y = np.asarray(labels)
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    positive = y == 1
    m, n = int(positive.sum()), int((~positive).sum())
    if m == 0 or n == 0:
        raise ValueError(f"DeLong needs positives and negatives, got {m} and {n}")
    x, z = s[:, positive], s[:, ~positive]
    all_ranks = rankdata(np.concatenate([x, z], axis=1), axis=1)
    v10 = (all_ranks[:, :m] - rankdata(x, axis=1)) / n
    v01 = 1.0 - (all_ranks[:, m:] - rankdata(z, axis=1)) / m
    return v10, v01


def delong_test(
    labels: ArrayLike, scores_a: ArrayLike, scores_b: ArrayLike, *, confidence: float = 0.95
) -> DeLongResult:
    """DeLong's test of AUROC(``scores_a``) = AUROC(``scores_b``) on the same cases; ``labels``
    are 0/1 (cases without a label must be left out by the caller)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    y = np.asarray(labels)
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    a, b = np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)
    if not (a.shape == b.shape == y.shape):
        raise ValueError(f"labels {y.shape}, scores {a.shape} and {b.shape} must match")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("scores must be finite")
    v10, v01 = structural_components(y, np.stack([a, b]))
    m, n = v10.shape[1], v01.shape[1]
    aurocs = v10.mean(axis=1)
    # np.cov of a single observation is undefined; one positive or negative contributes 0.
    s10 = np.cov(v10) if m > 1 else np.zeros((2, 2))
    s01 = np.cov(v01) if n > 1 else np.zeros((2, 2))
    covariance = s10 / m + s01 / n
    variance = covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1]
    difference = float(aurocs[0] - aurocs[1])
    se = float(np.sqrt(max(variance, 0.0)))
    quantile = float(norm.ppf(0.5 + confidence / 2))
    z = p = None
    if se > 1e-12:
        z = difference / se
        p = float(2 * norm.sf(abs(z)))
    return DeLongResult(
        auroc_a=float(aurocs[0]),
        auroc_b=float(aurocs[1]),
        se_a=float(np.sqrt(max(covariance[0, 0], 0.0))),
        se_b=float(np.sqrt(max(covariance[1, 1], 0.0))),
        covariance=float(covariance[0, 1]),
        difference=difference,
        se_difference=se,
        low=difference - quantile * se,
        high=difference + quantile * se,
        z=z,
        p_value=p,
        positives=m,
        negatives=n,
        confidence=confidence,
    )
