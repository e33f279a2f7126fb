"""Paired bootstrap over validation cases: is a candidate's gain on the promotion metric larger
than the noise of a small validation set?

Both models are run on the *same* validation cases. One resample draws ``n`` cases with
replacement (multinomial counts, used as case weights) and the metric of *both* models is
recomputed on that same resample, so how hard each case is cancels out of the difference (the
pairing). The gain is beyond noise when the lower end of the two-sided ``confidence`` interval
of (candidate - serving) lies above zero; ``p_not_better`` is the share of resamples in which
the candidate does not beat the serving version.

Every metric is recomputed exactly from per-case outcomes (:class:`CaseOutcomes`), which
:func:`case_outcomes` derives from each model's predictions on the labelled cases. Boxes with
``z`` and ``depth`` (a CT detector's, in slices) overlap by 3D IoU, others by 2D IoU; every
candidate is matched twice, at IoU 0.5 and at the outcomes' ``match_iou`` (a CT project's
``froc_iou``, 0.1 by default; 0.5 for a radiograph project, where both are the same):

- ``boxes.map_50``: per class, AP at IoU 0.5 over *every* candidate box (low scores included;
  ``prediction.candidates`` when the model gives them, else its shown boxes), with all-point
  interpolated precision (the PASCAL VOC 2010+ rule); a candidate is a true positive when it is
  matched, greedily by descending score within its case, to an unused truth box of its class at
  IoU >= 0.5. Mean over the classes with truth in the resample. (Close to, not identical with,
  pycocotools' 101-point figure in ``ModelVersion.metrics``.)
- ``boxes.map_at_match_iou``: the same AP with candidates matched at IoU >= ``match_iou``
  (for a CT project AP at 3D IoU 0.1, the lung nodule measure; the CT detector's evaluation
  stores it by this very rule, so the stored figure and the recomputed one agree).
- ``froc.froc_mean``: FROC, the LUNA16 measure: the mean over :data:`FROC_RATES` (1/8 ... 8
  false positives per scan, one case one scan) of the highest lesion sensitivity reached while
  the weighted false positives per weighted scan stay at or below the rate, lowering the score
  threshold over every candidate, classes pooled, matched at ``match_iou``
  (:func:`active_learning.ml.metrics.boxes.froc` on the unweighted cases).
- ``findings.auroc_macro``: per class with labelled positives and negatives in the resample,
  the weighted Mann-Whitney AUROC of the calibrated probability (ties count one half); mean.
- ``reports.finding_f1_micro``: findings stated present in the draft against the labelled
  report (:func:`~active_learning.ml.report_findings.findings_stated`), true/false positives
  and false negatives pooled over classes and cases.
- ``combined``: the mean of the ``combined_parts`` that are defined on the resample (by
  default :data:`COMBINED_PARTS`, the radiograph parts; a CT project's are FROC mean and AP at
  the match IoU: ``active_learning.services.metric_schema.combined_parts`` names them per
  model kind, as ``metric_value`` reads them from an evaluation).
- hand-given per-case values (:func:`outcomes_from_values`): their weighted mean.

Pure numpy; never imports Django.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from active_learning.ml.interface import CasePrediction, LabelledCase
from active_learning.ml.metrics.boxes import LUNA16_FROC_RATES
from active_learning.ml.report_findings import findings_stated
from active_learning.ml.verification import weighted
from medloop.metrics.boxes import iou_matrix, iou_matrix_xyzwhd

IOU_THRESHOLD = 0.5
#: The false-positive rates per scan of ``froc.froc_mean`` (LUNA16's).
FROC_RATES = LUNA16_FROC_RATES
#: Promotion metrics the bootstrap recomputes (dotted names as in ``ModelVersion.metrics``).
SUPPORTED_METRICS = (
    "combined",
    "boxes.map_50",
    "boxes.map_at_match_iou",
    "froc.froc_mean",
    "findings.auroc_macro",
    "reports.finding_f1_micro",
    "mean",
)
COMBINED_PARTS = ("boxes.map_50", "findings.auroc_macro", "reports.finding_f1_micro")


class UnsupportedMetric(ValueError):
    """A promotion metric the bootstrap cannot recompute per resample."""


@dataclass
class CaseOutcomes:
    """One model's outcomes on ``n_cases`` validation cases: enough to recompute every metric
    of the module docstring on any resample of the cases.

    Detections (one row per candidate box): ``detection_case`` (case index), ``detection_class``
    (class index), ``detection_score``, ``detection_tp`` (matched at IoU >= 0.5) and
    ``detection_hit`` (matched at IoU >= ``match_iou``; None: ``match_iou`` is 0.5 and the hits
    are ``detection_tp``).
    ``truth_counts`` ``(n, C)``: truth boxes per case and class. ``finding_labels`` ``(n, C)``:
    1.0 present, 0.0 absent, NaN not read; ``finding_probabilities`` ``(n, C)``.
    ``report_counts`` ``(n, 3)``: true positives, false positives, false negatives of the
    findings the draft states. ``values`` ``(n,)``: hand-given per-case values, or ``None``.
    """

    classes: tuple[str, ...]
    n_cases: int
    detection_case: NDArray[np.int64]
    detection_class: NDArray[np.int64]
    detection_score: NDArray[np.float64]
    detection_tp: NDArray[np.bool_]
    truth_counts: NDArray[np.int64]
    finding_labels: NDArray[np.float64]
    finding_probabilities: NDArray[np.float64]
    report_counts: NDArray[np.int64]
    values: NDArray[np.float64] | None = None
    match_iou: float = IOU_THRESHOLD
    detection_hit: NDArray[np.bool_] | None = None
    # Sort orders computed once and reused by every resample (the bootstrap's hot loop).
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def hits_at_match_iou(self) -> NDArray[np.bool_]:
        """Per candidate, whether it is matched at IoU >= ``match_iou``."""
        return self.detection_tp if self.detection_hit is None else self.detection_hit


def _xyxy(boxes: Sequence[Any]) -> NDArray[np.float64]:
    if not boxes:
        return np.zeros((0, 4))
    return np.array([[b.x, b.y, b.x + b.width, b.y + b.height] for b in boxes], dtype=np.float64)


def _overlaps(predicted: Sequence[Any], truth: Sequence[Any]) -> NDArray[np.float64]:
    """IoU of every predicted box with every truth box; by volume for 3D boxes (a CT
    detector's, with ``z`` and ``depth`` in slices; a box without them, next to 3D boxes, is
    taken as one slice at ``z`` 0, as the CT detector's evaluation takes it)."""
    if any(getattr(b, "depth", None) is not None for b in [*predicted, *truth]):

        def extent(b: Any) -> list[float]:
            z, depth = getattr(b, "z", None), getattr(b, "depth", None)
            return [b.x, b.y, 0.0 if z is None else z, b.width, b.height,
                    1.0 if depth is None else depth]  # fmt: skip

        return iou_matrix_xyzwhd([extent(b) for b in predicted], [extent(b) for b in truth])
    return iou_matrix(_xyxy(predicted), _xyxy(truth))


def _match(
    truth: Sequence[Any], predicted: Sequence[Any], iou_threshold: float = IOU_THRESHOLD
) -> NDArray[np.bool_]:
    """True positives among ``predicted`` (same-class, greedy by descending score, each truth
    box used once, the unused truth box of highest IoU >= ``iou_threshold`` taken)."""
    order = sorted(range(len(predicted)), key=lambda i: -float(predicted[i].score))
    iou = _overlaps(predicted, truth)
    tp = np.zeros(len(predicted), dtype=bool)
    used: set[int] = set()
    for i in order:
        best, best_iou = -1, iou_threshold
        for j, box in enumerate(truth):
            if j in used or box.finding != predicted[i].finding:
                continue
            if iou[i, j] >= best_iou:
                best, best_iou = j, float(iou[i, j])
        if best >= 0:
            used.add(best)
            tp[i] = True
    return tp


def _report_text(report: dict[str, str]) -> str:
    return " ".join(str(text) for text in report.values() if text)


def case_outcomes(
    predictions: Sequence[CasePrediction],
    cases: Sequence[LabelledCase],
    classes: Sequence[str],
    *,
    match_iou: float = IOU_THRESHOLD,
) -> CaseOutcomes:
    """:class:`CaseOutcomes` of one model from its ``predictions`` on labelled ``cases`` (same
    order). Boxes come from ``prediction.candidates`` (every candidate, low scores included)
    when the model gives them, else from ``prediction.boxes``; each is matched at IoU 0.5 and
    at ``match_iou`` (in (0, 1]; 3D IoU for 3D boxes)."""
    if len(predictions) != len(cases):
        raise ValueError(f"{len(predictions)} predictions for {len(cases)} cases")
    if not 0.0 < match_iou <= 1.0:
        raise ValueError(f"match_iou must lie in (0, 1], got {match_iou}")
    other_iou = match_iou != IOU_THRESHOLD
    index = {name: k for k, name in enumerate(classes)}
    n, c = len(cases), len(classes)
    det_case: list[int] = []
    det_class: list[int] = []
    det_score: list[float] = []
    det_tp: list[bool] = []
    det_hit: list[bool] = []
    truth_counts = np.zeros((n, c), dtype=np.int64)
    labels = np.full((n, c), np.nan)
    probabilities = np.full((n, c), np.nan)
    report_counts = np.zeros((n, 3), dtype=np.int64)
    for i, (prediction, case) in enumerate(zip(predictions, cases, strict=True)):
        truth = [b for b in case.boxes if b.finding in index]
        for truth_box in truth:
            truth_counts[i, index[truth_box.finding]] += 1
        candidates = getattr(prediction, "candidates", None) or prediction.boxes
        predicted = [b for b in candidates if b.finding in index]
        at_50 = _match(truth, predicted)
        at_match = _match(truth, predicted, match_iou) if other_iou else at_50
        for box, tp, hit in zip(predicted, at_50, at_match, strict=True):
            det_case.append(i)
            det_class.append(index[box.finding])
            det_score.append(float(box.score))
            det_tp.append(bool(tp))
            det_hit.append(bool(hit))
        for name, k in index.items():
            value = case.findings.get(name)
            if value is not None:
                labels[i, k] = float(bool(value))
            if name in prediction.findings:
                probabilities[i, k] = float(prediction.findings[name])
        if case.report:
            stated_truth = findings_stated(_report_text(case.report), classes)
            stated = findings_stated(_report_text(prediction.report), classes)
            for name in classes:
                t, s = stated_truth.get(name) == "present", stated.get(name) == "present"
                report_counts[i] += (t and s, s and not t, t and not s)
    return CaseOutcomes(
        classes=tuple(classes),
        n_cases=n,
        detection_case=np.asarray(det_case, dtype=np.int64),
        detection_class=np.asarray(det_class, dtype=np.int64),
        detection_score=np.asarray(det_score, dtype=np.float64),
        detection_tp=np.asarray(det_tp, dtype=bool),
        truth_counts=truth_counts,
        finding_labels=labels,
        finding_probabilities=probabilities,
        report_counts=report_counts,
        match_iou=match_iou,
        detection_hit=np.asarray(det_hit, dtype=bool) if other_iou else None,
    )


def outcomes_from_values(values: Sequence[float]) -> CaseOutcomes:
    """Outcomes carrying only hand-given per-case values (metric ``"mean"``)."""
    array = np.asarray(values, dtype=np.float64)
    n = len(array)
    empty_int = np.zeros(0, dtype=np.int64)
    return CaseOutcomes(
        classes=(),
        n_cases=n,
        detection_case=empty_int,
        detection_class=empty_int,
        detection_score=np.zeros(0),
        detection_tp=np.zeros(0, dtype=bool),
        truth_counts=np.zeros((n, 0), dtype=np.int64),
        finding_labels=np.zeros((n, 0)),
        finding_probabilities=np.zeros((n, 0)),
        report_counts=np.zeros((n, 3), dtype=np.int64),
        values=array,
    )


# --- metrics on weighted cases ----------------------------------------------------------------


def _average_precision(tp: NDArray[np.float64], fp: NDArray[np.float64], positives: float) -> float:
    """All-point interpolated AP of detections already sorted by descending score, each with
    a weight as true positive (``tp``) or false positive (``fp``)."""
    true_pos, false_pos = np.cumsum(tp), np.cumsum(fp)
    recall = true_pos / positives
    precision = true_pos / np.maximum(true_pos + false_pos, 1e-12)
    # Precision envelope (monotone from the right), then the area under the recall steps.
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope))


