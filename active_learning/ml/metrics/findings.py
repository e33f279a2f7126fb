"""Finding metrics of suggestion models: AUROC per class and macro, calibration before and after
temperature scaling (:mod:`active_learning.ml.calibration`); the prefill rule of a findings
operating point (:func:`prefill`, which the workspace applies) and its predictive values on
labelled cases (:func:`prefill_metrics`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from active_learning.ml.calibration import (
    _binary_labels,
    _logits,
    _nll,
    _pool,
    _probabilities,
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
)
from active_learning.ml.metrics import macro_mean as _macro

__all__ = ["finding_metrics", "prefill", "prefill_metrics"]


def finding_metrics(
    labels: Mapping[str, Sequence[int]],
    probabilities: Mapping[str, Sequence[float]],
    *,
    temperature: float | None = None,
    bins: int = 10,
) -> dict[str, Any]:
    """AUROC and calibration of case-level finding probabilities, per class and macro.

    ``labels[c]`` are 0/1 per case, ``probabilities[c]`` the predicted probability that finding
    ``c`` is present, same length. AUROC (scikit-learn) is ``None`` for a class whose labels take
    one value only and that class is left out of ``auroc_macro``. ECE (:func:`expected_calibration_
    error`, ``bins`` equal-width bins) and mean NLL are reported before and after temperature
    scaling with ``temperature``; pass the one fitted on a validation set
    (:func:`fit_temperature`). Without it, ``T`` is fitted on these very cases, an optimistic
    (in-sample) "after", flagged by ``temperature_fitted_here``.
    """
    classes = list(labels)
    if set(classes) != set(probabilities):
        raise ValueError("labels and probabilities must name the same classes")
    fitted_here = temperature is None
    t = fit_temperature(probabilities, labels) if temperature is None else float(temperature)
    calibrated = apply_temperature(probabilities, t)
    auroc: dict[str, float | None] = {}
    ece_before: dict[str, float] = {}
    ece_after: dict[str, float] = {}
    for c in classes:
        p = _probabilities(probabilities[c])
        y = _binary_labels(labels[c], p.size)
        auroc[c] = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None
        ece_before[c] = expected_calibration_error(p, y, bins)
        ece_after[c] = expected_calibration_error(calibrated[c], y, bins)
    pooled_p, pooled_y = _pool(probabilities, labels)
    z = _logits(_probabilities(pooled_p))
    y_all = _binary_labels(pooled_y, z.size)
    return {
        "auroc": auroc,
        "auroc_macro": _macro(auroc.values()),
        "ece_before": ece_before,
        "ece_before_macro": _macro(ece_before.values()),
        "ece_after": ece_after,
        "ece_after_macro": _macro(ece_after.values()),
        "nll_before": _nll(z, y_all),
        "nll_after": _nll(z / t, y_all),
        "temperature": t,
        "temperature_fitted_here": fitted_here,
        "n_cases": len(labels[classes[0]]) if classes else 0,
    }


def _number(value: Any) -> float | None:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if is_number and math.isfinite(value) else None


def prefill(probability: Any, point: Any) -> str | None:
    """What a findings operating point (``operating_points.finding_operating_point``) prefills
    for a calibrated probability: "present" at or above its ``prefill_threshold``, "absent" at
    or below its ``absent_threshold``, None (left for the annotator) in between, for a point that
    is not reliable, or for a value that is not a number (points are read back from JSON)."""
    p = _number(probability)
    if not isinstance(point, Mapping) or point.get("reliable") is not True or p is None:
        return None
    present, absent = (
        _number(point.get("prefill_threshold")),
        _number(point.get("absent_threshold")),
    )
    if present is not None and p >= present:
        return "present"
    if absent is not None and p <= absent:
        return "absent"
    return None


def _share(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def prefill_metrics(
    labels: Mapping[str, Sequence[int]],
    probabilities: Mapping[str, Sequence[float]],
    points: Mapping[str, Any],
) -> dict[str, Any]:
    """How right the prefilled findings are on labelled cases, per class and pooled.

    ``labels[c]`` (0/1) and ``probabilities[c]`` per case as in :func:`finding_metrics`;
    ``points``: the version's findings operating points by class. Per class: ``present`` and
    ``absent`` (cases prefilled so), ``ppv`` (share of "present" prefills that are present) and
    ``npv`` (of "absent" ones that are absent), ``coverage`` (share of the cases prefilled
    either way), ``wrong`` (prefills the annotator must overturn). Pooled over the classes:
    ``ppv``, ``npv``, ``wrong_per_case`` and ``coverage`` (of case-finding pairs); a predictive
    value is None when nothing was prefilled that way."""
    per_class: dict[str, dict[str, Any]] = {}
    totals = {"present": 0, "present_true": 0, "absent": 0, "absent_true": 0, "pairs": 0}
    cases = 0
    for c in labels:
        y = [int(bool(v)) for v in labels[c]]
        p = list(probabilities[c])
        if len(y) != len(p):
            raise ValueError(f"{c}: {len(y)} labels but {len(p)} probabilities")
        cases = max(cases, len(y))
        decided = [prefill(value, points.get(c)) for value in p]
        present = sum(d == "present" for d in decided)
        present_true = sum(d == "present" and t == 1 for d, t in zip(decided, y, strict=True))
        absent = sum(d == "absent" for d in decided)
        absent_true = sum(d == "absent" and t == 0 for d, t in zip(decided, y, strict=True))
        per_class[c] = {
            "present": present,
            "absent": absent,
            "ppv": _share(present_true, present),
            "npv": _share(absent_true, absent),
            "coverage": _share(present + absent, len(y)),
            "wrong": (present - present_true) + (absent - absent_true),
            "positives": sum(y),
        }
        for key, value in (("present", present), ("present_true", present_true),
                           ("absent", absent), ("absent_true", absent_true),
                           ("pairs", len(y))):  # fmt: skip
            totals[key] += value
    wrong = (totals["present"] - totals["present_true"]) + (
        totals["absent"] - totals["absent_true"]
    )
    return {
        "per_class": per_class,
        "ppv": _share(totals["present_true"], totals["present"]),
        "npv": _share(totals["absent_true"], totals["absent"]),
        "present": totals["present"],
        "absent": totals["absent"],
        "wrong_per_case": _share(wrong, cases),
        "coverage": _share(totals["present"] + totals["absent"], totals["pairs"]),
    }
