"""Evaluation of suggestion models: boxes, case-level findings and report drafts.

Pure Python (numpy, pycocotools, pycocoevalcap, scikit-learn); never imports Django or torch, so
the model code, the retraining cycle and the benchmarks can all call it.

- Boxes: :func:`box_map`, COCO mAP@0.5, mAP@0.75 and mAP@[.5:.95] from pycocotools' ``COCOeval``
  (101-point interpolated precision, area range "all", at most ``max_detections`` boxes per image
  and class), plus AP per class. Computed from every candidate a model outputs, never from the
  boxes cut at a display threshold (that would truncate the precision-recall curve).
- :func:`froc`: lesion sensitivity at 0.5, 1, 2 and 4 false positives per image, from all
  candidates; :func:`shown_box_metrics`: precision, recall per class and false boxes per normal
  image of the boxes actually shown; both on :func:`match_candidates` (COCO's greedy rule, IoU
  from ``pycocotools.mask.iou``).
- Findings: :func:`finding_metrics`, AUROC per class and macro, expected calibration error before
  and after temperature scaling (:func:`fit_temperature`, :func:`apply_temperature`).
- Reports: :func:`report_metrics`, BLEU-1..4, ROUGE-L and CIDEr-D from pycocoevalcap on
  :func:`tokenize_report` tokens, and finding-level F1 from :func:`findings_stated`
  (rules in :mod:`active_learning.ml.report_findings`).
- :func:`evaluation_table` and :func:`write_csv` print and save the results of one or more runs.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from sklearn.metrics import roc_auc_score

from active_learning.ml.report_findings import FINDING_RULES, findings_stated

__all__ = [
    "FINDING_RULES",
    "GroundTruthBox",
    "MatchResult",
    "PredictedBox",
    "apply_temperature",
    "box_map",
    "evaluation_table",
    "expected_calibration_error",
    "finding_f1",
    "finding_metrics",
    "findings_stated",
    "fit_temperature",
    "froc",
    "image_key",
    "match_candidates",
    "report_metrics",
    "shown_box_metrics",
    "tokenize_report",
    "write_csv",
]

_EPS = 1e-7  # probabilities are clipped to [eps, 1 - eps] before logits and logs


# --------------------------------------------------------------------------------------- boxes
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


def _get(box: BoxLike, name: str) -> Any:
    return box[name] if isinstance(box, Mapping) else getattr(box, name)


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
    images that hold neither truth nor candidates (normal images with nothing predicted)."""
    truth_by: dict[tuple[str, str], list[list[float]]] = {}
    positives: dict[str, int] = {}
    all_images: dict[str, None] = dict.fromkeys(images)
    with_truth: set[str] = set()
    for box in ground_truth:
        key = (str(_get(box, "image_id")), str(_get(box, "finding")))
        truth_by.setdefault(key, []).append([float(_get(box, k)) for k in _XYWH])
        positives[key[1]] = positives.get(key[1], 0) + 1
        all_images[key[0]] = None
        with_truth.add(key[0])
    rows = [
        (str(_get(b, "image_id")), str(_get(b, "finding")), float(_get(b, "score")),
         [float(_get(b, k)) for k in _XYWH])
        for b in candidates
    ]  # fmt: skip
    rows.sort(key=lambda row: -row[2])
    used: dict[tuple[str, str], np.ndarray] = {}
    matched: list[tuple[str, float, bool]] = []
    image_ids: list[str] = []
    for image_id, finding, score, xywh in rows:
        all_images[image_id] = None
        key = (image_id, finding)
        hit = False
        truth = truth_by.get(key)
        if truth:
            taken = used.setdefault(key, np.zeros(len(truth), dtype=bool))
            iou = np.asarray(coco_mask.iou([xywh], truth, [0] * len(truth)), dtype=np.float64)[0]
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
    truth boxes)."""
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


# ------------------------------------------------------------------------------------ findings
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
    bounds: tuple[float, float] = (0.05, 20.0),
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


def _macro(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


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


# ------------------------------------------------------------------------------------- reports
# The typographic apostrophe (U+2019) is intended: reports pasted from word processors use it.
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+(?:['’-][^\W\d_]+)*|[^\w\s]|_")  # noqa: RUF001


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists."""
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if token == other else max(previous[j], current[-1]))
        previous = current
    return previous[-1]