def _box_map(
    outcomes: CaseOutcomes, weights: NDArray[np.float64], hits: NDArray[np.bool_], key: str
) -> float | None:
    """Mean AP over the classes with truth boxes among the weighted cases (None: none), each
    candidate a true positive where ``hits`` says so; ``key`` names its sort order in the
    cache."""
    positives = weights @ outcomes.truth_counts

    def per_class() -> list[tuple[NDArray[np.int64], NDArray[np.bool_]]]:
        # Per class: its detections' cases and hits, by descending score.
        order = np.argsort(-outcomes.detection_score, kind="stable")
        labels = outcomes.detection_class[order]
        return [
            (outcomes.detection_case[order][labels == k], hits[order][labels == k])
            for k in range(len(outcomes.classes))
        ]

    detections = outcomes.cached(key, per_class)
    aps = []
    for k in range(len(outcomes.classes)):
        if positives[k] <= 0:
            continue
        cases, class_hits = detections[k]
        if not len(cases):
            aps.append(0.0)
            continue
        w = weights[cases]
        tp = np.where(class_hits, w, 0.0)
        fp = np.where(class_hits, 0.0, w)
        aps.append(_average_precision(tp, fp, float(positives[k])))
    return float(np.mean(aps)) if aps else None


def box_map50(outcomes: CaseOutcomes, weights: NDArray[np.float64]) -> float | None:
    """Mean AP@0.5 over the classes with truth boxes among the weighted cases (None: none)."""
    return _box_map(outcomes, weights, outcomes.detection_tp, "boxes")


