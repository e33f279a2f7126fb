"""Self-supervised pretraining of a project's image backbone, registered as an artefact.

The unlabelled pool is the one large asset every project has. When a project holds enough
images (``MEDLOOP_PRETRAIN_MIN_IMAGES``, the first image of each case outside the validation
hold-out) and again each time the pool has grown ``MEDLOOP_PRETRAIN_GROWTH`` times, the
``active_learning.pretrain_backbone`` task (training queue) runs :func:`run_pretraining`:
SimCLR on those images (:mod:`active_learning.ml.pretraining`), the backbone written once under
``MODELS_DIR/project-<id>/pretrained/b<number>`` and registered as a
:class:`~active_learning.models.PretrainedBackbone` row with its checksum and the instance ids it
saw. Validation cases are left out so that the validation metrics never profit from their pixels.

Its uses: a cycle that trains from scratch starts the detector's feature extractor from the
newest ready backbone (:func:`backbone_for_cold_start`), and before any model version exists
the queue is ranked on its embeddings (:func:`cold_start_embeddings`: TypiClust, k-center).

Idempotent: a run whose image set is the one already pretrained on, or that has not grown enough,
does nothing; a second delivery while one runs stops at the database's one-running-row rule.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from active_learning.ml.builtin.config import BuiltinConfig
from active_learning.ml.interface import CheckpointError
from active_learning.ml.pretraining import (
    LoadedBackbone,
    PretrainConfig,
    backbone_fits,
    embed_images,
    images_digest,
    load_backbone,
    pretrain,
    save_backbone,
)
from active_learning.models import BackboneEmbedding, PretrainedBackbone, TestSetPlan
from active_learning.services.case_inputs import CaseNotReadable, instance_pixels
from active_learning.services.deliveries import claim_alive
from active_learning.services.loop_settings import loop_settings
from annotations.models import Instance, Project
from annotations.services import audit, ethics
from medloop.celery import send_after_commit

logger = logging.getLogger(__name__)

Status = PretrainedBackbone.Status
# Points of the loss curve kept in the database row (the artefact keeps every step).
CURVE_POINTS = 200
_loaded: dict[tuple[str, str], LoadedBackbone] = {}
_loaded_lock = threading.Lock()


def backbone_directory(project: Project, number: int) -> Path:
    """Where backbone ``number`` of ``project`` is written (once)."""
    return Path(settings.MODELS_DIR) / f"project-{project.pk}" / "pretrained" / f"b{number:04d}"


def pool_images(project: Project) -> list[tuple[int, int]]:
    """``(case id, instance id)`` of the image a model reads for each case of ``project``
    outside the validation hold-out and the locked test set, sorted by case id. A test set
    case's image is never seen, not even unlabelled: a backbone that had learnt its pixels
    would make the test set's figures no longer those of unseen cases (issue 16). While the
    project has a test set plan, a case the draw has not decided yet waits for it."""
    pool = Q(series__study__case__project=project, series__study__case__is_validation=False)
    pool &= ~Q(series__study__case__test_set_draw__held_out=True)
    if TestSetPlan.objects.filter(project=project).exists():
        pool &= Q(series__study__case__test_set_draw__held_out=False)
    return _first_instances(pool)


def _first_instances(*conditions: Q, **case_filter: Any) -> list[tuple[int, int]]:
    """``(case id, instance id)`` of each matching case's first instance that is not
    quarantined, in the order of :func:`~active_learning.services.case_inputs.first_instance`."""
    rows = (
        Instance.objects.filter(*conditions, quarantined=False, **case_filter)
        .order_by(
            "series__study__case__id", "series__series_number", "series_id", "instance_number", "id"
        )
        .values_list("series__study__case__id", "pk")
    )
    first: dict[int, int] = {}
    for case_id, instance_id in rows:
        first.setdefault(case_id, instance_id)
    return sorted(first.items())


def latest_backbone(project: Project) -> PretrainedBackbone | None:
    """The project's newest ready backbone, or None."""
    return (
        PretrainedBackbone.objects.filter(project=project, status=Status.READY)
        .order_by("-number")
        .first()
    )


@dataclass(frozen=True)
class Due:
    """Whether pretraining should run now, and why (shown in logs and the task's result)."""

    due: bool
    reason: str
    images: int


