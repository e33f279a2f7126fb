"""Backbone pretraining as the platform runs it: the task pretrains once enough images are
ingested, registers a checksummed artefact with the images it saw, does nothing for the same
images, runs again when the pool has doubled, never runs twice at once; its embeddings rank the
cold-start queue and a cycle trained from scratch starts from it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.test import override_settings

from active_learning import tasks
from active_learning.ml.builtin import BuiltinConfig
from active_learning.ml.checkpoints import read_manifest
from active_learning.ml.pretraining import WEIGHTS_FILE, load_backbone
from active_learning.models import (
    BackboneEmbedding,
    ImageFeatures,
    PretrainedBackbone,
    RetrainingCycle,
)
from active_learning.services import cycles, loop_settings, pretraining, ranking, versions
from annotations.models import AuditEvent, Case
from tests.conftest import ingest_synthetic

pytestmark = pytest.mark.django_db

QUICK = {
    "MEDLOOP_PRETRAIN_MIN_IMAGES": 6,
    "MEDLOOP_PRETRAIN_GROWTH": 2.0,
    "MEDLOOP_PRETRAIN_STEPS": 4,
    "MEDLOOP_PRETRAIN_BATCH": 4,
    "MEDLOOP_PRETRAIN_IMAGE_SIZE": 64,
    "MEDLOOP_PRETRAIN_MAX_SECONDS": 0,
}


@pytest.fixture(autouse=True)
def models_dir(tmp_path):
    with override_settings(MODELS_DIR=tmp_path / "models", **QUICK):
        pretraining.clear_cache()
        versions.clear_cache()
        yield tmp_path / "models"
        pretraining.clear_cache()
        versions.clear_cache()


def _pretrain(project) -> int | None:
    """What the training worker does with the task's message."""
    return tasks.pretrain_backbone.apply(args=[project.pk]).get()


def test_nothing_is_pretrained_before_the_pool_reaches_the_threshold(project, synthetic_dir):
    ingest_synthetic(project, synthetic_dir, count=5)
    due = pretraining.pretraining_due(project)
    assert not due.due and due.images == 5 and "starts at 6" in due.reason
    assert _pretrain(project) is None
    assert not PretrainedBackbone.objects.exists()
    assert not pretraining.maybe_queue_pretraining(project)


def test_the_task_registers_a_checksummed_backbone_once_for_the_same_images(project, cases):
    assert pretraining.pretraining_due(project).due
    assert _pretrain(project) == 1
    row = PretrainedBackbone.objects.get(project=project)
    assert row.status == PretrainedBackbone.Status.READY and row.number == 1
    pool = pretraining.pool_images(project)
    assert sorted(row.instance_ids) == sorted(i for _, i in pool) and row.image_count == 12
    assert read_manifest(row.weights_path)["checksum"] == row.weights_sha256
    assert Path(row.weights_path).parent.name == "pretrained"
    assert row.metrics["steps"] == 4 and len(row.metrics["loss_curve"]) == 4
    assert row.config["pretraining"]["image_size"] == 64
    record = load_backbone(row.weights_path, expected_checksum=row.weights_sha256).record
    assert sorted(map(int, record["image_ids"])) == sorted(row.instance_ids)
    assert BackboneEmbedding.objects.filter(backbone=row).count() == 12
    assert AuditEvent.objects.filter(action="backbone.pretrain").count() == 1
    weights = Path(row.weights_path) / WEIGHTS_FILE
    written = weights.stat().st_mtime_ns

    # Redelivered, or queued again by beat: the same images, nothing to do.
    assert not pretraining.pretraining_due(project).due
    assert _pretrain(project) is None
    assert PretrainedBackbone.objects.count() == 1
    assert weights.stat().st_mtime_ns == written
    assert not pretraining.maybe_queue_pretraining(project)


def test_pretraining_runs_again_when_the_pool_has_doubled(project, synthetic_dir):
    ingest_synthetic(project, synthetic_dir, count=6)
    assert _pretrain(project) == 1
    first = PretrainedBackbone.objects.get(number=1)
    first_checksum = read_manifest(first.weights_path)["checksum"]
    Case.objects.filter(project=project).update(is_validation=False)
    ingest_synthetic(project, synthetic_dir)  # the other six: 12 = 2 x 6
    assert pretraining.pretraining_due(project).due
    assert _pretrain(project) == 2
    second = PretrainedBackbone.objects.get(number=2)
    assert second.image_count == 12 and second.weights_path != first.weights_path
    # The first artefact is never overwritten.
    assert read_manifest(first.weights_path)["checksum"] == first_checksum
    assert pretraining.latest_backbone(project) == second


def test_validation_cases_are_never_pretrained_on(project, cases):
    Case.objects.filter(pk__in=[c.pk for c in cases[:4]]).update(is_validation=True)
    assert _pretrain(project) == 1
    row = PretrainedBackbone.objects.get()
    validation_instances = {
        i for case_id, i in pretraining._first_instances(series__study__case__is_validation=True)
    }
    assert row.image_count == 8 and not validation_instances & set(row.instance_ids)


def test_a_live_pretraining_blocks_a_second_one_and_a_dead_one_is_taken_over(project, cases):
    live = PretrainedBackbone.objects.create(
        project=project, number=1, claimed_by=f"{os.uname().nodename}:{os.getpid()}:t1"
    )
    assert not pretraining.maybe_queue_pretraining(project)
    assert _pretrain(project) is None
    assert PretrainedBackbone.objects.count() == 1
    dead_pid = 2**22 + 17  # above the kernel's pid_max: no such process
    live.claimed_by = f"{os.uname().nodename}:{dead_pid}:t1"
    live.save()
    assert _pretrain(project) == 2
    live.refresh_from_db()
    assert live.status == PretrainedBackbone.Status.FAILED and "stopped" in live.error