def box_map_at_match_iou(outcomes: CaseOutcomes, weights: NDArray[np.float64]) -> float | None:
    """Mean AP at IoU ``outcomes.match_iou`` (3D IoU for 3D boxes) over the classes with
    truth boxes among the weighted cases (None: none)."""
    return _box_map(outcomes, weights, outcomes.hits_at_match_iou(), "boxes@match")


def froc_mean(outcomes: CaseOutcomes, weights: NDArray[np.float64]) -> float | None:
    """FROC mean (module docstring): lesion sensitivity at each of :data:`FROC_RATES` false
    positives per scan, classes pooled, candidates matched at ``match_iou``, averaged over the
    rates (None without truth boxes among the weighted cases)."""
    truth = outcomes.truth_counts.sum(axis=1).astype(np.float64)

    def by_score() -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        order = np.argsort(-outcomes.detection_score, kind="stable")
        return outcomes.detection_case[order], outcomes.hits_at_match_iou()[order]

    cases, hits = outcomes.cached("froc", by_score)
    scans = np.ones(outcomes.n_cases)
    sensitivity = weighted.froc(cases, hits, truth, scans, weights[None, :], FROC_RATES)[0]
    defined = sensitivity[np.isfinite(sensitivity)]
    return float(np.mean(defined)) if defined.size else None


