"""Retraining cycles run stage by stage in this process (the Celery worker runs the same
service functions; tests/integration/test_cycle_worker.py runs them through a real worker):
snapshot, train, evaluate, register, promote or wait, score in chunks, re-rank; claims,
cancellation, failure, automatic trigger, registry (promote, roll back) and their API."""

from __future__ import annotations

import os
import socket

import pytest
from django.test import override_settings
from django.utils import timezone

from active_learning.ml.builtin.model import WEIGHTS_FILE
from active_learning.models import ImageFeatures, ModelVersion, RetrainingCycle, Suggestion
from active_learning.services import cycles, loop_settings, ranking, versions
from active_learning.services.cycle_claims import CycleStopped, claim
from active_learning.services.metric_schema import PROMOTION_METRICS, metric_value
from annotations.models import AuditEvent, Case
from annotations.services import queue
from tests.support.labels import submit_ground_truth
from tests.support.training import OWNER, run_whole_cycle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def models_dir(tmp_path):
    with override_settings(MODELS_DIR=tmp_path / "models", MEDLOOP_SCORING_CHUNK=3):
        versions.clear_cache()
        yield tmp_path / "models"
        versions.clear_cache()


def test_a_cycle_trains_registers_promotes_scores_and_reranks(loop_project, cases):
    cycle = cycles.trigger_cycle(project=loop_project)
    assert cycle.status == RetrainingCycle.Status.QUEUED and cycle.strategy == "hybrid"
    cycle = run_whole_cycle(cycle)

    assert cycle.status == RetrainingCycle.Status.SUCCEEDED, cycle.error
    assert cycle.progress == 100.0 and cycle.stage == "done"
    assert len(cycle.label_snapshot) == 6  # validation labels are never trained on
    assert set(cycle.stage_seconds) == {
        "training",
        "evaluating",
        "registering",
        "scoring",
        "ranking",
    }
    version = cycle.model_version
    assert version.number == 1 and version.status == ModelVersion.Status.PROMOTED
    assert version.label_count == 6 and version.strategy == "hybrid"
    assert version.metrics["validation_labels"] == 3
    assert "map_50" in version.metrics["validation"]["boxes"]
    assert version.code_version.startswith("medloop ")
    assert cycle.outcome["promoted"] and "first version" in " ".join(cycle.log)
    assert version.parent is None and "from scratch" in version.parent_reason

    open_cases = Case.objects.filter(project=loop_project, state=Case.State.OPEN)
    assert open_cases.count() == 3 and len(cycle.chunks) == 1
    stored = Suggestion.objects.filter(model_version=version)
    assert stored.count() == 3
    assert all(len(s.embedding) == 128 for s in stored)  # fusion_hidden of the tiny model
    priorities = sorted(open_cases.values_list("priority", flat=True))
    assert priorities == [1.0, 2.0, 3.0]
    annotator = loop_project.memberships.get(role="annotator").user
    first = queue.lease_next_case(project=loop_project, annotator=annotator)
    assert first.priority == 3.0


