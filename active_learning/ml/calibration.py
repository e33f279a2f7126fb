"""Calibration of finding probabilities: one temperature for all findings, fitted on held-out
cases, and the expected calibration error. numpy only (no torch, no Django): both model kinds
and the evaluation use these.

- :func:`is_calibration_case`: the fixed hold-out, bucket 0 of :data:`CALIBRATION_BUCKETS` by
  sha256 of the case id; every model kind holds out the same cases.
- :func:`fit_temperature`, :func:`apply_temperature`: temperature scaling ``sigmoid(logit / T)``.
- :func:`expected_calibration_error`: ECE of the probability of "present".
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CALIBRATION_BUCKETS",
    "TEMPERATURE_BOUNDS",
    "apply_temperature",
    "expected_calibration_error",
    "fit_temperature",
    "is_calibration_case",
]

_EPS = 1e-7  # probabilities are clipped to [eps, 1 - eps] before logits and logs
CALIBRATION_BUCKETS = 10
TEMPERATURE_BOUNDS = (0.05, 20.0)


def is_calibration_case(case_id: object) -> bool:
    """True for the cases held out of training to fit the temperature: the bucket of the whole
    sha256 of ``str(case_id)`` modulo :data:`CALIBRATION_BUCKETS` is 0, about one case in ten,
    the same on every run and for every model kind. (The whole digest, not its first byte: 256
    is not a multiple of 10, so a byte modulo 10 would favour the low buckets.)"""
    digest = hashlib.sha256(str(case_id).encode("utf-8")).digest()
    return int.from_bytes(digest, "big") % CALIBRATION_BUCKETS == 0


def _probabilities(values: ArrayLike) -> NDArray[np.float64]:
    p = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("probabilities must be finite and within [0, 1]")
    return p


def _binary_labels(values: ArrayLike, n: int) -> NDArray[np.float64]:
    y = np.asarray(values, dtype=np.float64).ravel()
    if y.shape != (n,):
        raise ValueError(f"expected {n} labels, got {y.size}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 or 1")
    return y


def _logits(p: NDArray[np.float64]) -> NDArray[np.float64]:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.exp(-np.logaddexp(0.0, -z))


def _nll(logits: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """Mean binary negative log-likelihood of labels ``y`` under ``sigmoid(logits)``, in nats."""
    return float(np.mean(np.logaddexp(0.0, -logits) * y + np.logaddexp(0.0, logits) * (1 - y)))


def _pool(scores: Mapping[str, Sequence[float]] | ArrayLike, labels: Any) -> tuple[Any, Any]:
    if isinstance(scores, Mapping):
        keys = list(scores)
        return [v for k in keys for v in scores[k]], [v for k in keys for v in labels[k]]
    return scores, labels


def fit_temperature(
    scores: Mapping[str, Sequence[float]] | ArrayLike,
    labels: Mapping[str, Sequence[int]] | ArrayLike,
    *,
    from_logits: bool = False,
    bounds: tuple[float, float] = TEMPERATURE_BOUNDS,
) -> float:
    """One temperature ``T`` for binary finding probabilities, fitted on a validation set.

    ``scores`` are probabilities of "present" (or logits with ``from_logits=True``), any shape, or
    a dict class -> list pooled over classes (one ``T`` for all findings); ``labels`` are 0/1 in the
    same layout. ``T`` minimises the mean NLL of ``sigmoid(logit / T)`` over ``bounds``; NLL is
    convex in ``1 / T`` (logistic regression without intercept), hence unimodal in ``log T``, so a
    golden-section search on ``log T`` finds the optimum to ~1e-9 relative. ``T > 1`` softens
    overconfident scores, ``T < 1`` sharpens underconfident ones; ranking (AUROC) is unchanged.
    """
    raw_scores, raw_labels = _pool(scores, labels)
    z = np.asarray(raw_scores, dtype=np.float64).ravel()
    if not from_logits:
        z = _logits(_probabilities(z))
    y = _binary_labels(raw_labels, z.size)
    if z.size == 0:
        raise ValueError("cannot fit a temperature on an empty set")

    def loss(log_t: float) -> float:
        return _nll(z / math.exp(log_t), y)

    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    while hi - lo > 1e-9:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return math.exp((lo + hi) / 2)


@overload
def apply_temperature(
    probabilities: Mapping[str, Sequence[float]], temperature: float
) -> dict[str, list[float]]: ...
@overload
def apply_temperature(probabilities: ArrayLike, temperature: float) -> NDArray[np.float64]: ...
def apply_temperature(
    probabilities: Mapping[str, Sequence[float]] | ArrayLike, temperature: float
) -> dict[str, list[float]] | NDArray[np.float64]:
    """``sigmoid(logit(p) / T)``: a dict class -> list gives a dict, anything else an array of the
    same shape. Probabilities are clipped to [1e-7, 1 - 1e-7] first, so 0 and 1 stay finite."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if isinstance(probabilities, Mapping):
        return {k: apply_temperature(v, temperature).tolist() for k, v in probabilities.items()}
    p = np.asarray(probabilities, dtype=np.float64)
    return _sigmoid(_logits(_probabilities(p)) / temperature).reshape(p.shape)


def expected_calibration_error(
    probabilities: ArrayLike, labels: ArrayLike, bins: int = 10
) -> float:
    """ECE of binary probabilities of "present": ``sum_b n_b / N * |mean(y_b) - mean(p_b)|`` over
    ``bins`` equal-width bins of ``p`` on [0, 1] (bin ``b`` is ``[b/bins, (b+1)/bins)``, the last
    one includes 1). This is the reliability-diagram error of the positive-class probability."""
    p = _probabilities(probabilities)
    y = _binary_labels(labels, p.size)
    if p.size == 0:
        raise ValueError("cannot compute ECE on an empty set")
    index = np.minimum((p * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        in_bin = index == b
        if in_bin.any():
            error += in_bin.mean() * abs(y[in_bin].mean() - p[in_bin].mean())
    return float(error)
