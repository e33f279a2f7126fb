"""Case-level bootstrap: resample weights and percentile intervals.

A resample of ``n`` cases is ``n`` case indices drawn with replacement; it is represented by the
count of each case in it (an ``(n,)`` row of weights), so every figure is computed on weighted
cases and all resamples at once (:mod:`~active_learning.ml.verification.weighted`). The indices
are drawn exactly as ``scipy.stats.bootstrap(..., paired=True, rng=np.random.default_rng(seed))``
draws them (one ``rng.integers(0, n, (resamples, n))``), so with the same seed and the
``percentile`` method the intervals are the same resamples (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

#: At least this many resamples for an interval that a report states.
MIN_RESAMPLES = 1000


def resample_counts(n_cases: int, resamples: int, seed: int) -> NDArray[np.float64]:
    """``(resamples, n_cases)`` float64: how many times each case is drawn in each resample."""
    if n_cases < 1:
        raise ValueError("the bootstrap needs at least one case")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n_cases, (resamples, n_cases))
    flat = (index + np.arange(resamples)[:, None] * n_cases).ravel()
    counts = np.bincount(flat, minlength=resamples * n_cases)
    return counts.reshape(resamples, n_cases).astype(np.float64)


@dataclass(frozen=True)
class Interval:
    """A figure on all cases (``value``) and its percentile interval ``[low, high]`` over the
    resamples where it is defined (``resamples_used`` of ``resamples``); ``None`` where the
    figure is undefined on all cases or on every resample."""

    value: float | None
    low: float | None
    high: float | None
    resamples: int
    resamples_used: int

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "resamples": self.resamples,
            "resamples_used": self.resamples_used,
        }


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def percentile_interval(
    value: float, replicates: NDArray[np.float64], confidence: float = 0.95
) -> Interval:
    """The two-sided percentile interval of ``replicates`` (``(resamples,)``, NaN where the figure
    is undefined on a resample), quantiles interpolated linearly as ``scipy.stats.quantile``
    does by default."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    defined = replicates[np.isfinite(replicates)]
    low = high = None
    if defined.size:
        tail = (1.0 - confidence) / 2
        low, high = (float(q) for q in np.quantile(defined, [tail, 1.0 - tail]))
    return Interval(
        value=_finite(value),
        low=low,
        high=high,
        resamples=int(replicates.size),
        resamples_used=int(defined.size),
    )