def _weighted_auroc(
    scores: NDArray[np.float64],
    labels: NDArray[np.float64],
    weights: NDArray[np.float64],
    ranks: tuple[NDArray[np.bool_], NDArray[np.int64], int] | None = None,
) -> float | None:
    """P(score of a positive > score of a negative), ties one half, cases weighted.
    ``ranks``: :func:`_score_ranks` of ``scores`` and ``labels``, when computed already."""
    keep, inverse, distinct = ranks if ranks is not None else _score_ranks(scores, labels)
    labels, weights = labels[keep], weights[keep]
    pos_weight = weights[labels == 1].sum()
    neg_weight = weights[labels == 0].sum()
    if pos_weight == 0 or neg_weight == 0:
        return None
    neg_at = np.bincount(inverse, weights=weights * (labels == 0), minlength=distinct)
    pos_at = np.bincount(inverse, weights=weights * (labels == 1), minlength=distinct)
    neg_below = np.cumsum(neg_at) - neg_at
    wins = np.sum(pos_at * (neg_below + 0.5 * neg_at))
    return float(wins / (pos_weight * neg_weight))


def _score_ranks(
    scores: NDArray[np.float64], labels: NDArray[np.float64]
) -> tuple[NDArray[np.bool_], NDArray[np.int64], int]:
    """The labelled cases with a score, each one's rank among the distinct scores, and how
    many distinct scores there are."""
    keep = ~np.isnan(labels) & ~np.isnan(scores)
    distinct, inverse = np.unique(scores[keep], return_inverse=True)
    return keep, inverse, len(distinct)


