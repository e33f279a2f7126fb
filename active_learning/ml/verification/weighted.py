"""Figures on weighted cases, for many weightings at once.

Every function takes ``weights`` ``(R, n)``: one row per weighting of the ``n`` cases (row of
ones: the cases as they are; a bootstrap resample: how often each case is drawn) and returns one
value per row, ``(R,)`` float64, NaN where the figure is undefined for that row (no positive
case, no negative case...). Labels are 1.0 present, 0.0 absent, NaN not read; a case without a
label or a score does not count. Nothing here loops over rows, so 2,000 resamples cost a few
matrix products and cumulative sums.

Definitions (each checked against a library or by hand in the tests):

- :func:`operating_point`: a case is called positive when its score is ``>= threshold``;
  sensitivity TP/(TP+FN), specificity TN/(TN+FP), PPV TP/(TP+FP), NPV TN/(TN+FN).
- :func:`auroc`: P(score of a positive > score of a negative), ties one half (the Mann-Whitney
  statistic; scikit-learn's ``roc_auc_score`` with ``sample_weight``).
- :func:`average_precision`: sum over thresholds of (recall step) x precision, without
  interpolation (scikit-learn's ``average_precision_score``).
- :func:`box_average_precision`: AP@0.5 of one box class from every candidate, all-point
  interpolated (as :func:`active_learning.ml.paired_bootstrap.box_map50` for one class).
- :func:`froc`: per rate, the highest lesion sensitivity reached while false positives per
  image stay at or below the rate (as :func:`active_learning.ml.metrics.boxes.froc`).
- :func:`expected_calibration_error`: as :func:`active_learning.ml.calibration.
  expected_calibration_error`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Weights = NDArray[np.float64]
PerRow = NDArray[np.float64]

# Counts are sums of whole case weights; this absorbs float error in "fp <= rate x images".
_TOLERANCE = 1e-9


def _ratio(numerator: PerRow, denominator: PerRow) -> PerRow:
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _labelled(labels: NDArray[np.float64], scores: NDArray[np.float64]) -> NDArray[np.bool_]:
    return np.isfinite(labels) & np.isfinite(scores)


def operating_point(
    labels: NDArray[np.float64],
    scores: NDArray[np.float64],
    threshold: float,
    weights: Weights,
) -> dict[str, PerRow]:
    """Sensitivity, specificity, PPV and NPV at ``threshold`` (keys ``sensitivity``,
    ``specificity``, ``ppv``, ``npv``), and the weighted counts ``tp``, ``fp``, ``tn``, ``fn``."""
    keep = _labelled(labels, scores)
    y, called = labels[keep] == 1, scores[keep] >= threshold
    cells = np.stack([y & called, ~y & called, ~y & ~called, y & ~called], axis=1)
    tp, fp, tn, fn = (weights[:, keep] @ cells.astype(np.float64)).T
    return {
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


def _grouped(
    labels: NDArray[np.float64], scores: NDArray[np.float64], weights: Weights, *, descending: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Weighted positives and negatives per distinct score ``(R, G)``, scores in order."""
    keep = _labelled(labels, scores)
    s, y = scores[keep], labels[keep] == 1
    order = np.argsort(-s if descending else s, kind="stable")
    s, y = s[order], y[order]
    if not s.size:
        empty = np.zeros((weights.shape[0], 0))
        return empty, empty
    starts = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]]))
    w = weights[:, keep][:, order]
    positives = np.add.reduceat(np.where(y, w, 0.0), starts, axis=1)
    negatives = np.add.reduceat(np.where(y, 0.0, w), starts, axis=1)
    return positives, negatives


def auroc(labels: NDArray[np.float64], scores: NDArray[np.float64], weights: Weights) -> PerRow:
    """Weighted Mann-Whitney AUROC per row (ties one half)."""
    positives, negatives = _grouped(labels, scores, weights, descending=False)
    negatives_below = np.cumsum(negatives, axis=1) - negatives
    wins = np.sum(positives * (negatives_below + 0.5 * negatives), axis=1)
    return _ratio(wins, positives.sum(axis=1) * negatives.sum(axis=1))


def average_precision(
    labels: NDArray[np.float64], scores: NDArray[np.float64], weights: Weights
) -> PerRow:
    """Weighted average precision per row, scikit-learn's definition (no interpolation)."""
    positives, negatives = _grouped(labels, scores, weights, descending=True)
    true_pos = np.cumsum(positives, axis=1)
    called = true_pos + np.cumsum(negatives, axis=1)
    precision = np.zeros_like(called)
    np.divide(true_pos, called, out=precision, where=called > 0)
    total = true_pos[:, -1] if true_pos.shape[1] else np.zeros(weights.shape[0])
    ap = np.sum(positives * precision, axis=1)  # recall steps are positives / total
    return _ratio(ap, total)