def pretraining_due(project: Project, images: list[tuple[int, int]] | None = None) -> Due:
    """Due when the pool reached ``MEDLOOP_PRETRAIN_MIN_IMAGES`` and, after a first backbone,
    grew ``MEDLOOP_PRETRAIN_GROWTH`` times the images that one saw (and is not the same set)."""
    pool = pool_images(project) if images is None else images
    count = len(pool)
    minimum = settings.MEDLOOP_PRETRAIN_MIN_IMAGES
    if count < max(minimum, 2):
        return Due(False, f"{count} images; pretraining starts at {max(minimum, 2)}", count)
    latest = latest_backbone(project)
    if latest is None:
        return Due(True, f"{count} images and no pretrained backbone yet", count)
    if images_digest(str(i) for _, i in pool) == latest.images_sha256:
        return Due(False, f"backbone {latest.number} was pretrained on these {count} images", count)
    needed = int(np.ceil(latest.image_count * settings.MEDLOOP_PRETRAIN_GROWTH))
    if count < needed:
        return Due(
            False,
            f"{count} images; backbone {latest.number} saw {latest.image_count}, "
            f"the next pretraining starts at {needed}",
            count,
        )
    return Due(
        True, f"{count} images, {latest.image_count} when backbone {latest.number} ran", count
    )


def maybe_queue_pretraining(project: Project) -> bool:
    """Queue ``active_learning.pretrain_backbone`` (after commit) when pretraining is due and
    none runs for the project (and the project's ethics approval, where it needs one, is
    current). Returns whether it was queued."""
    if ethics.status_of(project).read_only:
        return False
    if PretrainedBackbone.objects.filter(project=project, status=Status.RUNNING).exists():
        return False
    if not pretraining_due(project).due:
        return False
    send_after_commit("active_learning.pretrain_backbone", project.pk)
    return True


def _claim(project: Project, owner: str) -> PretrainedBackbone | None:
    """A new running row for ``owner``; None while another live delivery runs one."""
    for _ in range(2):
        try:
            with transaction.atomic():
                number = (
                    PretrainedBackbone.objects.filter(project=project).aggregate(n=Max("number"))[
                        "n"
                    ]
                    or 0
                ) + 1
                return PretrainedBackbone.objects.create(
                    project=project, number=number, status=Status.RUNNING, claimed_by=owner
                )
        except IntegrityError:
            running = PretrainedBackbone.objects.filter(
                project=project, status=Status.RUNNING
            ).first()
            if running is None:
                continue  # it finished in between (or a number raced): ask again
            # A pretraining sends no heartbeat: its start is its last sign of life.
            alive = claim_alive(
                running.claimed_by,
                running.created_at,
                stale_seconds=settings.MEDLOOP_PRETRAIN_STALE_SECONDS,
            )
            if alive:
                logger.info("project %s: backbone %s is pretraining", project.pk, running.number)
                return None
            _finish(running, status=Status.FAILED, error=f"{running.claimed_by} stopped")
    return None


def _finish(row: PretrainedBackbone, *, status: str, error: str = "", **fields: Any) -> None:
    row.status = status
    row.error = error[:4000]
    row.finished_at = timezone.now()
    for name, value in fields.items():
        setattr(row, name, value)
    row.save()


def pretrain_config(config: BuiltinConfig) -> PretrainConfig:
    """The run's settings: ``MEDLOOP_PRETRAIN_*``, overridden per project by
    ``model_config["extra"]["pretraining"]`` (a dict of :class:`PretrainConfig` fields)."""
    values: dict[str, Any] = {
        "steps": settings.MEDLOOP_PRETRAIN_STEPS,
        "batch_size": settings.MEDLOOP_PRETRAIN_BATCH,
        "max_images": settings.MEDLOOP_PRETRAIN_MAX_IMAGES,
        "max_seconds": float(settings.MEDLOOP_PRETRAIN_MAX_SECONDS) or None,
        "image_size": settings.MEDLOOP_PRETRAIN_IMAGE_SIZE or None,
        "seed": config.seed,
    }
    extra = getattr(config, "extra", None) or {}
    values.update(extra.get("pretraining") or {})
    return PretrainConfig.from_dict(values)


def _pixels(instance_ids: list[int]) -> Iterator[tuple[str, np.ndarray]]:
    """``(instance id, pixels)`` of each readable instance, streamed 100 rows at a time."""
    for start in range(0, len(instance_ids), 100):
        chunk = Instance.objects.filter(pk__in=instance_ids[start : start + 100]).order_by("pk")
        for instance in chunk:
            try:
                yield str(instance.pk), instance_pixels(instance)
            except (CaseNotReadable, OSError, ValueError) as exc:
                logger.warning("instance %s left out of pretraining: %s", instance.pk, exc)


