"""Scoring: run a model version over cases and store its suggestions (boxes, findings, report
draft, uncertainty, acquisition score). Idempotent: scoring a case again with the same version
replaces that version's suggestion for it.

A model that reads volumes (the 3D CT detector) scores the case's first regular series; its
boxes are stored as 3D boxes, as annotators' are: the series, the slice range [first, last]
(1-based, position order), the pixels on each slice, patient mm
(``annotations.services.volume_boxes.suggestion_box``), plus the voxel box (``z``, ``depth`` in
slices, 0-based) and its uncertainty. Each scored case's explanation of its top suggested
findings is queued (``explanation_jobs.queue_after_scoring``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import transaction

from active_learning.ml.interface import ModelInputError, UncertaintyOptions, batched
from active_learning.models import ModelVersion, Suggestion
from active_learning.services import explanation_jobs
from active_learning.services.case_inputs import (
    CaseNotReadable,
    case_input,
    first_instance,
    reads_volumes,
    volume_input,
)
from active_learning.services.versions import load_version
from annotations.models import Case
from annotations.services import volume_boxes
from annotations.services.errors import InvalidInput


@dataclass
class ScoringResult:
    stored: int = 0
    skipped: dict[int, str] = field(default_factory=dict)  # case id -> reason


def score_cases(
    *,
    version: ModelVersion,
    case_ids: Sequence[int],
    uncertainty: UncertaintyOptions | None = None,
    batch_size: int = 8,
    embeddings: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ScoringResult:
    """Suggestions of ``version`` for ``case_ids`` (cases of its project only), with the case
    embedding when ``embeddings`` (for diversity sampling). A case the model cannot read is
    skipped with its reason, never failing the batch. ``progress`` is called after each batch
    of ``batch_size`` with the cases handled so far (stored or skipped)."""
    model = load_version(version)
    volumes = reads_volumes(model)
    read = volume_input if volumes else case_input
    series_volumes: dict[int, volume_boxes.SeriesVolume] = {}
    result = ScoringResult()
    cases = Case.objects.filter(project=version.project_id, pk__in=case_ids).order_by("pk")
    for chunk in batched(cases.iterator(chunk_size=100), batch_size):
        inputs, readable = [], []
        for case in chunk:
            try:
                inputs.append(read(case))
                readable.append(case)
            except (CaseNotReadable, OSError, ValueError) as exc:
                result.skipped[case.pk] = str(exc)
        predictions = []
        try:
            predictions = model.predict(inputs, uncertainty=uncertainty)
        except ModelInputError:
            # One unreadable image: score the batch case by case to keep the others.
            for case, item in zip(readable, inputs, strict=True):
                try:
                    predictions += model.predict([item], uncertainty=uncertainty)
                except ModelInputError as exc:
                    result.skipped[case.pk] = str(exc)
            inputs = [item for case, item in zip(readable, inputs, strict=True)
                      if case.pk not in result.skipped]  # fmt: skip
            readable = [case for case in readable if case.pk not in result.skipped]
        vectors: list[Any] = [None] * len(inputs)
        if embeddings and inputs:
            given = [p.embedding for p in predictions if p.embedding is not None]
            # A model whose predict does not give the embedding costs one more pass.
            complete = len(given) == len(predictions)
            computed = np.stack(given) if complete else model.embed(inputs)
            vectors = np.round(computed, 5).tolist()
        rows = []
        for case, item, prediction, vector in zip(
            readable, inputs, predictions, vectors, strict=True
        ):
            data = prediction.as_suggestion()
            if volumes:
                series_id = int(getattr(item, "series_id", 0))
                try:
                    data["boxes"] = [
                        _volume_box(box, series_id, series_volumes) for box in data["boxes"]
                    ]
                except InvalidInput as exc:  # the series changed since it was read
                    result.skipped[case.pk] = str(exc)
                    continue
            else:
                instance = first_instance(case)
                for box in data["boxes"]:
                    box["instance_id"] = instance.pk
                    box["frame"] = 1
            rows.append((case, prediction, vector, data))
        with transaction.atomic():
            for case, prediction, vector, data in rows:
                Suggestion.objects.update_or_create(
                    case=case,
                    model_version=version,
                    defaults={
                        **data,
                        "acquisition_score": prediction.case_score,
                        "embedding": vector,
                    },
                )
                result.stored += 1
        if volumes and rows:
            # Explaining a volume takes longer than scoring it: queued, it waits on the
            # inference queue behind the scoring, never delaying the suggestions.
            explanation_jobs.queue_after_scoring(
                version=version, scored=[(case, data) for case, _, _, data in rows]
            )
        if progress is not None:
            progress(result.stored + len(result.skipped))
    return result


def _volume_box(
    box: dict[str, Any], series_id: int, cache: dict[int, volume_boxes.SeriesVolume]
) -> dict[str, Any]:
    """A 3D suggestion box (voxels, ``z``/``depth`` in slices from 0) as stored: the slices it
    covers most of, 1-based, and what :func:`volume_boxes.suggestion_box` adds (series, the
    middle slice to show it on, patient mm), keeping the voxel box and its uncertainty."""
    volume = cache.get(series_id) or volume_boxes.series_volume(series_id)
    cache[series_id] = volume
    count = len(volume.stack.instance_ids)
    z, depth = float(box["z"]), float(box["depth"])
    first = min(max(1, round(z) + 1), count)
    last = min(max(first, round(z + depth)), count)
    stored = volume_boxes.suggestion_box(
        box_id=str(box["id"]),
        series_id=series_id,
        x=float(box["x"]),
        y=float(box["y"]),
        width=float(box["width"]),
        height=float(box["height"]),
        slices=[first, last],
        finding=str(box["finding"]),
        score=float(box["score"]),
        volumes=cache,
    )
    kept = ("z", "depth", "uncertainty", "localization_instability", "class_entropy")
    extra: dict[str, Any] = {k: box[k] for k in (*kept, "detector_score") if k in box}
    return {**stored, **extra}