def rouge_l_f1(a: Sequence[str], b: Sequence[str]) -> float:
    """ROUGE-L F1 (beta 1) of two token lists from their longest common subsequence; 1.0 when
    both are empty, 0.0 when one is. (``report_metrics`` uses pycocoevalcap's beta 1.2.)"""
    if not a or not b:
        return 1.0 if not a and not b else 0.0
    lcs = lcs_length(a, b)
    return 2 * lcs / (len(a) + len(b))  # = 2PR / (P + R) with P, R = lcs / len


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two token lists (insert, delete, substitute: cost 1)."""
    previous = list(range(len(b) + 1))
    for i, token in enumerate(a, start=1):
        current = [i]
        for j, other in enumerate(b, start=1):
            current.append(
                min(previous[j] + 1, current[-1] + 1, previous[j - 1] + (token != other))
            )
        previous = current
    return previous[-1]


def tokenize_report(text: str, *, keep_punctuation: bool = False) -> list[str]:
    """Tokens for BLEU, ROUGE-L and CIDEr: lowercase; a token is a number (``1.2`` stays whole), a
    word (letters, with inner hyphens or apostrophes: ``well-circumscribed``, ``patient's``) or a
    single punctuation mark. Punctuation tokens are dropped unless ``keep_punctuation``, as the COCO
    caption pipeline's PTBTokenizer drops them, so scores compare with published ones. Report
    de-identification marks such as ``XXXX`` stay ordinary words."""
    tokens = _TOKEN.findall(text.lower())
    return tokens if keep_punctuation else [t for t in tokens if t[0].isalnum()]


def finding_f1(
    references: Sequence[str], candidates: Sequence[str], classes: Sequence[str]
) -> dict[str, Any]:
    """F1 of positive finding mentions: per class, a true positive is a report pair where both
    texts state the finding present (:func:`findings_stated`); absent and unstated both count as
    negative. ``finding_f1_micro`` pools the counts over classes; ``finding_f1_macro`` averages
    the per-class F1 over classes that are positive in at least one text (others are ``None``)."""
    counts = {c: [0, 0, 0] for c in classes}  # tp, fp, fn
    for reference, candidate in zip(references, candidates, strict=True):
        truth, stated = findings_stated(reference, classes), findings_stated(candidate, classes)
        for c in classes:
            t, s = truth.get(c) == "present", stated.get(c) == "present"
            counts[c][0] += t and s
            counts[c][1] += s and not t
            counts[c][2] += t and not s

    def f1(tp: int, fp: int, fn: int) -> float | None:
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None

    per_class = {c: f1(*counts[c]) for c in classes}
    micro = f1(*(sum(v[i] for v in counts.values()) for i in range(3)))
    return {
        "finding_f1_micro": micro,
        "finding_f1_macro": _macro(per_class.values()),
        "finding_f1_per_class": per_class,
    }


def report_metrics(
    references: Sequence[str],
    candidates: Sequence[str],
    classes: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Corpus metrics of generated reports ``candidates`` against one reference each.

    Text is tokenised with :func:`tokenize_report` and scored with pycocoevalcap:

    - ``bleu_1`` .. ``bleu_4``: corpus BLEU (clipped n-gram counts summed over the corpus,
      brevity penalty with the closest reference length, no smoothing).
    - ``rouge_l_f_beta1.2``: ROUGE-L as pycocoevalcap computes it, the LCS F-measure
      ``(1 + b^2) P R / (R + b^2 P)`` with ``b = 1.2`` per report, averaged over reports.
    - ``cider_d``: pycocoevalcap's ``Cider`` is CIDEr-D (candidate tf-idf clipped to the
      reference's, Gaussian length penalty sigma 6, times 10, no stemming), with document
      frequencies from these references: it needs a corpus, a single report scores 0.
    - ``finding_f1_*``: :func:`finding_f1` over ``classes`` (default: every class in
      :data:`FINDING_RULES`).
    """
    if len(references) != len(candidates):
        raise ValueError(f"{len(references)} references but {len(candidates)} candidates")
    if not references:
        raise ValueError("no reports to evaluate")
    refs = {i: [" ".join(tokenize_report(r))] for i, r in enumerate(references)}
    cands = {i: [" ".join(tokenize_report(c))] for i, c in enumerate(candidates)}
    bleu, _ = Bleu(4).compute_score(refs, cands, verbose=0)
    rouge, _ = Rouge().compute_score(refs, cands)
    cider, _ = Cider().compute_score(refs, cands)
    results: dict[str, Any] = {f"bleu_{n}": float(bleu[n - 1]) for n in range(1, 5)}
    results["rouge_l_f_beta1.2"] = float(rouge)
    results["cider_d"] = float(cider)
    results.update(finding_f1(references, candidates, list(classes or FINDING_RULES)))
    results["n_reports"] = len(references)
    return results


# -------------------------------------------------------------------------------------- output
def _flatten(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _rows(results: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    columns = {run: _flatten(metrics) for run, metrics in results.items()}
    names: dict[str, None] = {}
    for flat in columns.values():
        names.update(dict.fromkeys(flat))
    return list(names), list(columns)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def evaluation_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """A plain-text table: one column per run (``results`` maps a run name, e.g. "image only", to
    its metrics; nested dicts become dotted row names such as ``boxes.ap_50_per_class.nodule``),
    one row per metric in first-seen order, floats to 4 decimals, missing or ``None`` as "n/a".
    For a single run pass ``{"model": metrics}``."""
    names, runs = _rows(results)
    flat = {run: _flatten(results[run]) for run in runs}
    body = [["metric", *runs]] + [[n, *(_cell(flat[r].get(n)) for r in runs)] for n in names]
    widths = [max(len(row[i]) for row in body) for i in range(len(body[0]))]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)  # metric names left, values right
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in body
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_csv(results: Mapping[str, Mapping[str, Any]], path: Path | str) -> Path:
    """The :func:`evaluation_table` layout as CSV (header ``metric,<run>...``), values at full
    precision, ``None``/NaN as an empty cell. Returns the path written."""
    names, runs = _rows(results)
    flat = {run: _flatten(results[run]) for run in runs}
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["metric", *runs])
        for name in names:
            cells = []
            for run in runs:
                value = flat[run].get(name)
                missing = value is None or (isinstance(value, float) and math.isnan(value))
                cells.append("" if missing else repr(value) if isinstance(value, float) else value)
            writer.writerow([name, *cells])
    return path
