"""The names of a version's metrics, read in one place: the promotion metrics a project may
choose (per model kind: those its evaluation stores and the promotion guard's paired bootstrap
recomputes), and the value a dotted name (``boxes.map_50``, ``reports.rouge_l_f_beta1.2``) or
``combined`` has in an evaluation (``ModelVersion.metrics["validation"]``). The cycle's
promotion, the Models page and the version evidence all read metrics through here."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# The radiograph kinds' promotion metrics (the built-in model, a hospital's checkpoint).
RADIOGRAPH_PROMOTION_METRICS = (
    "combined",
    "boxes.map_50",
    "boxes.map_50_95",
    "findings.auroc_macro",
    "reports.bleu_4",
    "reports.rouge_l_f_beta1.2",
    "reports.finding_f1_micro",
)
# The 3D CT detector's (issue 21): the lung nodule measures, FROC mean (LUNA16: sensitivity at
# 1/8 ... 8 false positives per scan) and AP, both at the project's 3D match IoU (froc_iou,
# 0.1 by default), and AP at 3D IoU 0.5. It has no findings or report head.
CT_PROMOTION_METRICS = ("combined", "froc.froc_mean", "boxes.map_at_match_iou", "boxes.map_50")
PROMOTION_METRICS_BY_KIND = {"ct_retinanet3d": CT_PROMOTION_METRICS}
# Every promotion metric some kind can compute (the settings' choices before the kind is known).
PROMOTION_METRICS = tuple(dict.fromkeys([*RADIOGRAPH_PROMOTION_METRICS, *CT_PROMOTION_METRICS]))

# ``combined``: the mean of these where they are defined (a CT version's: its two lung nodule
# measures; every other kind's: box mAP@0.5, finding AUROC and report finding F1).
COMBINED_PARTS = ("boxes.map_50", "findings.auroc_macro", "reports.finding_f1_micro")
COMBINED_PARTS_BY_KIND = {"ct_retinanet3d": ("froc.froc_mean", "boxes.map_at_match_iou")}

# A CT version's promotion metrics in words (with the 3D IoU boxes match at).
_CT_WORDS = {
    "combined": "the mean of FROC mean (LUNA16) and mAP, both at 3D IoU >= {iou:g}",
    "froc.froc_mean": "FROC mean (LUNA16: 1/8 ... 8 FP per scan) at 3D IoU >= {iou:g}",
    "boxes.map_at_match_iou": "mAP at 3D IoU >= {iou:g}",
    "boxes.map_50": "mAP at 3D IoU >= 0.5",
}


# Their names on a chart's legend (the Models page's learning curve); a radiograph kind's are
# the page's own (frontend/src/models/chart_shape.ts).
_CT_LABELS = {
    "combined": "combined (FROC mean and mAP at 3D IoU ≥ {iou:g})",
    "froc.froc_mean": "FROC mean (LUNA16)",
    "boxes.map_at_match_iou": "mAP at 3D IoU ≥ {iou:g}",
    "boxes.map_50": "mAP at 3D IoU ≥ 0.5",
}


def promotion_metrics(kind: str) -> tuple[str, ...]:
    """The promotion metrics a version of model ``kind`` can be promoted on."""
    return PROMOTION_METRICS_BY_KIND.get(kind, RADIOGRAPH_PROMOTION_METRICS)


def combined_parts(kind: str) -> tuple[str, ...]:
    """The metrics whose mean is ``combined`` for a version of model ``kind``."""
    return COMBINED_PARTS_BY_KIND.get(kind, COMBINED_PARTS)


def metric_words(name: str, *, kind: str, match_iou: float) -> str:
    """What the promotion metric ``name`` measures for a version of ``kind`` whose boxes match
    at ``match_iou``, in words for the guard's reasons; "" where the name says it (a
    radiograph kind's)."""
    if kind not in PROMOTION_METRICS_BY_KIND:
        return ""
    return _CT_WORDS.get(name, "").format(iou=match_iou)


def metric_labels(kind: str, *, match_iou: float) -> dict[str, str]:
    """Short names of the metrics of a version of ``kind`` (boxes matched at ``match_iou``),
    for a chart's legend; empty for a radiograph kind (its names are the page's own)."""
    if kind not in PROMOTION_METRICS_BY_KIND:
        return {}
    return {name: label.format(iou=match_iou) for name, label in _CT_LABELS.items()}


def score(value: Any) -> float | None:
    """A metric as a number, None where it is missing or not a score (pycocotools writes -1
    for a class without ground truth; NaN where a metric is undefined)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return float(value)


def metric_value(metrics: Mapping[str, Any], name: str, *, kind: str = "") -> float | None:
    """The metric ``name`` of an evaluation by a model of ``kind`` (empty: a radiograph kind):
    a group, then a metric whose own name may hold dots (``reports.rouge_l_f_beta1.2``), or
    ``combined``, the mean of the kind's :func:`combined_parts` where they are defined (box
    mAP@0.5, finding AUROC (macro) and report finding F1; a CT version's FROC mean and mAP at
    its 3D match IoU). None where it is not a score."""
    if name == "combined":
        parts = [metric_value(metrics, key) for key in combined_parts(kind)]
        defined = [p for p in parts if p is not None]
        return sum(defined) / len(defined) if defined else None
    group, _, key = name.partition(".")
    section = metrics.get(group)
    return score(section.get(key)) if isinstance(section, Mapping) else None
