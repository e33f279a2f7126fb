"""Finding metrics of suggestion models: AUROC per class and macro, calibration before and after
temperature scaling (:mod:`active_learning.ml.calibration`)."""

from __future__ import annotations

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

__all__ = ["finding_metrics"]


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
