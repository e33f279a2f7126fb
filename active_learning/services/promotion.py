"""The promotion guard: when may a cycle promote its new version by itself?

Two conditions, both from :class:`~active_learning.models.LoopSettings`:

1. Enough validation labels: at least ``min_validation_labels`` labelled validation cases
   (default 20). Positives per class are counted and shown, so a model owner sees how thin the
   evidence is for each finding.
2. A gain beyond noise: the candidate and the serving version are run on the same validation
   cases and the project's promotion metric is compared by a paired bootstrap
   (:mod:`active_learning.ml.paired_bootstrap`, seeded, ``bootstrap_resamples`` >= 1000); the
   lower end of the ``bootstrap_confidence`` interval of (candidate - serving) must lie above 0.
   The first version has nothing to beat: it needs condition 1 and a defined metric.
   Boxes match at the candidate kind's IoU: 0.5 in 2D for radiographs; for the 3D CT detector
   its ``froc_iou`` in 3D (0.1 by default), where a CT project is promoted on the lung nodule
   measures, FROC mean (LUNA16) and mAP at that IoU (``combined`` is their mean:
   :func:`~active_learning.services.metric_schema.combined_parts`).

A version that fails either waits, a candidate, for a model owner; the numbers (labels,
positives, the interval) go to the cycle's log and outcome and to ``ModelVersion.promotion_check``
(the Models page data). Model owners can still promote any version by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from active_learning.ml import paired_bootstrap as pb
from active_learning.ml.interface import (
    CasePrediction,
    LabelledCase,
    SuggestionModel,
    UncertaintyOptions,
)
from active_learning.models import LoopSettings
from active_learning.services import metric_schema
from active_learning.services.loop_settings import match_iou_for

# Cases predicted at once by both models while gathering the paired outcomes.
CHUNK = 16


@dataclass
class Evidence:
    """What the guard decides on. ``validation_labels``: labelled validation cases;
    ``positives``: per class, validation cases where the finding is present or boxed;
    ``bootstrap``: :meth:`BootstrapResult.as_dict`, None without a serving version to compare
    with; ``bootstrap_error``: why there is no bootstrap although there is a serving version;
    ``match_iou``: the IoU boxes match at (3D for the CT detector); ``measure``: what the
    metric measures for this kind, in words ("" where its name says it)."""

    metric: str
    validation_labels: int
    positives: dict[str, int] = field(default_factory=dict)
    bootstrap: dict[str, Any] | None = None
    bootstrap_error: str = ""
    match_iou: float = pb.IOU_THRESHOLD
    measure: str = ""


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def _light(case: LabelledCase) -> LabelledCase:
    """The labels of ``case`` without its pixels (kept for the whole validation set)."""
    return LabelledCase(
        case_id=case.case_id,
        image=np.zeros((1, 1), dtype=np.float32),
        boxes=case.boxes,
        findings=case.findings,
        report=case.report,
    )


def positives_per_class(cases: list[LabelledCase], classes: list[str]) -> dict[str, int]:
    """Per class, the cases whose labels say the finding is present or draw a box of it."""
    return {
        name: sum(
            1
            for case in cases
            if case.findings.get(name) is True or any(b.finding == name for b in case.boxes)
        )
        for name in classes
    }


def gather_evidence(
    *,
    cases: Any,
    candidate: SuggestionModel,
    serving: SuggestionModel | None,
    metric: str,
    loop: LoopSettings,
) -> Evidence:
    """Run ``candidate`` (and ``serving``) over the labelled validation ``cases`` (an iterable,
    streamed in chunks) and compare their predictions (:func:`compare_predictions`)."""
    options = UncertaintyOptions(box_stability=False)
    labels: list[LabelledCase] = []
    ours: list[CasePrediction] = []
    theirs: list[CasePrediction] = []
    chunk: list[LabelledCase] = []

    def flush() -> None:
        ours.extend(candidate.predict(chunk, uncertainty=options))
        if serving is not None:
            theirs.extend(serving.predict(chunk, uncertainty=options))
        labels.extend(_light(case) for case in chunk)
        chunk.clear()

    for case in cases:
        chunk.append(case)
        if len(chunk) == CHUNK:
            flush()
    if chunk:
        flush()
    return compare_predictions(
        labels=labels,
        candidate=ours,
        serving=theirs if serving is not None else None,
        classes=list(candidate.finding_classes),
        serving_classes=list(serving.finding_classes) if serving is not None else None,
        kind=candidate.kind,
        metric=metric,
        loop=loop,
    )


def compare_predictions(
    *,
    labels: list[LabelledCase],
    candidate: list[CasePrediction],
    serving: list[CasePrediction] | None,
    classes: list[str],
    serving_classes: list[str] | None,
    kind: str,
    metric: str,
    loop: LoopSettings,
) -> Evidence:
    """The guard's evidence from the ``candidate``'s (and ``serving``'s) predictions on the
    labelled validation cases ``labels`` (same order): positives per class and the paired
    bootstrap of ``metric``, boxes matched at the IoU of the candidate's ``kind`` under
    ``loop`` (:func:`~active_learning.services.loop_settings.match_iou_for`: a CT project's
    ``froc_iou`` in 3D), ``combined`` the kind's
    (:func:`~active_learning.services.metric_schema.combined_parts`)."""
    match_iou = match_iou_for(kind, loop)
    evidence = Evidence(
        metric=metric,
        validation_labels=len(labels),
        positives=positives_per_class(labels, classes),
        match_iou=match_iou,
        measure=metric_schema.metric_words(metric, kind=kind, match_iou=match_iou),
    )
    if serving is None or not labels:
        return evidence
    if serving_classes != classes:
        evidence.bootstrap_error = "the serving version knows other findings"
        return evidence
    try:
        result = pb.paired_bootstrap(
            pb.case_outcomes(candidate, labels, classes, match_iou=match_iou),
            pb.case_outcomes(serving, labels, classes, match_iou=match_iou),
            metric_name=metric,
            resamples=loop.bootstrap_resamples,
            seed=loop.bootstrap_seed,
            confidence=loop.bootstrap_confidence,
            combined_parts=metric_schema.combined_parts(kind),
        )
    except pb.UnsupportedMetric as exc:
        evidence.bootstrap_error = str(exc)
        return evidence
    evidence.bootstrap = result.as_dict()
    return evidence


def _positives_text(positives: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in positives.items()) or "none"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.4f}"


def decide(
    *,
    evidence: Evidence,
    candidate_value: float | None,
    serving_value: float | None,
    has_serving: bool,
    loop: LoopSettings,
) -> Decision:
    """Promote or wait (module docstring). ``candidate_value``/``serving_value``: the promotion
    metric from each version's evaluation on the validation labels."""
    n, needed = evidence.validation_labels, loop.min_validation_labels
    positives = _positives_text(evidence.positives)
    # The metric, with what it measures where its name does not say (a CT version's).
    name = f"{evidence.metric} ({evidence.measure})" if evidence.measure else evidence.metric
    if n < needed:
        return Decision(
            False,
            f"{n} validation labels, fewer than the {needed} automatic promotion needs "
            f"(positives per class: {positives})",
        )
    if candidate_value is None:
        return Decision(False, f"no {name} on the {n} validation labels")
    if not has_serving:
        return Decision(
            True,
            f"first version: {name} {candidate_value:.4f} on {n} validation labels "
            f"(positives per class: {positives})",
        )
    if serving_value is None:
        return Decision(True, f"{name} {candidate_value:.4f}; the serving version has none")
    if evidence.bootstrap is None:
        return Decision(False, f"no paired comparison: {evidence.bootstrap_error or 'no cases'}")
    b = evidence.bootstrap
    interval = (
        f"{name} {candidate_value:.4f} vs {serving_value:.4f}; paired difference "
        f"(recomputed per case from every candidate) "
        f"{_number(b['difference'])}, {b['confidence']:.0%} interval "
        f"[{_number(b['low'])}, {_number(b['high'])}] over {b['resamples_used']} resamples of "
        f"{n} validation cases"
    )
    if b["low"] is not None and b["low"] > 0:
        return Decision(True, f"gain beyond noise: {interval}")
    return Decision(False, f"no gain beyond noise: {interval}")


def promotion_check(
    *, evidence: Evidence, decision: Decision, loop: LoopSettings, auto_promote: bool
) -> dict[str, Any]:
    """The JSON stored on the version and in the cycle's outcome: the numbers and the verdict."""
    return {
        "metric": evidence.metric,
        "measure": evidence.measure,
        "match_iou": evidence.match_iou,
        "validation_labels": evidence.validation_labels,
        "min_validation_labels": loop.min_validation_labels,
        "positives": evidence.positives,
        "bootstrap": evidence.bootstrap,
        "bootstrap_error": evidence.bootstrap_error,
        "passed": decision.promote,
        "reason": decision.reason,
        "auto_promote": auto_promote,
        "waiting_for_owner": not (decision.promote and auto_promote),
    }