def test_a_second_cycle_warm_starts_and_waits_for_the_owner(loop_project, member, api_for):
    first = run_whole_cycle(cycles.trigger_cycle(project=loop_project))
    loop_settings.update_loop_settings(project=loop_project, auto_promote=False)
    second = run_whole_cycle(cycles.trigger_cycle(project=loop_project))
    assert second.status == RetrainingCycle.Status.SUCCEEDED, second.error
    assert "warm start from version 1" in " ".join(second.log)
    candidate = second.model_version
    assert candidate.number == 2 and candidate.parent == first.model_version
    assert candidate.status == ModelVersion.Status.CANDIDATE
    assert not second.outcome["promoted"]
    assert {"candidate", "serving", "metric"} <= set(second.outcome)
    assert versions.promoted_version(loop_project) == first.model_version

    owner = api_for(member("owner1", "model_owner"))
    response = owner.post(f"/api/projects/{loop_project.pk}/model-versions/2/promote/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "promoted"
    assert versions.promoted_version(loop_project).number == 2
    # The worker then scores what version 2 has not scored and re-ranks with its scores.
    assert cycles.refresh_serving(loop_project) == 3
    open_cases = Case.objects.filter(project=loop_project, state=Case.State.OPEN)
    assert Suggestion.objects.filter(model_version=candidate, case__in=open_cases).count() == 3
    assert sorted(open_cases.values_list("priority", flat=True)) == [1.0, 2.0, 3.0]
    response = owner.post(f"/api/projects/{loop_project.pk}/model-versions/rollback/")
    assert response.status_code == 200 and response.json()["number"] == 1
    assert versions.promoted_version(loop_project).number == 1
    assert ModelVersion.objects.get(project=loop_project, number=2).status == "retired"
    # The workspace shows the serving version's suggestion, not the newer rolled-back one's.
    case = open_cases.first()
    shown = {
        s["model_version"]: s["serving"]
        for s in owner.get(f"/api/cases/{case.pk}/suggestions/").json()
    }
    assert shown == {1: True, 2: False}
    assert AuditEvent.objects.filter(action="model.rollback").exists()

    response = owner.post(
        f"/api/projects/{loop_project.pk}/model-versions/rollback/", {"to": 9}, format="json"
    )
    assert response.status_code == 404
    response = owner.post(
        f"/api/projects/{loop_project.pk}/model-versions/rollback/", {"to": "x"}, format="json"
    )
    assert response.status_code == 400


def test_a_version_with_the_transposed_anchor_layout_is_not_built_on(loop_project):
    # Versions saved before MedLoop laid box x along the columns read anchor_indexing "ij":
    # their box weights learnt every box at its transposed place. The next cycle on the
    # default layout starts the lineage over instead of carrying them on.
    tiny = loop_settings.loop_settings(loop_project).model_config
    loop_settings.update_loop_settings(
        project=loop_project, model_config={**tiny, "anchor_indexing": "ij"}
    )
    first = run_whole_cycle(cycles.trigger_cycle(project=loop_project))
    assert first.status == RetrainingCycle.Status.SUCCEEDED, first.error
    assert versions.load_version(first.model_version).config.anchor_indexing == "ij"

    loop_settings.update_loop_settings(project=loop_project, model_config=tiny)
    second = run_whole_cycle(cycles.trigger_cycle(project=loop_project))
    assert second.status == RetrainingCycle.Status.SUCCEEDED, second.error
    version = second.model_version
    assert version.number == 2 and version.parent is None
    assert "version 1 cannot be built on" in version.parent_reason
    assert "'ij'" in version.parent_reason and "from scratch" in version.parent_reason
    assert any("cannot be built on" in line and "cold start" in line for line in second.log)
    assert versions.load_version(version).config.anchor_indexing == "xy"

    # The old version is never built on again, whichever of the two serves.
    third = run_whole_cycle(cycles.trigger_cycle(project=loop_project))
    assert third.status == RetrainingCycle.Status.SUCCEEDED, third.error
    assert third.model_version.parent != first.model_version


def test_one_active_cycle_per_project(loop_project, member, api_for):
    owner = api_for(member("owner1", "model_owner"))
    first = owner.post(f"/api/projects/{loop_project.pk}/cycles/")
    assert first.status_code == 202, first.content
    second = owner.post(f"/api/projects/{loop_project.pk}/cycles/")
    assert second.status_code == 409
    assert second.json()["active_cycle"] == first.json()["id"]
    assert RetrainingCycle.objects.filter(project=loop_project).count() == 1
    progress = owner.get(f"/api/cycles/{first.json()['id']}/").json()
    assert progress["status"] == "queued" and progress["log"]


def test_only_model_owners_start_and_cancel_cycles(loop_project, member, api_for):
    annotator = api_for(member("someone", "annotator"))
    assert annotator.post(f"/api/projects/{loop_project.pk}/cycles/").status_code == 403
    cycle = cycles.trigger_cycle(project=loop_project)
    assert annotator.post(f"/api/cycles/{cycle.pk}/cancel/").status_code == 403
    lead = api_for(member("watcher", "lead"))
    assert lead.get(f"/api/cycles/{cycle.pk}/").status_code == 200  # leads may watch
    assert lead.post(f"/api/cycles/{cycle.pk}/cancel/").status_code == 403


def test_cancelled_cycle_registers_nothing(loop_project, member, api_for):
    owner = api_for(member("owner1", "model_owner"))
    cycle = cycles.trigger_cycle(project=loop_project)
    response = owner.post(f"/api/cycles/{cycle.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert cycles.run_training(cycle.pk, owner=OWNER) is False
    assert not ModelVersion.objects.filter(project=loop_project).exists()
    again = owner.post(f"/api/cycles/{cycle.pk}/cancel/")
    assert again.status_code == 409 and "cancelled" in again.json()["message"]


def test_cancel_during_training_stops_at_the_next_heartbeat(loop_project, monkeypatch):
    cycle = cycles.trigger_cycle(project=loop_project)
    real_report = cycles.record_progress

    def cancel_on_first_progress(target, **kwargs):
        # Training reports "block N, step M" (steps, not epochs, since train_steps).
        if (kwargs.get("log") or "").startswith(("block", "epoch")):
            cycles.cancel_cycle(cycle=target, cancelled_by=None)
        return real_report(target, **kwargs)

    monkeypatch.setattr(cycles, "record_progress", cancel_on_first_progress)
    with pytest.raises(CycleStopped):
        cycles.run_training(cycle.pk, owner=OWNER)
    cycle.refresh_from_db()
    assert cycle.status == RetrainingCycle.Status.CANCELLED
    assert not ModelVersion.objects.filter(project=loop_project).exists()


def test_a_second_delivery_stops_while_the_first_is_alive(loop_project):
    cycle = cycles.trigger_cycle(project=loop_project)
    alive = f"{socket.gethostname()}:{os.getpid()}:task-a"
    assert claim(cycle.pk, alive) is not None
    assert cycles.run_training(cycle.pk, owner="other-host:2:task-b") is False
    assert not ModelVersion.objects.filter(project=loop_project).exists()


def test_a_delivery_takes_over_from_a_dead_one(loop_project):
    cycle = cycles.trigger_cycle(project=loop_project)
    dead_pid = 2**22 + 7  # above the kernel's pid limit: no such process
    claim(cycle.pk, f"{socket.gethostname()}:{dead_pid}:task-a")
    cycle = run_whole_cycle(cycle, owner=f"{socket.gethostname()}:{os.getpid()}:task-b")
    assert cycle.status == RetrainingCycle.Status.SUCCEEDED
    assert "taking over" in " ".join(cycle.log)
    assert cycle.outcome["taken_over_from"] == [f"{socket.gethostname()}:{dead_pid}:task-a"]


def test_redelivered_stages_do_not_repeat_work(loop_project):
    cycle = run_whole_cycle(cycles.trigger_cycle(project=loop_project))
    cycles.run_training(cycle.pk, owner=OWNER)  # the cycle is finished: nothing happens
    cycles.run_scoring_chunk(cycle.pk, 0)
    assert ModelVersion.objects.filter(project=loop_project).count() == 1
    assert Suggestion.objects.filter(case__project=loop_project).count() == 3


def test_a_failed_cycle_keeps_the_promoted_version(loop_project):
    first = run_whole_cycle(cycles.trigger_cycle(project=loop_project))
    versions.clear_cache()
    weights = versions.version_directory(loop_project, 1) / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    second = cycles.trigger_cycle(project=loop_project)
    from active_learning.tasks import train_cycle

    train_cycle.apply(args=[second.pk])  # the task as the worker runs it
    second.refresh_from_db()
    assert second.status == RetrainingCycle.Status.FAILED
    assert "does not match its checksum" in second.error
    assert versions.promoted_version(loop_project) == first.model_version
    assert ModelVersion.objects.filter(project=loop_project).count() == 1


def test_automatic_trigger_at_the_threshold(project, cases, member, synthetic_dir):
    loop_settings.update_loop_settings(
        project=project, changed_by=member("otto", "model_owner"), auto_retrain_threshold=3
    )
    reader = member("reader", "annotator")
    submit_ground_truth(
        project=project, cases=cases, synthetic_dir=synthetic_dir, annotator=reader, count=2
    )
    assert cycles.maybe_trigger_automatic(project) is None
    submit_ground_truth(
        project=project, cases=cases, synthetic_dir=synthetic_dir, annotator=reader, count=1
    )
    cycle = cycles.maybe_trigger_automatic(project)
    assert cycle is not None and cycle.trigger == RetrainingCycle.Trigger.AUTOMATIC
    assert cycles.maybe_trigger_automatic(project) is None  # one is active
    RetrainingCycle.objects.filter(pk=cycle.pk).update(
        status="succeeded", finished_at=timezone.now()
    )
    assert cycles.labels_since_last_cycle(project) == 0
    assert cycles.maybe_trigger_automatic(project) is None


def test_before_any_model_the_queue_follows_image_diversity(project, cases, member):
    loop_settings.update_loop_settings(
        project=project, changed_by=member("otto", "model_owner"), acquisition_strategy="hybrid"
    )
    ranked = ranking.rerank_project(project)
    assert ranked == 12
    assert ImageFeatures.objects.filter(case__project=project).count() == 12
    priorities = list(Case.objects.filter(project=project).values_list("priority", flat=True))
    assert sorted(priorities) == [float(i) for i in range(1, 13)]
    vector = ImageFeatures.objects.first().vector
    assert len(vector) == 256


def test_project_settings_of_the_loop_are_checked(project, member, api_for):
    # The loop's settings are the model owner's (and admin's): a lead is refused.
    url = f"/api/projects/{project.pk}/loop-settings/"
    refused = api_for(member("boss", "lead")).patch(
        url, {"acquisition_strategy": "fifo"}, format="json"
    )
    assert refused.status_code == 403
    owner = api_for(member("otto", "model_owner"))
    bad = owner.patch(url, {"acquisition_strategy": "smartest"}, format="json")
    assert bad.status_code == 400
    assert "hybrid" in bad.json()["message"] and "smartest" in bad.json()["message"]
    bad = owner.patch(url, {"promotion_metric": "accuracy"}, format="json")
    assert bad.status_code == 400 and "boxes.map_50" in bad.json()["message"]
    bad = owner.patch(url, {"model_config": {"input_size": "big"}}, format="json")
    assert bad.status_code == 400 and "input_size" in bad.json()["message"]
    bad = owner.patch(url, {"model_config": {"layers_of_magic": 3}}, format="json")
    assert bad.status_code == 400 and "layers_of_magic" in bad.json()["message"]
    good = owner.patch(
        url,
        {"acquisition_strategy": "uncertainty-findings", "model_config": {"input_size": 128}},
        format="json",
    )
    assert good.status_code == 200, good.content
    assert good.json()["acquisition_strategy"] == "uncertainty-findings"
    listed = owner.get("/api/strategies/").json()
    assert {"random", "fifo", "uncertainty", "diversity", "hybrid"} <= {s["name"] for s in listed}


def test_every_promotion_metric_reads_its_value_including_dotted_names():
    metrics = {
        "boxes": {"map_50": 0.4, "map_50_95": -1.0},
        "findings": {"auroc_macro": 0.8},
        "reports": {"bleu_4": 0.2, "rouge_l_f_beta1.2": 0.35, "finding_f1_micro": 0.6},
    }
    values = {name: metric_value(metrics, name) for name in PROMOTION_METRICS}
    assert values["reports.rouge_l_f_beta1.2"] == 0.35
    assert values["boxes.map_50_95"] is None  # pycocotools' -1: no ground truth
    assert values["combined"] == pytest.approx((0.4 + 0.8 + 0.6) / 3)
    assert metric_value(metrics, "reports.missing") is None
    assert metric_value({"reports": 3}, "reports.bleu_4") is None
    assert metric_value({"reports": {"bleu_4": True}}, "reports.bleu_4") is None