@dataclass(frozen=True)
class _Curve:
    """A box class's candidates (in order of descending score) split into hits and false
    positives: cumulative weights of each ``(count, R)`` (a leading row of zeros), how many false
    positives precede each hit and how many hits precede each false positive (plus one entry,
    all hits, for "no false positive left out")."""

    hits: NDArray[np.float64]
    false: NDArray[np.float64]
    false_before_hit: NDArray[np.int64]
    hits_before_false: NDArray[np.int64]


def _curve(
    detection_case: NDArray[np.int64], detection_tp: NDArray[np.bool_], weights: Weights
) -> _Curve:
    # Detections along axis 0 and resamples along axis 1: each cumulative sum adds whole
    # contiguous rows, and only the rows of the kind summed are gathered.
    by_case = np.ascontiguousarray(weights.T)
    zeros = np.zeros((1, weights.shape[0]))
    hit = np.asarray(detection_tp, dtype=bool)
    hits = np.concatenate([zeros, np.cumsum(by_case[detection_case[hit]], axis=0)])
    false = np.concatenate([zeros, np.cumsum(by_case[detection_case[~hit]], axis=0)])
    false_so_far = np.cumsum(~hit)
    hits_so_far = np.cumsum(hit)
    return _Curve(
        hits=hits,
        false=false,
        false_before_hit=false_so_far[hit],
        hits_before_false=np.concatenate([hits_so_far[~hit], [int(hit.sum())]]),
    )


def box_average_precision(
    detection_case: NDArray[np.int64],
    detection_tp: NDArray[np.bool_],
    truth_per_case: NDArray[np.float64],
    weights: Weights,
) -> PerRow:
    """All-point interpolated AP of one box class. ``detection_case`` and ``detection_tp``: its
    candidates in order of descending score (case index, matched at IoU >= 0.5);
    ``truth_per_case`` ``(n,)``: its truth boxes per case. 0 with truth and no candidate."""
    positives = weights @ truth_per_case
    curve = _curve(detection_case, detection_tp, weights)
    if curve.hits.shape[0] == 1:  # no hit: AP 0 where there is truth
        return np.where(positives > 0, 0.0, np.nan)
    # Recall only steps at hits, and the interpolated precision (the best precision at this
    # recall or beyond) is reached at a hit, so the curve at the hits is the whole of AP.
    true_pos = curve.hits[1:]
    called = true_pos + curve.false[curve.false_before_hit]
    precision = true_pos / np.maximum(called, 1e-12)
    envelope = np.maximum.accumulate(precision[::-1], axis=0)[::-1]
    steps = np.diff(curve.hits, axis=0)
    return _ratio(np.sum(steps * envelope, axis=0), positives)


def froc(
    detection_case: NDArray[np.int64],
    detection_tp: NDArray[np.bool_],
    truth_per_case: NDArray[np.float64],
    images_per_case: NDArray[np.float64],
    weights: Weights,
    rates: Sequence[float],
) -> PerRow:
    """``(R, len(rates))``: lesion sensitivity at each rate of false positives per image, one
    box class, detections as :func:`box_average_precision`; NaN without truth boxes."""
    positives = weights @ truth_per_case
    images = weights @ images_per_case
    curve = _curve(detection_case, detection_tp, weights)
    columns = np.arange(weights.shape[0])
    out = np.zeros((weights.shape[0], len(rates)))
    for k, rate in enumerate(rates):
        # False positives only grow down the list: the candidates kept are those before the
        # first false positive that takes the count above the rate.
        kept_false = np.sum(curve.false[1:] <= rate * images + _TOLERANCE, axis=0)
        kept_hits = curve.hits_before_false[kept_false]
        out[:, k] = curve.hits[kept_hits, columns]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(positives[:, None] > 0, out / positives[:, None], np.nan)


def expected_calibration_error(
    labels: NDArray[np.float64], probabilities: NDArray[np.float64], weights: Weights, bins: int
) -> PerRow:
    """``sum_b n_b / N |mean(y_b) - mean(p_b)|`` over ``bins`` equal-width bins of ``p``."""
    keep = _labelled(labels, probabilities)
    p, y = probabilities[keep], labels[keep]
    index = np.minimum((p * bins).astype(int), bins - 1)
    gap = np.zeros((p.size, bins))
    gap[np.arange(p.size), index] = y - p
    w = weights[:, keep]
    return _ratio(np.abs(w @ gap).sum(axis=1), w.sum(axis=1))


def reliability_diagram(
    labels: NDArray[np.float64], probabilities: NDArray[np.float64], bins: int
) -> list[dict[str, float | int | None]]:
    """Per equal-width bin: its range, case count, mean predicted probability and observed
    frequency of "present" (``None`` for an empty bin)."""
    keep = _labelled(labels, probabilities)
    p, y = probabilities[keep], labels[keep]
    index = np.minimum((p * bins).astype(int), bins - 1)
    rows: list[dict[str, float | int | None]] = []
    for b in range(bins):
        in_bin = index == b
        count = int(in_bin.sum())
        rows.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "cases": count,
                "mean_probability": float(p[in_bin].mean()) if count else None,
                "observed": float(y[in_bin].mean()) if count else None,
            }
        )
    return rows