def finding_auroc_macro(outcomes: CaseOutcomes, weights: NDArray[np.float64]) -> float | None:
    """Mean AUROC over the classes with labelled positives and negatives (None: none)."""
    probabilities, labels = outcomes.finding_probabilities, outcomes.finding_labels
    ranks = outcomes.cached(
        "findings",
        lambda: [
            _score_ranks(probabilities[:, k], labels[:, k]) for k in range(len(outcomes.classes))
        ],
    )
    values = [
        _weighted_auroc(probabilities[:, k], labels[:, k], weights, ranks[k])
        for k in range(len(outcomes.classes))
    ]
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def report_finding_f1(outcomes: CaseOutcomes, weights: NDArray[np.float64]) -> float | None:
    """Micro F1 of the findings the drafts state (None: no finding stated in either text)."""
    tp, fp, fn = weights @ outcomes.report_counts
    if tp + fp + fn == 0:
        return None
    return float(2 * tp / (2 * tp + fp + fn))


def weighted_mean(outcomes: CaseOutcomes, weights: NDArray[np.float64]) -> float | None:
    if outcomes.values is None or weights.sum() == 0:
        return None
    return float(weights @ outcomes.values / weights.sum())


MetricFunction = Callable[[CaseOutcomes, NDArray[np.float64]], float | None]
METRICS: dict[str, MetricFunction] = {
    "boxes.map_50": box_map50,
    "boxes.map_at_match_iou": box_map_at_match_iou,
    "froc.froc_mean": froc_mean,
    "findings.auroc_macro": finding_auroc_macro,
    "reports.finding_f1_micro": report_finding_f1,
    "mean": weighted_mean,
}


def _function(name: str) -> MetricFunction:
    try:
        return METRICS[name]
    except KeyError:
        raise UnsupportedMetric(
            f"the paired bootstrap cannot recompute {name!r}; it knows "
            + ", ".join(SUPPORTED_METRICS)
        ) from None


def metric(
    name: str,
    outcomes: CaseOutcomes,
    weights: NDArray[np.float64],
    *,
    combined_parts: Sequence[str] = COMBINED_PARTS,
) -> float | None:
    """The metric ``name`` (:data:`SUPPORTED_METRICS`) of ``outcomes`` on weighted cases;
    ``combined``: the mean of ``combined_parts`` where they are defined."""
    if name == "combined":
        parts = [_function(part)(outcomes, weights) for part in combined_parts]
        defined = [p for p in parts if p is not None]
        return float(np.mean(defined)) if defined else None
    return _function(name)(outcomes, weights)


