"""The work behind a volume's explanation (:mod:`active_learning.services.explanations`), done by
the Celery task ``active_learning.explain_case`` (inference queue), never by a request: compute
the Grad-CAM heat volume of a finding and write its slice overlays into the cache; keep why it
failed, for the request to answer with; and, after scoring, queue the explanations of each
scored case's top suggested findings (``MEDLOOP_EXPLAIN_ON_SCORING`` per case), so the overlay
is usually waiting when the annotator opens the case."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from django.conf import settings

from active_learning.ml.interface import CheckpointError, ModelInputError
from active_learning.models import ModelVersion
from active_learning.services import explanations
from active_learning.services.case_inputs import CaseNotReadable, case_volume, volume_input
from active_learning.services.test_sets import in_test_set
from active_learning.services.versions import load_version
from annotations.atomic_files import write_atomically
from annotations.models import Case


def render_volume_explanation(*, version_id: int, case_id: int, finding: str) -> bool:
    """What ``active_learning.explain_case`` does: compute the overlays of ``finding`` for the
    case's volume by the version and put them in the cache, unless they are there for the
    series as it is now (idempotent: a redelivery, or a second task, finds them done). Returns
    whether it computed them; False too for a version or case gone since it was queued."""
    version = ModelVersion.objects.filter(pk=version_id).first()
    case = Case.objects.filter(pk=case_id).first()
    if version is None or case is None or case.project_id != version.project_id:
        return False
    series, volume = case_volume(case)
    instance_ids = list(volume.stack.instance_ids)
    folder = explanations.volume_folder(version, case, finding)
    computed = False
    if explanations.current_meta(folder, series.pk, instance_ids) is None:
        model = load_version(version)
        read = volume_input(case)
        heat = model.explain(read, finding)
        if heat.shape != np.shape(read.image) or len(heat) != len(instance_ids):
            raise ValueError(
                f"{version.model_kind} explained a volume of shape {heat.shape}, "
                f"not the series' {np.shape(read.image)}"
            )
        explanations.write_volume(folder, heat, series.pk, instance_ids)
        computed = True
    explanations.pending_path(version, case, finding).unlink(missing_ok=True)
    if not Case.objects.filter(pk=case_id).exists():  # purged while the task computed
        explanations.delete_overlays([case_id])
    return computed


def record_failure(*, version_id: int, case_id: int, finding: str, exc: BaseException) -> str:
    """Keep why the task failed in the case's ``.pending`` file (the next request answers
    with it, until the file is stale and a request queues the task again); returns the
    message, in the words the request used when it computed the overlays itself."""
    version = ModelVersion.objects.filter(pk=version_id).first()
    case = Case.objects.filter(pk=case_id).first()
    if isinstance(exc, ModelInputError | CaseNotReadable):
        message = f"The model cannot read this case: {exc}"
    elif isinstance(exc, CheckpointError):
        number = version.number if version else version_id
        message = f"Model version {number} cannot be loaded: {exc}"
    else:
        message = f"The explanation could not be computed: {type(exc).__name__}: {exc}"
    if version is not None and case is not None:
        marker = explanations.pending_path(version, case, finding)
        write_atomically(marker, json.dumps({"error": message}).encode())
    return message


def queue_after_scoring(
    *, version: ModelVersion, scored: list[tuple[Case, Mapping[str, Any]]]
) -> int:
    """After ``version`` (a model that reads volumes) scored cases, queue the explanation of
    each case's top ``MEDLOOP_EXPLAIN_ON_SCORING`` suggested findings (``scored``: each case
    with its suggestion's JSON), so the overlay is waiting when the annotator opens it. Cases
    of the locked test set are left out (their readers see no model output), and overlays
    drawn already. Returns how many tasks were queued."""
    limit = settings.MEDLOOP_EXPLAIN_ON_SCORING
    if limit <= 0:
        return 0
    queued = 0
    keys = set(version.project.finding_keys)
    for case, suggestion in scored:
        if in_test_set(case):
            continue
        for finding in [f for f in suggested_findings(suggestion) if f in keys][:limit]:
            # Drawn already (by an earlier scoring): kept. A series changed since is noticed
            # by the request, which queues it again.
            if (explanations.volume_folder(version, case, finding) / "volume.json").is_file():
                continue
            queued += explanations.queue_volume_explanation(
                version=version, case=case, finding=finding
            )
    return queued


def suggested_findings(suggestion: Mapping[str, Any]) -> list[str]:
    """A suggestion's findings, most suggested first: those of its shown boxes by their best
    score, then of its other candidate boxes, then by probability."""
    ranked: dict[str, float] = {}
    candidates = (suggestion.get("uncertainty") or {}).get("candidates") or []
    tiers = ((2.0, suggestion.get("boxes") or []), (1.0, candidates))
    for tier, boxes in tiers:
        for box in boxes:
            key, box_score = str(box.get("finding", "")), float(box.get("score") or 0.0)
            if key:
                ranked[key] = max(ranked.get(key, -1.0), tier + min(max(box_score, 0.0), 1.0))
    for key, probability in (suggestion.get("finding_probabilities") or {}).items():
        ranked.setdefault(str(key), min(max(float(probability or 0.0), 0.0), 1.0))
    return sorted(ranked, key=lambda key: -ranked[key])
