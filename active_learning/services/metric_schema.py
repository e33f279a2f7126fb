"""The names of a version's metrics, read in one place: the promotion metrics a project may
choose, and the value a dotted name (``boxes.map_50``, ``reports.rouge_l_f_beta1.2``) or
``combined`` has in an evaluation (``ModelVersion.metrics["validation"]``). The cycle's
promotion, the Models page and the version evidence all read metrics through here."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

PROMOTION_METRICS = (
    "combined",
    "boxes.map_50",
    "boxes.map_50_95",
    "findings.auroc_macro",
    "reports.bleu_4",
    "reports.rouge_l_f_beta1.2",
    "reports.finding_f1_micro",
)
# ``combined``: the mean of these where they are defined.
COMBINED_PARTS = ("boxes.map_50", "findings.auroc_macro", "reports.finding_f1_micro")


def score(value: Any) -> float | None:
    """A metric as a number, None where it is missing or not a score (pycocotools writes -1
    for a class without ground truth; NaN where a metric is undefined)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return float(value)


def metric_value(metrics: Mapping[str, Any], name: str) -> float | None:
    """The metric ``name`` of an evaluation: a group, then a metric whose own name may hold dots
    (``reports.rouge_l_f_beta1.2``), or ``combined``, the mean of box mAP@0.5, finding AUROC
    (macro) and report finding F1 where they are defined. None where it is not a score."""
    if name == "combined":
        parts = [metric_value(metrics, key) for key in COMBINED_PARTS]
        defined = [p for p in parts if p is not None]
        return sum(defined) / len(defined) if defined else None
    group, _, key = name.partition(".")
    section = metrics.get(group)
    return score(section.get(key)) if isinstance(section, Mapping) else None