def run_pretraining(project_id: int, *, owner: str) -> PretrainedBackbone | None:
    """Pretrain, save and register a backbone for the project when it is due; then store the
    embeddings of its cases. Returns the new ready row, or None when nothing was to be done
    (not due, same images as the last one, another delivery running it)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return None
    if ethics.status_of(project).read_only:
        logger.info("project %s: no pretraining: no current ethics approval", project.pk)
        return None
    images = pool_images(project)
    due = pretraining_due(project, images)
    if not due.due:
        logger.info("project %s: no pretraining: %s", project.pk, due.reason)
        return None
    row = _claim(project, owner)
    if row is None:
        return None
    directory = backbone_directory(project, row.number)
    try:
        overrides = loop_settings(project).model_config
        config = BuiltinConfig(finding_classes=tuple(project.finding_keys), **overrides)
        run_config = pretrain_config(config)
        result = pretrain(
            _pixels([instance_id for _, instance_id in images]),
            backbone_config=config,
            config=run_config,
        )
        # Left by a delivery that died before registering: never registered, never used.
        if directory.exists():
            shutil.rmtree(directory)
        manifest = save_backbone(result, directory)
    except Exception as exc:
        _finish(row, status=Status.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    seen = [int(i) for i in result.image_ids]
    stride = max(1, len(result.losses) // CURVE_POINTS)
    _finish(
        row,
        status=Status.READY,
        weights_path=str(directory),
        weights_sha256=manifest["checksum"],
        instance_ids=seen,
        image_count=len(seen),
        images_sha256=images_digest(result.image_ids),
        config={"backbone": result.backbone_config, "pretraining": run_config.to_dict()},
        metrics={
            "steps": result.steps,
            "seconds": round(result.seconds, 2),
            "stopped_early": result.stopped_early,
            "loss_first": result.losses[0] if result.losses else None,
            "loss_last": result.losses[-1] if result.losses else None,
            "loss_curve": [round(v, 4) for v in result.losses[::stride]],
            "loss_curve_stride": stride,
        },
    )
    audit.record(
        action="backbone.pretrain",
        target=row,
        project_id=project.pk,
        detail={"number": row.number, "images": len(seen), "steps": result.steps},
    )
    logger.info(
        "project %s: backbone %s pretrained on %d images, %d steps, %.0f s",
        project.pk,
        row.number,
        len(seen),
        result.steps,
        result.seconds,
    )
    # Every case outside validation is embedded for the cold-start ranking, the test set's
    # too (read, never learnt from: its readers need it in the queue).
    ranked = _first_instances(
        series__study__case__project=project, series__study__case__is_validation=False
    )
    cold_start_embeddings(project, [case_id for case_id, _ in ranked])
    # Before a first model the queue is ranked on these embeddings: rank it again now.
    send_after_commit("active_learning.rerank_project", project.pk)
    return row


def _load(row: PretrainedBackbone) -> LoadedBackbone:
    """The row's backbone, verified against its registered checksum (one kept per process)."""
    key = (row.weights_path, row.weights_sha256)
    with _loaded_lock:
        if key in _loaded:
            return _loaded[key]
    loaded = load_backbone(row.weights_path, expected_checksum=row.weights_sha256)
    with _loaded_lock:
        _loaded.clear()
        _loaded[key] = loaded
    return loaded


def clear_cache() -> None:
    """Forget loaded backbones (for tests)."""
    with _loaded_lock:
        _loaded.clear()


def backbone_for_cold_start(
    project: Project, config: BuiltinConfig
) -> tuple[PretrainedBackbone | None, str]:
    """The backbone a cycle training from scratch starts from, and why (for the cycle's log):
    the newest ready one whose files match the registered checksum and whose shapes fit
    ``config``; None when there is none, or it does not fit (the reason says which)."""
    row = latest_backbone(project)
    if row is None:
        return None, "no pretrained backbone"
    try:
        loaded = _load(row)
    except CheckpointError as exc:
        return None, f"pretrained backbone {row.number} refused: {exc}"
    if not backbone_fits(config, loaded):
        return None, f"pretrained backbone {row.number} does not fit the model's settings"
    return row, f"pretrained backbone {row.number} ({row.image_count} images)"


def cold_start_embeddings(project: Project, case_ids: list[int]) -> dict[int, np.ndarray] | None:
    """Case id -> the newest ready backbone's embedding of the case's first image (computed
    once per case and backbone, then kept); None when the project has no usable backbone.
    Cases without a readable image are left out."""
    row = latest_backbone(project)
    if row is None:
        return None
    known = {
        case_id: np.asarray(vector, dtype=np.float32)
        for case_id, vector in BackboneEmbedding.objects.filter(
            backbone=row, case_id__in=case_ids
        ).values_list("case_id", "vector")
    }
    missing = [case_id for case_id in case_ids if case_id not in known]
    if not missing:
        return known
    try:
        loaded = _load(row)
    except CheckpointError as exc:
        logger.error("project %s: backbone %s refused: %s", project.pk, row.number, exc)
        return None
    case_of = {
        str(instance_id): case_id
        for case_id, instance_id in _first_instances(series__study__case__id__in=missing)
    }
    ids, vectors = embed_images(loaded, _pixels([int(i) for i in case_of]))
    new = []
    for instance_id, vector in zip(ids, vectors, strict=True):
        case_id = case_of[instance_id]
        known[case_id] = vector
        new.append(
            BackboneEmbedding(case_id=case_id, backbone=row, vector=np.round(vector, 5).tolist())
        )
    BackboneEmbedding.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    return known
