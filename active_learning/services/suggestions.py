"""Scoring: run a model version over cases and store its suggestions (boxes, findings, report
draft, uncertainty, acquisition score). Idempotent: scoring a case again with the same version
replaces that version's suggestion for it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import transaction

from active_learning.ml.interface import ModelInputError, UncertaintyOptions, batched
from active_learning.models import ModelVersion, Suggestion
from active_learning.services.case_inputs import CaseNotReadable, case_input, first_instance
from active_learning.services.versions import load_version
from annotations.models import Case


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
    result = ScoringResult()
    cases = Case.objects.filter(project=version.project_id, pk__in=case_ids).order_by("pk")
    for chunk in batched(cases.iterator(chunk_size=100), batch_size):
        inputs, readable = [], []
        for case in chunk:
            try:
                inputs.append(case_input(case))
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
        with transaction.atomic():
            for case, prediction, vector in zip(readable, predictions, vectors, strict=True):
                instance = first_instance(case)
                data = prediction.as_suggestion()
                for box in data["boxes"]:
                    box["instance_id"] = instance.pk
                    box["frame"] = 1
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
        if progress is not None:
            progress(result.stored + len(result.skipped))
    return result