# --- the bootstrap ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapResult:
    """The paired comparison of a candidate with the serving version on ``cases`` validation
    cases. ``difference`` = candidate - serving on all cases; ``low``/``high``: the percentile
    interval of the difference over the resamples where both metrics are defined
    (``resamples_used`` of ``resamples``); ``p_not_better``: share of those where the candidate
    does not beat the serving version. ``beyond_noise``: ``low > 0``. ``match_iou``: the IoU
    candidates were matched at for the metrics that use it; ``parts``: for ``combined``, each
    part's value on all cases, ``{part: {"candidate": ..., "serving": ...}}``."""

    metric: str
    cases: int
    resamples: int
    resamples_used: int
    seed: int
    confidence: float
    candidate: float | None
    serving: float | None
    difference: float | None
    low: float | None
    high: float | None
    p_not_better: float | None
    match_iou: float = IOU_THRESHOLD
    parts: dict[str, dict[str, float | None]] = field(default_factory=dict)

    @property
    def beyond_noise(self) -> bool:
        return self.low is not None and self.low > 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "beyond_noise": self.beyond_noise}


def paired_bootstrap(
    candidate: CaseOutcomes,
    serving: CaseOutcomes,
    *,
    metric_name: str,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    combined_parts: Sequence[str] = COMBINED_PARTS,
) -> BootstrapResult:
    """Resample the validation cases ``resamples`` times (seeded) and compare the two models'
    ``metric_name`` on each resample (module docstring; ``combined``: the mean of
    ``combined_parts``). Both outcomes must cover the same cases in the same order, their
    candidates matched at the same IoU."""
    if candidate.n_cases != serving.n_cases:
        raise ValueError(
            f"paired outcomes need the same cases: {candidate.n_cases} vs {serving.n_cases}"
        )
    if candidate.match_iou != serving.match_iou:
        raise ValueError(
            f"paired outcomes need the same match IoU: {candidate.match_iou} vs {serving.match_iou}"
        )
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    part_names = tuple(combined_parts) if metric_name == "combined" else ()
    if metric_name not in SUPPORTED_METRICS:
        _function(metric_name)  # raises UnsupportedMetric
    for part in part_names:
        _function(part)
    n = candidate.n_cases
    ones = np.ones(n)

    def value(name: str, outcomes: CaseOutcomes, weights: NDArray[np.float64]) -> float | None:
        return metric(name, outcomes, weights, combined_parts=combined_parts)

    whole_candidate = value(metric_name, candidate, ones) if n else None
    whole_serving = value(metric_name, serving, ones) if n else None
    parts = {
        part: {
            "candidate": value(part, candidate, ones) if n else None,
            "serving": value(part, serving, ones) if n else None,
        }
        for part in part_names
    }
    difference = None
    if whole_candidate is not None and whole_serving is not None:
        difference = whole_candidate - whole_serving
    differences = []
    if n:
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
        for weights in counts:
            a = value(metric_name, candidate, weights)
            b = value(metric_name, serving, weights)
            if a is not None and b is not None:
                differences.append(a - b)
    low = high = p_not_better = None
    if differences:
        values = np.asarray(differences)
        tail = (1.0 - confidence) / 2 * 100
        low, high = (float(v) for v in np.percentile(values, [tail, 100 - tail]))
        p_not_better = float(np.mean(values <= 0))
    return BootstrapResult(
        metric=metric_name,
        cases=n,
        resamples=resamples,
        resamples_used=len(differences),
        seed=seed,
        confidence=confidence,
        candidate=whole_candidate,
        serving=whole_serving,
        difference=difference,
        low=low,
        high=high,
        p_not_better=p_not_better,
        match_iou=candidate.match_iou,
        parts=parts,
    )
