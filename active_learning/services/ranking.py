"""Re-ranking the queue: the project's acquisition strategy orders the open cases by what the
serving model version stored for them (uncertainty scores, embeddings) and writes
``Case.priority``, which the queue serves highest first.

Scoring is separate from choosing (as in MONAI Label): the scores were stored by the scoring
stage, tagged with the version that made them; ranking only reads them, so it is cheap and can
run again whenever the strategy changes. Before a first model exists, strategies that need
a model give way to TypiClust, on the embeddings of the project's pretrained backbone
(:mod:`active_learning.services.pretraining`) or, without one, on simple image features
(:func:`image_feature_vector`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from django.db import transaction
from PIL import Image

from active_learning import strategies
from active_learning.ml import acquisition
from active_learning.models import ImageFeatures, ModelVersion, Suggestion
from active_learning.services.case_inputs import (
    CaseNotReadable,
    first_instance,
    instance_pixels,
    training_annotations,
)
from active_learning.services.loop_settings import loop_settings
from active_learning.services.pretraining import cold_start_embeddings
from active_learning.services.versions import promoted_version
from annotations.models import Box, Case, Project

logger = logging.getLogger(__name__)

FEATURE_SIDE = 16
DEFAULT_BATCH = 10


def image_feature_vector(pixels: np.ndarray) -> np.ndarray:
    """A 256-value description of an image: its 16 x 16 area-averaged thumbnail, standardised
    (zero mean, unit variance), so that cases look alike when their anatomy and lesions do,
    whatever their window or bit depth."""
    image = Image.fromarray(np.asarray(pixels, dtype=np.float32), mode="F")
    small = np.asarray(image.resize((FEATURE_SIDE, FEATURE_SIDE), Image.Resampling.BOX))
    small = small.astype(np.float64).ravel()
    spread = small.std()
    return ((small - small.mean()) / (spread if spread > 0 else 1.0)).astype(np.float32)


def image_features(case_ids: Iterable[int]) -> dict[int, np.ndarray]:
    """Image features of the cases, computed once per case and kept (``ImageFeatures``)."""
    ids = list(case_ids)
    known = {
        case_id: np.asarray(vector, dtype=np.float32)
        for case_id, vector in ImageFeatures.objects.filter(case_id__in=ids).values_list(
            "case_id", "vector"
        )
    }
    missing = [i for i in ids if i not in known]
    new = []
    for case in Case.objects.filter(pk__in=missing).iterator(chunk_size=200):
        try:
            vector = image_feature_vector(instance_pixels(first_instance(case)))
        except (CaseNotReadable, OSError, ValueError) as exc:
            logger.warning("no image features for case %s: %s", case.pk, exc)
            continue
        known[case.pk] = vector
        new.append(ImageFeatures(case=case, vector=np.round(vector, 4).tolist()))
    ImageFeatures.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    return known


def _number(value: Any, default: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if np.isfinite(number) else default


def suggestion_scores(
    row: Mapping[str, Any], thresholds: Mapping[str, float | None] | None = None
) -> dict[str, float]:
    """The scores a strategy reads from a stored suggestion: ``case_score`` (the model's
    combined score), ``boxes`` (the image part of :mod:`active_learning.ml.acquisition` from
    every stored candidate, low scores included, against the version's operating
    ``thresholds``, with the likely-miss term), ``findings`` (mean BALD or entropy per class),
    ``report`` (mean token entropy, plus MC-dropout draft disagreement when it ran) and
    ``p:<finding>`` (the calibrated probability of each finding, for class-balanced picks)."""
    uncertainty = row["uncertainty"] or {}
    scores: dict[str, float] = {}
    if row["acquisition_score"] is not None:
        scores["case_score"] = float(row["acquisition_score"])
    probabilities = {
        str(finding): _number(p) for finding, p in (row.get("finding_probabilities") or {}).items()
    }
    for finding, p in probabilities.items():
        scores[strategies.base.CLASS_PROBABILITY_PREFIX + finding] = p
    shown = list(row["boxes"] or [])
    # Suggestions stored before candidates were kept: the shown boxes stand in.
    candidates = list(uncertainty.get("candidates") or shown)
    scores["boxes"] = acquisition.acquisition_parts(
        candidate_findings=[str(b.get("finding", "")) for b in candidates],
        candidate_scores=[_number(b.get("score")) for b in candidates],
        candidate_instability=[
            _number((b.get("uncertainty") or {}).get("localization_instability"))
            for b in candidates
        ],
        shown_findings=[str(b.get("finding", "")) for b in shown],
        thresholds=thresholds or {},
        finding_probabilities=probabilities,
        finding_uncertainty=[],
        report_token_entropy=None,
        vocab_size=2,
    ).image
    findings = [float(v) for v in (uncertainty.get("findings") or {}).values()]
    if findings:
        scores["findings"] = float(np.mean(findings))
    report = uncertainty.get("report") or {}
    if "mean_token_entropy" in report:
        scores["report"] = float(report["mean_token_entropy"]) + float(
            report.get("mc_disagreement", 0.0)
        )
    return scores


def version_thresholds(version: ModelVersion) -> dict[str, float | None]:
    """The version's operating threshold per finding, as its cycle evaluated it on the
    validation labels (``metrics["validation"]["operating_points"]``); empty before any."""
    validation = (version.metrics or {}).get("validation") or {}
    points = validation.get("operating_points") if isinstance(validation, dict) else None
    return acquisition.box_thresholds(points if isinstance(points, dict) else None)


def labelled_positives(project: Project) -> dict[str, int]:
    """Per finding of the project's schema, the labelled training cases that show it (the
    finding marked present, or a box of it drawn)."""
    labels = training_annotations(project)
    present: dict[str, set[int]] = {key: set() for key in project.finding_keys}
    for pk, findings in labels.values_list("pk", "findings"):
        for key, state in (findings or {}).items():
            if state == "present" and key in present:
                present[key].add(pk)
    boxed = Box.objects.filter(annotation__in=labels).values_list("annotation_id", "finding")
    for pk, finding in boxed.distinct():
        if finding in present:
            present[finding].add(pk)
    return {key: len(cases) for key, cases in present.items()}


def candidates_for(
    project: Project,
    version: ModelVersion | None,
    open_ids: list[int],
    *,
    also_open: Iterable[int] = (),
) -> tuple[list[strategies.Candidate], np.ndarray | None]:
    """The open cases ``open_ids`` as candidates, and the embeddings of the labelled cases
    (k-center starts from them): the version's stored scores and embeddings, or image features
    without one. ``also_open`` are open cases that are not candidates (validation cases): not
    labelled either."""
    if version is None:
        labelled_ids = list(
            Case.objects.filter(project=project).exclude(state=Case.State.OPEN)
            .values_list("pk", flat=True)
        )  # fmt: skip
        # Embeddings of the project's self-supervised backbone when it has one (pretraining).
        features = cold_start_embeddings(project, [*open_ids, *labelled_ids])
        if features is None:
            features = image_features([*open_ids, *labelled_ids])
        labelled = [features[i] for i in labelled_ids if i in features]
        return (
            [strategies.Candidate(i, {}, features.get(i)) for i in open_ids],
            np.stack(labelled) if labelled else None,
        )
    rows = {
        row["case_id"]: row
        for row in Suggestion.objects.filter(model_version=version).values(
            "case_id",
            "acquisition_score",
            "uncertainty",
            "boxes",
            "embedding",
            "finding_probabilities",
        )
    }
    thresholds = version_thresholds(version)
    open_set = set(open_ids) | set(also_open)
    candidates = []
    for case_id in open_ids:
        row = rows.get(case_id)
        if row is None:
            candidates.append(strategies.Candidate(case_id, {}, None))
            continue
        embedding = row["embedding"]
        candidates.append(
            strategies.Candidate(
                case_id,
                suggestion_scores(row, thresholds),
                np.asarray(embedding, dtype=np.float32) if embedding else None,
            )
        )
    # Cases labelled since this version scored them: their embeddings seed k-center.
    labelled = [
        np.asarray(row["embedding"], dtype=np.float32)
        for case_id, row in rows.items()
        if case_id not in open_set and row["embedding"]
    ]
    return candidates, np.stack(labelled) if labelled else None


def rerank_project(project: Project, *, strategy: str | None = None) -> int:
    """Order the project's open cases with ``strategy`` (default: the project's) and write
    their priorities. Returns the number of cases ranked."""
    loop = loop_settings(project)
    name = strategy or loop.acquisition_strategy
    chosen = strategies.get(name)
    version = promoted_version(project)
    if version is None and chosen.needs_scores:
        # No model yet: typical cases of the image distribution's uncovered clusters (TypiClust).
        chosen = strategies.get("typiclust")
    open_cases = list(
        Case.objects.filter(project=project, state=Case.State.OPEN)
        .order_by("pk")
        .values_list("pk", "is_validation")
    )
    if not open_cases:
        return 0
    # The strategy ranks the training pool only; validation cases are served in their own
    # random order at the project's validation share (strategies.interleave_validation).
    open_ids = [pk for pk, is_validation in open_cases if not is_validation]
    validation_ids = [pk for pk, is_validation in open_cases if is_validation]
    if chosen.needs_scores or chosen.needs_embeddings:
        candidates, labelled = candidates_for(project, version, open_ids, also_open=validation_ids)
    else:
        candidates, labelled = [strategies.Candidate(i, {}, None) for i in open_ids], None
    context = strategies.RankingContext(
        batch_size=loop.auto_retrain_threshold or DEFAULT_BATCH,
        labelled_embeddings=labelled,
        seed=project.pk * 1000 + (version.number if version else 0),
        labelled_positives=labelled_positives(project) if version is not None else {},
    )
    done = Counter(
        Case.objects.filter(project=project).exclude(state=Case.State.OPEN)
        .values_list("is_validation", flat=True)
    )  # fmt: skip
    order = strategies.interleave_validation(
        chosen.rank(candidates, context) if candidates else [],
        strategies.validation_order(validation_ids, key=project.pk),
        share=project.validation_fraction,
        labelled=sum(done.values()),
        labelled_validation=done[True],
    )
    priority = strategies.priorities(order)
    with transaction.atomic():
        cases = list(Case.objects.filter(pk__in=order).only("pk", "priority"))
        changed = []
        for case in cases:
            value = priority.get(case.pk, 0.0)
            if case.priority != value:
                case.priority = value
                changed.append(case)
        Case.objects.bulk_update(changed, ["priority"], batch_size=500)
    logger.info("project %s: %d open cases ranked by %s", project.pk, len(order), chosen.name)
    return len(order)
