"""Progress of a retraining cycle as the Models page reads it: steps within training, cases
within scoring (not only chunks), the time left, and never "queued" next to a stage of work
(issue 18, item 6)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from active_learning.models import RetrainingCycle
from active_learning.services import cycles, suggestions, versions
from active_learning.services.cycle_claims import CycleStopped
from active_learning.services.loop_settings import loop_settings

pytestmark = pytest.mark.django_db

OWNER = "test-host:1:task-a"


@pytest.fixture(autouse=True)
def models_dir(tmp_path):
    # One chunk of all three open cases: progress within it can only come from cases.
    with override_settings(MODELS_DIR=tmp_path / "models", MEDLOOP_SCORING_CHUNK=10):
        versions.clear_cache()
        yield tmp_path / "models"
        versions.clear_cache()


def _owner_api(member, api_for):
    return api_for(member("owner1", "model_owner"))


def test_a_queued_cycle_that_reports_a_stage_of_work_reads_running(loop_project, member, api_for):
    cycle = cycles.trigger_cycle(project=loop_project)
    cycles.record_progress(cycle, stage="training", progress=2.0)
    body = _owner_api(member, api_for).get(f"/api/cycles/{cycle.pk}/").json()
    assert body["stage"] == "training"
    assert body["status"] == "running"
    assert body["started_at"] is not None
    assert body["stage_progress"]["stage"] == "training"


def test_training_reports_steps_done_of_the_total(loop_project, monkeypatch):
    seen: list[dict] = []
    real_report = cycles.record_progress

    def recording(cycle, **kwargs):
        real_report(cycle, **kwargs)
        if kwargs.get("within"):
            seen.append(RetrainingCycle.objects.get(pk=cycle.pk).stage_progress)

    monkeypatch.setattr(cycles, "record_progress", recording)
    cycle = cycles.trigger_cycle(project=loop_project)
    assert cycles.run_training(cycle.pk, owner=OWNER)
    steps = [s for s in seen if s.get("unit") == "steps"]
    assert steps, "training reported no steps"
    total = steps[0]["total"]
    assert total == loop_settings(loop_project).model_config.get("train_steps", total) and total > 0
    assert all(s["stage"] == "training" and s["started_at"] for s in steps)
    # Steps only grow, and the last one is always reported (the bar reaches the band's end).
    assert [s["done"] for s in steps] == sorted(s["done"] for s in steps)
    assert steps[-1]["done"] == total


def test_scoring_reports_cases_within_a_chunk(loop_project, member, api_for, monkeypatch):
    cycle = cycles.trigger_cycle(project=loop_project)
    assert cycles.run_training(cycle.pk, owner=OWNER)
    cycle.refresh_from_db()
    assert len(cycle.chunks) == 1 and len(cycle.chunks[0]) == 3
    api = _owner_api(member, api_for)
    before = api.get(f"/api/cycles/{cycle.pk}/").json()
    assert before["stage_progress"] | {"started_at": None} == {
        "stage": "scoring",
        "started_at": None,
        "unit": "cases",
        "done": 0,
        "total": 3,
        "chunks": {},
    }
    assert before["progress"] == 70.0

    seen = []
    real = suggestions.score_cases

    def one_case_per_batch(**kwargs):
        def progress(handled: int) -> None:
            kwargs["progress"](handled)
            body = api.get(f"/api/cycles/{cycle.pk}/").json()
            seen.append((body["stage_progress"]["done"], body["progress"], body["chunks_done"]))

        return real(**{**kwargs, "batch_size": 1, "progress": progress})

    monkeypatch.setattr(suggestions, "score_cases", one_case_per_batch)
    cycles.run_scoring_chunk(cycle.pk, 0)
    # Within the one chunk: 1, 2, 3 cases of 3, the bar moving through the scoring band
    # (70-97 %) before the chunk is done.
    assert seen == [(1, 79.0, 0), (2, 88.0, 0), (3, 97.0, 0)]
    after = api.get(f"/api/cycles/{cycle.pk}/").json()
    assert after["chunks_done"] == 1 and after["stage_progress"]["done"] == 3


def test_cancelling_stops_scoring_at_the_next_batch(loop_project, monkeypatch):
    cycle = cycles.trigger_cycle(project=loop_project)
    assert cycles.run_training(cycle.pk, owner=OWNER)
    real = suggestions.score_cases

    def cancel_after_first_case(**kwargs):
        def progress(handled: int) -> None:
            if handled == 1:
                cycles.cancel_cycle(cycle=cycle, cancelled_by=None)
            kwargs["progress"](handled)

        return real(**{**kwargs, "batch_size": 1, "progress": progress})

    monkeypatch.setattr(suggestions, "score_cases", cancel_after_first_case)
    with pytest.raises(CycleStopped):
        cycles.run_scoring_chunk(cycle.pk, 0)
    cycle.refresh_from_db()
    assert cycle.status == "cancelled" and cycle.chunks_done == []


def _running(project, **fields) -> RetrainingCycle:
    return RetrainingCycle.objects.create(project=project, status="running", **fields)


def test_time_left_from_the_stage_pace_and_the_last_cycle(project, member, api_for):
    now = timezone.now()
    RetrainingCycle.objects.filter(pk=_running(project).pk).update(
        status="succeeded",
        created_at=now - timedelta(hours=1),
        stage_seconds={
            "training": 100.0,
            "evaluating": 8.0,
            "registering": 2.0,
            "scoring": 30.0,
            "ranking": 1.0,
        },
    )
    cycle = _running(
        project,
        stage="training",
        stage_progress={
            "stage": "training",
            "started_at": (now - timedelta(seconds=20)).isoformat(),
            "unit": "steps",
            "done": 50,
            "total": 200,
        },
    )
    body = _owner_api(member, api_for).get(f"/api/cycles/{cycle.pk}/").json()
    estimate = body["estimate"]
    # 150 steps left at 2.5 steps/s = 60 s, then 8 + 2 + 30 + 1 s as the last cycle took them.
    assert estimate["seconds"] == pytest.approx(101.0, abs=1.5)
    assert estimate["complete"] is True
    assert "50/200 steps" in estimate["basis"] and "last cycle" in estimate["basis"]


def test_time_left_without_an_earlier_cycle_says_what_it_leaves_out(project, member, api_for):
    now = timezone.now()
    cycle = _running(
        project,
        stage="scoring",
        stage_progress={
            "stage": "scoring",
            "started_at": (now - timedelta(seconds=10)).isoformat(),
            "unit": "cases",
            "done": 10,
            "total": 40,
            "chunks": {"0": 10},
        },
    )
    api = _owner_api(member, api_for)
    estimate = api.get(f"/api/cycles/{cycle.pk}/").json()["estimate"]
    assert estimate["seconds"] == pytest.approx(30.0, abs=1.0)
    assert estimate["complete"] is False and "ranking" in estimate["basis"]

    RetrainingCycle.objects.filter(pk=cycle.pk).update(status="failed")
    queued = RetrainingCycle.objects.create(project=project, status="queued", stage="queued")
    estimate = api.get(f"/api/cycles/{queued.pk}/").json()["estimate"]
    assert estimate == {"seconds": None, "basis": "waiting for a worker", "complete": False}


def test_a_redelivered_chunk_never_sets_the_count_back(project):
    cycle = _running(project, stage="scoring", chunks=[[1, 2, 3, 4], [5, 6]])
    cycles._scoring_progress(cycle.pk, 0)(3)
    cycles._scoring_progress(cycle.pk, 1)(1)
    # The worker scoring chunk 0 died; the redelivery counts from its first batch again.
    cycles._scoring_progress(cycle.pk, 0)(1)
    cycle.refresh_from_db()
    assert cycle.stage_progress["chunks"] == {"0": 3, "1": 1}
    assert cycle.stage_progress["done"] == 4 and cycle.stage_progress["total"] == 6
    assert cycle.progress == 88.0  # 70 + 27 * 4/6