def test_before_any_model_the_queue_is_ranked_by_typiclust_on_backbone_embeddings(
    project, cases, member
):
    loop_settings.update_loop_settings(
        project=project, changed_by=member("otto", "model_owner"), acquisition_strategy="hybrid"
    )
    assert _pretrain(project) == 1
    assert ranking.rerank_project(project) == 12
    priorities = sorted(Case.objects.filter(project=project).values_list("priority", flat=True))
    assert priorities == [float(i) for i in range(1, 13)]
    assert not ImageFeatures.objects.exists()  # the thumbnails were not needed
    candidates, _ = ranking.candidates_for(project, None, [c.pk for c in cases])
    assert all(c.embedding is not None and c.embedding.shape == (4 * 48,) for c in candidates)


def test_a_tampered_backbone_is_refused_for_a_cold_start(project, cases):
    assert _pretrain(project) == 1
    row = PretrainedBackbone.objects.get()
    config = BuiltinConfig(finding_classes=tuple(project.finding_keys))
    chosen, why = pretraining.backbone_for_cold_start(project, config)
    assert chosen == row and "pretrained backbone 1" in why
    pretraining.clear_cache()
    weights = Path(row.weights_path) / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    chosen, why = pretraining.backbone_for_cold_start(project, config)
    assert chosen is None and "refused" in why and "checksum" in why


def test_a_cycle_from_scratch_starts_from_the_pretrained_backbone(loop_project):
    assert _pretrain(loop_project) == 1
    cycle = cycles.trigger_cycle(project=loop_project)
    cycles.run_training(cycle.pk, owner="test-host:1:task-a")
    cycle.refresh_from_db()
    assert cycle.status == RetrainingCycle.Status.RUNNING, cycle.error
    log = " ".join(cycle.log)
    # The stored detector starting point is built for 256 px; this tiny model reads 128 px.
    assert "stored starting point 'synthetic-cxr-256' does not fit: input_size is 128" in log
    assert "pretrained backbone 1 (9 images)" in log
    assert "starting_point" not in cycle.model_version.metrics
    version = cycle.model_version
    assert version.metrics["pretrained_backbone"]["number"] == 1
    row = PretrainedBackbone.objects.get()
    assert version.metrics["pretrained_backbone"]["sha256"] == row.weights_sha256


def test_the_task_runs_on_the_training_queue_acknowledged_late_and_beat_asks_for_it():
    from django.conf import settings

    assert settings.CELERY_TASK_ROUTES["active_learning.pretrain_backbone"] == {"queue": "training"}
    assert tasks.pretrain_backbone.name == "active_learning.pretrain_backbone"
    assert tasks.pretrain_backbone.acks_late and tasks.pretrain_backbone.reject_on_worker_lost
    from medloop.settings import base  # the test settings turn beat's schedule off

    scheduled = {entry["task"] for entry in base.CELERY_BEAT_SCHEDULE.values()}
    assert "active_learning.schedule_pretraining" in scheduled


def test_beat_queues_pretraining_only_for_projects_where_it_is_due(project, cases):
    assert tasks.schedule_pretraining.apply().get() == [project.pk]
    assert _pretrain(project) == 1
    assert tasks.schedule_pretraining.apply().get() == []


@pytest.mark.parametrize(
    ("cold_start", "expected"),
    [
        ("stored", "stored detector starting point synthetic-cxr-256"),
        ("backbone", "pretrained backbone 1 (9 images)"),
        ("scratch", "from scratch (loop setting)"),
    ],
)
def test_the_loop_setting_picks_what_a_cold_start_begins_from(loop_project, cold_start, expected):
    from active_learning.services.loop_settings import update_loop_settings

    assert _pretrain(loop_project) == 1
    model_config = {**loop_settings.loop_settings(loop_project).model_config, "input_size": 256}
    update_loop_settings(project=loop_project, cold_start=cold_start, model_config=model_config)
    cycle = cycles.trigger_cycle(project=loop_project)
    cycles.run_training(cycle.pk, owner="test-host:1:task-a")
    cycle.refresh_from_db()
    assert cycle.status == RetrainingCycle.Status.RUNNING, cycle.error
    assert f"cold start: {expected}" in " ".join(cycle.log)
    metrics = cycle.model_version.metrics
    assert ("starting_point" in metrics) == (cold_start == "stored")
    assert ("pretrained_backbone" in metrics) == (cold_start == "backbone")


def test_locked_test_set_cases_are_never_pretrained_on(project, cases, member):
    """Issue 16: a backbone never sees a test set case's pixels (nor an undecided case's while
    the project has a plan), though the test set cases are still embedded for the queue."""
    from active_learning.models import TestSetDraw
    from active_learning.services import test_sets

    test_sets.set_plan(project=project, fraction=0.5, actor=member("boss", "lead"))
    held = set(TestSetDraw.objects.filter(held_out=True).values_list("case_id", flat=True))
    assert 0 < len(held) < len(cases)
    pool_cases = {case_id for case_id, _ in pretraining.pool_images(project)}
    assert pool_cases and not pool_cases & held
    # Six images reach the threshold: pretrain on the pool and check what it saw.
    with override_settings(MEDLOOP_PRETRAIN_MIN_IMAGES=len(pool_cases)):
        assert _pretrain(project) == 1
    row = PretrainedBackbone.objects.get()
    held_instances = {
        i for case_id, i in pretraining._first_instances(series__study__case__id__in=held)
    }
    assert row.image_count == len(pool_cases) and not held_instances & set(row.instance_ids)
    embedded = set(BackboneEmbedding.objects.filter(backbone=row).values_list("case_id", flat=True))
    assert held <= embedded
