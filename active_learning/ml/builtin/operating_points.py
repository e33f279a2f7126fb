"""Operating points: what a version may show, chosen on the validation labels.

Pure numpy (box matching in :mod:`active_learning.ml.evaluate`); the model calls these with its
predictions on the cycle's validation cases and stores the result in its checkpoint.

- Boxes, per class: :func:`box_operating_point` sorts every candidate of the class over the
  validation images by score, matches them greedily (COCO's rule: in score order, each truth box
  once, same class, IoU >= 0.5) and picks the **lowest** score threshold at which the precision of
  the candidates at or above it reaches the target, i.e. the most recall the target allows, at
  a true candidate's score (below it only false positives would be added)
  (with ``confidence`` > 0, the precision's one-sided Wilson lower bound must reach it:
  :func:`precision_lower_bound`). A class is *reliable* (its boxes are shown) only with at
  least ``min_positives`` validation boxes, AP@0.5 (from all candidates) of at least
  ``min_ap``, and a threshold that reaches the target; otherwise ``reason`` says in words why
  not.
- Findings, per class: :func:`finding_operating_point` picks, on calibrated probabilities, the
  lowest probability above which the positive predictive value reaches the target
  (``prefill_threshold``: prefill "present" at or above it) and the highest probability below
  which the negative predictive value reaches ``absent_target`` (``absent_threshold``: prefill
  "absent" at or below it); both None with too few positives (or negatives).
- Report: :func:`report_operating_point`, the report metric and the drafts' finding F1 against
  their floors, on at least ``min_reports`` validation reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

from active_learning.ml.evaluate import match_candidates


def precision_lower_bound(true: np.ndarray, count: np.ndarray, confidence: float) -> np.ndarray:
    """The one-sided Wilson score lower bound, at ``confidence``, of a precision of ``true`` hits
    among ``count`` candidates; ``confidence`` 0 is the plain precision ``true / count``.

    Why a bound: the lowest threshold whose precision reaches the target is the far end of a
    noisy curve, chosen because the validation cases happened to put it there. On new cases its
    precision falls back below the target as often as not (label-efficiency bench, 5 seeds:
    0.66-0.69 shown on held-out cases at a 0.7 target). The bound asks more of a threshold held
    up by a few validation boxes than of one held up by many."""
    true = np.asarray(true, dtype=np.float64)
    count = np.asarray(count, dtype=np.float64)
    p = true / np.maximum(count, 1)
    if confidence <= 0:
        return p
    z = float(NormalDist().inv_cdf(confidence))
    z2 = z * z
    centre = p + z2 / (2 * count)
    spread = z * np.sqrt(p * (1 - p) / count + z2 / (4 * count * count))
    return (centre - spread) / (1 + z2 / count)


def lowest_threshold_for_precision(
    scores: Sequence[float] | np.ndarray,
    is_true: Sequence[bool] | np.ndarray,
    target: float,
    *,
    confidence: float = 0.0,
) -> tuple[float | None, float | None, int]:
    """The lowest score ``t`` among ``scores`` such that the candidates scoring ``>= t`` have
    precision ``>= target`` (with ``confidence`` > 0: whose precision's one-sided lower bound at
    that confidence, :func:`precision_lower_bound`, reaches the target); with its precision and
    the number of true candidates at or above it. ``(None, None, 0)`` when no threshold reaches
    the target. Tied scores are taken together.

    ``t`` is always the score of a true candidate (a corner of the precision-recall curve):
    going lower to a false one gains no recall, only false positives, however far the
    precision stays above the target (a finding head that separates the validation cases
    perfectly would otherwise prefill "present" down to where 30 % of its prefills are wrong)."""
    if not (confidence == 0 or 0.5 <= confidence < 1):
        # Below 0.5 the "lower" bound lies above the precision: more lenient, not surer.
        raise ValueError("confidence must be 0 or in [0.5, 1)")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    s = np.asarray(scores, dtype=np.float64)[order]
    t = np.asarray(is_true, dtype=bool)[order]
    if s.size == 0:
        return None, None, 0
    true_cum = np.cumsum(t)
    count = np.arange(1, s.size + 1)
    precision = true_cum / count
    bound = precision_lower_bound(true_cum, count, confidence)
    # Only the last of a run of equal scores is a threshold that can actually be applied, and
    # only where that run holds a true candidate (it adds recall).
    ends = np.where(np.append(s[1:] != s[:-1], True))[0]
    gains = np.diff(np.concatenate([[0], true_cum[ends]])) > 0
    valid = ends[gains & (bound[ends] >= target - 1e-12)]
    if valid.size == 0:
        return None, None, 0
    k = int(valid[-1])
    return float(s[k]), float(precision[k]), int(true_cum[k])


def box_operating_point(
    *,
    scores: Sequence[float],
    is_true: Sequence[bool],
    positives: int,
    ap50: float | None,
    target: float,
    min_positives: int,
    min_ap: float,
    confidence: float = 0.0,
) -> dict[str, Any]:
    """The contract's per-class box operating point from the class's matched candidates
    (``is_true``: matched to a truth box at IoU >= 0.5) and its ``positives`` truth boxes; the
    threshold's precision must reach ``target`` at one-sided ``confidence``
    (:func:`lowest_threshold_for_precision`)."""
    threshold, precision, hits = lowest_threshold_for_precision(
        scores, is_true, target, confidence=confidence
    )
    recall = hits / positives if positives and threshold is not None else None
    point: dict[str, Any] = {
        "threshold": threshold,
        "validation_positives": int(positives),
        "ap50": ap50,
        "precision": precision,
        "recall": recall,
        "reliable": False,
        "reason": "",
    }
    if positives < min_positives:
        point["reason"] = (
            f"still learning: {positives} of {min_positives} validation examples labelled"
        )
    elif ap50 is None or ap50 < min_ap:
        shown = "none" if ap50 is None else f"{ap50:.2f}"
        point["reason"] = f"average precision {shown} is below the floor of {min_ap:.2f}"
    elif threshold is None:
        sure = f" with {confidence:.0%} confidence" if confidence > 0 else ""
        point["reason"] = f"no score threshold reaches precision {target:.2f}{sure}"
    else:
        point["reliable"] = True
        point["reason"] = (
            f"shown at score >= {threshold:.3f}: precision {precision:.2f}, "
            f"recall {recall:.2f} on {positives} validation boxes"
        )
    return point


def fit_box_operating_points(
    truth: Sequence[Any],
    candidates: Sequence[Any],
    classes: Sequence[str],
    *,
    ap50_per_class: dict[str, float | None],
    target: float,
    min_positives: int,
    min_ap: float,
    confidence: float = 0.0,
) -> dict[str, dict[str, Any]]:
    """Per class, :func:`box_operating_point` from truth and candidate boxes (objects or
    mappings with ``image_id, finding, x, y, width, height`` and ``score`` for candidates)."""
    matched = match_candidates(truth, candidates, iou_threshold=0.5)
    points = {}
    for name in classes:
        rows = [(score, hit) for finding, score, hit in matched.candidates if finding == name]
        points[name] = box_operating_point(
            scores=[r[0] for r in rows],
            is_true=[r[1] for r in rows],
            positives=matched.positives.get(name, 0),
            ap50=ap50_per_class.get(name),
            target=target,
            min_positives=min_positives,
            min_ap=min_ap,
            confidence=confidence,
        )
    return points


def finding_operating_point(
    probabilities: Sequence[float],
    labels: Sequence[int],
    *,
    target: float,
    absent_target: float,
    min_positives: int,
    confidence: float = 0.0,
) -> dict[str, Any]:
    """Prefill thresholds for one finding from calibrated probabilities and 0/1 labels; with
    ``confidence`` > 0 the predictive values must be reached by their one-sided lower bound
    (as the box thresholds are), so that a handful of validation cases cannot set a threshold
    that only happened to reach the target on them."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    positives, negatives = int(y.sum()), int((1 - y).sum()) if y.size else 0
    point: dict[str, Any] = {
        "prefill_threshold": None,
        "absent_threshold": None,
        "positives": positives,
        "negatives": negatives,
        "ppv": None,
        "reliable": False,
        "reason": "",
    }
    if positives < min_positives:
        point["reason"] = (
            f"still learning: {positives} of {min_positives} validation examples labelled"
        )
        return point
    threshold, ppv, _ = lowest_threshold_for_precision(p, y == 1, target, confidence=confidence)
    if negatives >= min_positives:
        # NPV from below: the same search on 1 - p for the negatives.
        low, _, _ = lowest_threshold_for_precision(
            1 - p, y == 0, absent_target, confidence=confidence
        )
        point["absent_threshold"] = None if low is None else float(1 - low)
    if threshold is None:
        point["reason"] = f"no probability reaches a predictive value of {target:.2f}"
        return point
    point.update(
        prefill_threshold=threshold,
        ppv=ppv,
        reliable=True,
        reason=f"prefilled at probability >= {threshold:.2f} (PPV {ppv:.2f})",
    )
    return point


