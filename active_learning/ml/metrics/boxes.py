"""Box metrics of suggestion models: COCO mAP, FROC and what an annotator is shown.

- :func:`box_map`: COCO mAP@0.5, mAP@0.75 and mAP@[.5:.95] from pycocotools' ``COCOeval``
  (101-point interpolated precision, area range "all", at most ``max_detections`` boxes per image
  and class), plus AP per class. Computed from every candidate a model outputs, never from the
  boxes cut at a display threshold (that would truncate the precision-recall curve).
- :func:`froc`: lesion sensitivity at 0.5, 1, 2 and 4 false positives per image (for CT
  volumes LUNA16's rates, :data:`LUNA16_FROC_RATES`: 1/8 to 8 per scan), from all candidates;
  :func:`shown_box_metrics`: precision, recall per class and false boxes per normal image of the
  boxes actually shown; both on :func:`match_candidates` (COCO's greedy rule, IoU from
  ``pycocotools.mask.iou``; for 3D boxes, those with ``z`` and ``depth`` in slices, the 3D IoU of
  :func:`medloop.metrics.boxes.iou_matrix_xyzwhd`).
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from active_learning.ml.metrics import macro_mean as _macro
from medloop.metrics.boxes import iou_matrix_xyzwhd

__all__ = [
    "FROC_RATES",
    "LUNA16_FROC_RATES",
    "BoxLike",
    "GroundTruthBox",
    "MatchResult",
    "PredictedBox",
    "box_map",
    "froc",
    "image_key",
    "match_candidates",
    "shown_box_metrics",
]


@dataclass(frozen=True)
class GroundTruthBox:
    """An expert box: ``x, y`` top-left corner, ``width, height``, all in pixels of the image."""

    image_id: str
    finding: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class PredictedBox:
    """A model box in pixels, as :class:`GroundTruthBox`, with its confidence ``score``."""

    image_id: str
    finding: str
    x: float
    y: float
    width: float
    height: float
    score: float


BoxLike = GroundTruthBox | PredictedBox | Mapping[str, Any]


def image_key(case_id: object, instance_uid: str, frame: int = 0) -> str:
    """The ``image_id`` of one frame of one instance of a case: ``"<case>/<sop uid>/<frame>"``."""
    return f"{case_id}/{instance_uid}/{frame}"


_XYWH = ("x", "y", "width", "height")
_XYZWHD = ("x", "y", "z", "width", "height", "depth")


def _get(box: BoxLike, name: str) -> Any:
    return box[name] if isinstance(box, Mapping) else getattr(box, name)


def _is_3d(box: BoxLike) -> bool:
    """A box with a depth (a lesion over a range of CT slices): ``z`` and ``depth`` set."""
    if isinstance(box, Mapping):
        return box.get("depth") is not None
    return getattr(box, "depth", None) is not None


def _extent(box: BoxLike) -> list[float]:
    """``(x, y, width, height)``, or ``(x, y, z, width, height, depth)`` for a 3D box."""
    return [float(_get(box, k)) for k in (_XYZWHD if _is_3d(box) else _XYWH)]


def _overlaps(extent: list[float], truth: list[list[float]]) -> NDArray[np.float64]:
    """IoU of one box with each truth box: 2D by ``pycocotools.mask.iou``, 3D by volume. A 2D
    box is never compared with a 3D one."""
    if any(len(t) != len(extent) for t in truth):
        raise ValueError("boxes of one image mix 2D and 3D boxes")
    if len(extent) == 6:
        return iou_matrix_xyzwhd([extent], truth)[0]
    return np.asarray(coco_mask.iou([extent], truth, [0] * len(truth)), dtype=np.float64)[0]


def _coco_box(box: BoxLike, classes: Sequence[str]) -> tuple[str, int, list[float]]:
    finding = str(_get(box, "finding"))
    if finding not in classes:
        raise ValueError(f"box finding {finding!r} is not one of the classes {list(classes)}")
    xywh = [float(_get(box, k)) for k in ("x", "y", "width", "height")]
    if not all(math.isfinite(v) for v in xywh) or xywh[2] < 0 or xywh[3] < 0:
        raise ValueError(f"box {xywh} must be finite with non-negative width and height")
    return str(_get(box, "image_id")), classes.index(finding) + 1, xywh


def _mean_ap(precision: NDArray[np.float64]) -> float | None:
    """COCO's summary: the mean of the entries that exist (-1 marks a class without ground
    truth)."""
    valid = precision[precision > -1]
    return float(valid.mean()) if valid.size else None


def box_map(
    ground_truth: Iterable[BoxLike],
    predictions: Iterable[BoxLike],
    classes: Sequence[str],
    *,
    max_detections: int = 100,
) -> dict[str, Any]:
    """COCO-style box detection metrics with pycocotools' ``COCOeval`` on in-memory COCO dicts.

    ``ground_truth`` and ``predictions`` are :class:`GroundTruthBox` / :class:`PredictedBox` or
    mappings with the same keys; boxes are ``(x, y, width, height)`` in pixels; ``image_id`` is any
    string key (see :func:`image_key`); every image named by either list is evaluated, so boxes on
    images without ground truth count as false positives of their class.

    Returns ``map_50``, ``map_75``, ``map_50_95`` (mean over the classes that have ground truth,
    COCO's convention; ``None`` if no class has any), ``ap_50_per_class`` and
    ``ap_50_95_per_class`` (``None`` for a class without ground truth: its false positives are not
    scored, as in COCO), and the counts ``n_images``, ``n_ground_truth``, ``n_predictions``. A class
    with ground truth but no prediction has AP 0.
    """
    classes = list(classes)
    gt = [_coco_box(b, classes) for b in ground_truth]
    dt = [(*_coco_box(b, classes), float(_get(b, "score"))) for b in predictions]
    keys = sorted({g[0] for g in gt} | {d[0] for d in dt})
    image_ids = {key: i for i, key in enumerate(keys, start=1)}
    categories = [{"id": i, "name": name} for i, name in enumerate(classes, start=1)]
    # ids start at 1: COCOeval treats a match with id 0 as "no match".
    gt_dataset = {
        "images": [{"id": i} for i in image_ids.values()],
        "categories": categories,
        "annotations": [
            {"id": n, "image_id": image_ids[key], "category_id": cat, "bbox": xywh,
             "area": xywh[2] * xywh[3], "iscrowd": 0}
            for n, (key, cat, xywh) in enumerate(gt, start=1)
        ],
    }  # fmt: skip
    dt_dataset = {
        "images": gt_dataset["images"],
        "categories": categories,
        "annotations": [
            {"id": n, "image_id": image_ids[key], "category_id": cat, "bbox": xywh,
             "area": xywh[2] * xywh[3], "iscrowd": 0, "score": score}
            for n, (key, cat, xywh, score) in enumerate(dt, start=1)
        ],
    }  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco_gt, coco_dt = COCO(), COCO()
        coco_gt.dataset, coco_dt.dataset = gt_dataset, dt_dataset
        coco_gt.createIndex()
        coco_dt.createIndex()  # built directly: COCO.loadRes fails on an empty list
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.params.maxDets = [1, 10, max_detections]
        evaluator.evaluate()
        evaluator.accumulate()
    # precision[T iou thresholds, R=101 recall points, K classes, A area ranges, M max dets]
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # area "all", max_detections
    thresholds = evaluator.params.iouThrs
    at_50 = int(np.argmin(np.abs(thresholds - 0.5)))
    at_75 = int(np.argmin(np.abs(thresholds - 0.75)))
    return {
        "map_50": _mean_ap(precision[at_50]),
        "map_75": _mean_ap(precision[at_75]),
        "map_50_95": _mean_ap(precision),
        "ap_50_per_class": {c: _mean_ap(precision[at_50, :, k]) for k, c in enumerate(classes)},
        "ap_50_95_per_class": {c: _mean_ap(precision[:, :, k]) for k, c in enumerate(classes)},
        "n_images": len(keys),
        "n_ground_truth": len(gt),
        "n_predictions": len(dt),
    }


@dataclass
class MatchResult:
    """Candidates matched to truth boxes: ``candidates`` rows ``(finding, score, matched)`` in
    decreasing score order, each with ``image_ids`` alongside; ``positives`` truth boxes per class;
    ``images`` every image named by either list; ``normal_images`` those without truth boxes."""

    candidates: list[tuple[str, float, bool]]
    image_ids: list[str]
    positives: dict[str, int]
    images: list[str]
    normal_images: list[str]


def match_candidates(
    ground_truth: Iterable[BoxLike],
    candidates: Iterable[BoxLike],
    *,
    iou_threshold: float = 0.5,
    images: Iterable[str] = (),
) -> MatchResult:
    """COCO's matching rule: per image and class, candidates in decreasing score order each take
    the unmatched truth box of highest IoU if it is at least ``iou_threshold``. ``images`` adds
    images that hold neither truth nor candidates (normal images with nothing predicted). Boxes
    with ``z`` and ``depth`` (a volume's: ``image_id`` names the volume) match by 3D IoU."""
    truth_by: dict[tuple[str, str], list[list[float]]] = {}
    positives: dict[str, int] = {}
    all_images: dict[str, None] = dict.fromkeys(images)
    with_truth: set[str] = set()
    for box in ground_truth:
        key = (str(_get(box, "image_id")), str(_get(box, "finding")))
        truth_by.setdefault(key, []).append(_extent(box))
        positives[key[1]] = positives.get(key[1], 0) + 1
        all_images[key[0]] = None
        with_truth.add(key[0])
    rows = [
        (str(_get(b, "image_id")), str(_get(b, "finding")), float(_get(b, "score")), _extent(b))
        for b in candidates
    ]
    rows.sort(key=lambda row: -row[2])
    used: dict[tuple[str, str], np.ndarray] = {}
    matched: list[tuple[str, float, bool]] = []
    image_ids: list[str] = []
    for image_id, finding, score, extent in rows:
        all_images[image_id] = None
        key = (image_id, finding)
        hit = False
        truth = truth_by.get(key)
        if truth:
            taken = used.setdefault(key, np.zeros(len(truth), dtype=bool))
            iou = _overlaps(extent, truth)
            iou[taken] = -1.0
            best = int(np.argmax(iou))
            if iou[best] >= iou_threshold:
                taken[best] = hit = True
        matched.append((finding, score, hit))
        image_ids.append(image_id)
    return MatchResult(
        candidates=matched,
        image_ids=image_ids,
        positives=positives,
        images=list(all_images),
        normal_images=[i for i in all_images if i not in with_truth],
    )


FROC_RATES = (0.5, 1.0, 2.0, 4.0)
#: LUNA16's FROC: sensitivity at 1/8, 1/4, 1/2, 1, 2, 4 and 8 false positives per scan.
LUNA16_FROC_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def froc(
    ground_truth: Iterable[BoxLike],
    candidates: Iterable[BoxLike],
    *,
    images: Iterable[str] = (),
    rates: Sequence[float] = FROC_RATES,
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """Free-response ROC points: for each rate ``r`` in ``rates``, the highest lesion
    sensitivity (matched truth boxes / all truth boxes, classes pooled) reached while the false
    positives per image stay ``<= r``, lowering the score threshold over all candidates.
    ``images`` must name every evaluated image (those with nothing on them too), since false
    positives are counted per image. ``froc_mean`` is the mean over the rates (``None`` without
    truth boxes). For CT volumes: 3D boxes (:func:`match_candidates`), ``images`` the scans and
    ``rates`` :data:`LUNA16_FROC_RATES` (LUNA16's figure is ``froc_mean`` over those rates)."""
    result = match_candidates(ground_truth, candidates, iou_threshold=iou_threshold, images=images)
    total = sum(result.positives.values())
    n_images = max(len(result.images), 1)
    hit_flags = np.asarray([hit for _, _, hit in result.candidates], dtype=bool)
    hits = np.cumsum(hit_flags)
    false = np.cumsum(~hit_flags)
    points: dict[str, float | None] = {}
    for rate in rates:
        if not total:
            points[f"sensitivity_at_{rate:g}_fp"] = None
            continue
        allowed = np.where(false / n_images <= rate)[0]
        best = int(hits[allowed[-1]]) if len(allowed) else 0
        points[f"sensitivity_at_{rate:g}_fp"] = best / total
    defined = [v for v in points.values() if v is not None]
    return {
        **points,
        "froc_mean": float(np.mean(defined)) if defined else None,
        "n_images": len(result.images),
        "n_ground_truth": total,
    }


def shown_box_metrics(
    ground_truth: Iterable[BoxLike],
    shown: Iterable[BoxLike],
    classes: Sequence[str],
    *,
    images: Iterable[str] = (),
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """What an annotator sees: precision of the shown boxes (``None`` when none is shown),
    recall per class (``None`` for a class without truth boxes) and its mean over the classes
    with truth boxes, and false boxes per normal image (shown boxes on images without any truth
    box, divided by the number of such images; ``images`` must list every evaluated image)."""
    result = match_candidates(ground_truth, shown, iou_threshold=iou_threshold, images=images)
    n_shown = len(result.candidates)
    true = sum(hit for _, _, hit in result.candidates)
    recall: dict[str, float | None] = {}
    for name in classes:
        positives = result.positives.get(name, 0)
        found = sum(hit for f, _, hit in result.candidates if f == name)
        recall[name] = found / positives if positives else None
    normal = set(result.normal_images)
    on_normal = sum(1 for image in result.image_ids if image in normal)
    return {
        "precision_shown": true / n_shown if n_shown else None,
        "recall_shown": _macro(recall.values()),
        "recall_shown_per_class": recall,
        "false_boxes_per_normal_image": on_normal / len(normal) if normal else None,
        "shown_boxes": n_shown,
        "shown_per_image": n_shown / max(len(result.images), 1),
        "normal_images": len(normal),
    }