def fit_finding_operating_points(
    probabilities: Mapping[str, Sequence[float]],
    labels: Mapping[str, Sequence[int]],
    classes: Sequence[str],
    *,
    target: float,
    min_positives: int,
    confidence: float = 0.0,
) -> dict[str, dict[str, Any]]:
    """:func:`finding_operating_point` for every class; "absent" is prefilled only where the
    negative predictive value reaches ``max(target, 0.9)``: a missed finding costs more than an
    unconfirmed one."""
    return {
        c: finding_operating_point(
            probabilities[c],
            labels[c],
            target=target,
            absent_target=max(target, 0.9),
            min_positives=min_positives,
            confidence=confidence,
        )
        for c in classes
    }


def report_operating_point(
    value: float | None,
    *,
    metric: str,
    floor: float,
    finding_f1: float | None = None,
    finding_f1_floor: float | None = None,
    reports: int | None = None,
    min_reports: int = 0,
) -> dict[str, Any]:
    """Whether drafts may be shown: the validation report metric against its floor and, when
    ``finding_f1_floor`` is given, the drafts' clinical finding F1 (the findings the drafts state
    against the ones the reports state) against its own floor. Word overlap alone passes
    drafts that share the reports' boilerplate and state the wrong finding.

    Both are judged on ``reports`` validation reports, which must be at least ``min_reports``:
    a metric on a handful of reports is not evidence (a demo version with 3 validation reports
    had ROUGE-L 0.88 and finding F1 0.89, and drafted "normal chest" on a nodule case)."""
    reliable = value is not None and value >= floor
    if value is None:
        reason = "no validation reports to judge the drafts on"
    elif reports is not None and reports < min_reports:
        noun = "report" if reports == 1 else "reports"
        reason = (
            f"the drafts are judged on {reports} validation {noun}, fewer than the "
            f"{min_reports} needed; {metric} {value:.2f} there"
        )
        reliable = False
    elif reliable:
        reason = f"{metric} {value:.2f} reaches the floor of {floor:.2f}"
    else:
        reason = f"{metric} {value:.2f} is below the floor of {floor:.2f}"
    point: dict[str, Any] = {"metric": metric, "value": value, "floor": floor}
    if reports is not None:
        point["reports"], point["min_reports"] = reports, min_reports
    too_few = reports is not None and reports < min_reports
    if finding_f1_floor is not None and value is not None:
        point["finding_f1"], point["finding_f1_floor"] = finding_f1, finding_f1_floor
    if finding_f1_floor is not None and value is not None and not too_few:
        if finding_f1 is None:
            if reliable:
                reason = (
                    f"{reason}, but no validation report states a finding to check the drafts' "
                    "findings against"
                )
            reliable = False
        elif finding_f1 < finding_f1_floor:
            clause = (
                f"the findings the drafts state reach F1 {finding_f1:.2f}, below the floor of "
                f"{finding_f1_floor:.2f}"
            )
            reason = f"{reason}, but {clause}" if reliable else f"{reason}; {clause}"
            reliable = False
        elif reliable:
            reason = f"{reason}; finding F1 {finding_f1:.2f} reaches {finding_f1_floor:.2f}"
    point["reliable"] = reliable
    point["reason"] = reason
    return point


def unfitted(classes: Sequence[str], reason: str) -> dict[str, Any]:
    """Operating points when there is no validation evidence at all: nothing is reliable."""
    return {
        "boxes": {
            name: {
                "threshold": None,
                "validation_positives": 0,
                "ap50": None,
                "precision": None,
                "recall": None,
                "reliable": False,
                "reason": reason,
            }
            for name in classes
        },
        "findings": {
            name: {
                "prefill_threshold": None,
                "absent_threshold": None,
                "positives": 0,
                "negatives": 0,
                "ppv": None,
                "reliable": False,
                "reason": reason,
            }
            for name in classes
        },
        "report": {
            "metric": "rouge_l_f_beta1.2",
            "value": None,
            "floor": None,
            "reliable": False,
            "reason": reason,
        },
        "validation_cases": 0,
    }
