"""Retraining cycles through a real Celery worker on Redis and PostgreSQL: the whole cycle
with its progress, the automatic trigger, concurrent triggers, a worker killed with SIGKILL in
the middle of training, and cancelling while it trains."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from active_learning.ml.checkpoints import read_manifest
from active_learning.models import ModelVersion, RetrainingCycle, Suggestion
from active_learning.services import loop_settings, versions
from annotations.models import Case
from medloop.celery import app
from tests.conftest import api_client_for
from tests.integration.conftest import wait_for
from tests.support.labels import TINY_MODEL, submit_ground_truth
from tests.support.training import train_version

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

QUEUES = "default,training,inference"


def _use_broker(url: str, options: dict) -> None:
    app.conf.broker_url = url
    app.conf.broker_transport_options = options
    app._after_fork()  # drop the cached connection and producer pools


@pytest.fixture
def on_redis(redis_url):
    """This process publishes to Redis (as the web server does in production)."""
    redis.Redis.from_url(redis_url).flushdb()
    old = (app.conf.broker_url, app.conf.broker_transport_options)
    _use_broker(redis_url, {"visibility_timeout": 3600})
    yield redis_url
    _use_broker(*old)


def wait_until_finished(cycle_id: int, timeout: float = 240) -> RetrainingCycle:
    wait_for(
        lambda: (
            RetrainingCycle.objects.get(pk=cycle_id).status
            not in (RetrainingCycle.Status.QUEUED, RetrainingCycle.Status.RUNNING)
        ),
        timeout=timeout,
        what=f"cycle {cycle_id} to finish",
    )
    return RetrainingCycle.objects.get(pk=cycle_id)


def wait_until_training(cycle_id: int) -> None:
    wait_for(
        lambda: RetrainingCycle.objects.filter(
            pk=cycle_id, stage="training", progress__gt=2.0
        ).exists(),
        timeout=120,
        what=f"cycle {cycle_id} to report training progress",
    )


def pool_children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def registered_versions_are_intact(project) -> None:
    """Every registered version's files match its checksum; no unregistered directory is left
    where a version lives."""
    registered = set()
    for version in ModelVersion.objects.filter(project=project):
        assert read_manifest(version.weights_path)["checksum"] == version.weights_sha256
        registered.add(Path(version.weights_path).name)
    folder = versions.version_directory(project, 1).parent
    on_disk = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
    assert on_disk == registered


def test_a_cycle_runs_through_the_worker(loop_project, member, on_redis, start_worker):
    start_worker(on_redis, queues=QUEUES, pool="prefork")
    owner = api_client_for(member("owner1", "model_owner"))
    started = owner.post(f"/api/projects/{loop_project.pk}/cycles/")
    assert started.status_code == 202, started.content
    url = f"/api/cycles/{started.json()['id']}/"
    seen = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        progress = owner.get(url).json()
        seen.append((progress["stage"], progress["progress"]))
        if progress["status"] not in ("queued", "running"):
            break
        time.sleep(0.2)
    assert progress["status"] == "succeeded", progress
    assert [p for _, p in seen] == sorted(p for _, p in seen)  # progress never goes back
    assert {"training", "scoring"} & {s for s, _ in seen}  # seen while it ran
    assert progress["model_version_number"] == 1 and progress["label_count"] == 6
    assert progress["chunks_done"] == progress["chunks_total"] >= 1
    version = ModelVersion.objects.get(project=loop_project, number=1)
    assert version.status == ModelVersion.Status.PROMOTED
    open_cases = Case.objects.filter(project=loop_project, state=Case.State.OPEN)
    assert Suggestion.objects.filter(model_version=version, case__in=open_cases).count() == 3
    top = open_cases.order_by("-priority").first()
    assert top.priority == 3.0
    reader = api_client_for(member("reader2", "annotator"))
    served = reader.post(f"/api/projects/{loop_project.pk}/next-case/")
    assert served.status_code == 200 and served.json()["id"] == top.pk
    registered_versions_are_intact(loop_project)


def test_labels_reaching_the_threshold_start_a_cycle(
    project, cases, member, synthetic_dir, on_redis, start_worker
):
    loop_settings.update_loop_settings(
        project=project,
        changed_by=member("boss", "model_owner"),
        model_config=TINY_MODEL,
        training_epochs=1,
        auto_retrain_threshold=3,
    )
    worker = start_worker(on_redis, queues=QUEUES, pool="prefork")
    reader = member("reader", "annotator")
    submit_ground_truth(
        project=project, cases=cases, synthetic_dir=synthetic_dir, annotator=reader, count=2
    )

    def checks_done() -> int:
        log = Path(worker.log_path).read_text()
        return sum(
            "Task active_learning.maybe_retrain[" in line and "succeeded" in line
            for line in log.splitlines()
        )

    # The worker has answered both submissions' messages, and started nothing below the threshold.
    wait_for(lambda: checks_done() >= 2, timeout=60, what="the worker to check both submissions")
    assert not RetrainingCycle.objects.filter(project=project).exists()
    submit_ground_truth(
        project=project, cases=cases, synthetic_dir=synthetic_dir, annotator=reader, count=1
    )
    wait_for(
        lambda: RetrainingCycle.objects.filter(project=project).exists(),
        timeout=60,
        what="the third label to start a cycle",
    )
    cycle = RetrainingCycle.objects.get(project=project)
    assert cycle.trigger == RetrainingCycle.Trigger.AUTOMATIC
    assert wait_until_finished(cycle.pk).status == RetrainingCycle.Status.SUCCEEDED
    # No validation labels: the promotion guard leaves the version for a model owner.
    version = ModelVersion.objects.get(project=project)
    assert version.label_count == 3 and version.status == ModelVersion.Status.CANDIDATE
    assert versions.promoted_version(project) is None


def test_concurrent_triggers_start_one_cycle(loop_project, member):
    owners = [api_client_for(member(f"owner{i}", "model_owner")) for i in range(8)]
    barrier = threading.Barrier(len(owners))
    codes: list[int] = []

    def trigger(client) -> None:
        try:
            barrier.wait()
            codes.append(client.post(f"/api/projects/{loop_project.pk}/cycles/").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=trigger, args=(c,)) for c in owners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [202] + [409] * 7
    assert RetrainingCycle.objects.filter(project=loop_project).count() == 1


def _serving_first_version(project) -> ModelVersion:
    version = train_version(project, auto_promote=False)
    return versions.promote(version)


def _train_long(project, member) -> None:
    """Training long enough to be killed, cancelled or redelivered while it runs (cycles count
    training in optimisation steps)."""
    loop_settings.update_loop_settings(
        project=project,
        changed_by=member("boss2", "model_owner"),
        model_config={**loop_settings.loop_settings(project).model_config, "train_steps": 400},
    )


def test_worker_killed_mid_training(loop_project, member, on_redis, start_worker):
    first = _serving_first_version(loop_project)
    _train_long(loop_project, member)
    worker = start_worker(on_redis, queues=QUEUES, pool="prefork")
    owner = api_client_for(member("owner1", "model_owner"))
    cycle_id = owner.post(f"/api/projects/{loop_project.pk}/cycles/").json()["id"]
    wait_until_training(cycle_id)
    (child,) = pool_children(worker.pid)
    os.kill(child, signal.SIGKILL)

    cycle = wait_until_finished(cycle_id, timeout=300)
    log = Path(worker.log_path).read_text()
    assert "SIGKILL" in log or "WorkerLostError" in log
    if cycle.status == RetrainingCycle.Status.SUCCEEDED:
        # Redelivered: the new delivery took the dead one's claim and trained once.
        assert cycle.outcome["taken_over_from"]
        assert ModelVersion.objects.filter(project=loop_project).count() == 2
    else:
        assert cycle.status == RetrainingCycle.Status.FAILED
        assert versions.promoted_version(loop_project) == first
    registered_versions_are_intact(loop_project)


def test_cancel_while_training(loop_project, member, on_redis, start_worker):
    first = _serving_first_version(loop_project)
    _train_long(loop_project, member)
    worker = start_worker(on_redis, queues=QUEUES, pool="prefork")
    owner = api_client_for(member("owner1", "model_owner"))
    cycle_id = owner.post(f"/api/projects/{loop_project.pk}/cycles/").json()["id"]
    wait_until_training(cycle_id)
    response = owner.post(f"/api/cycles/{cycle_id}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    wait_for(
        lambda: f"cycle {cycle_id} stopped" in Path(worker.log_path).read_text(),
        timeout=60,
        what="the worker to stop training",
    )
    assert RetrainingCycle.objects.get(pk=cycle_id).status == RetrainingCycle.Status.CANCELLED
    assert list(ModelVersion.objects.filter(project=loop_project)) == [first]
    assert versions.promoted_version(loop_project) == first
    assert settings.MODELS_DIR.is_dir()
    registered_versions_are_intact(loop_project)


def test_training_longer_than_the_visibility_timeout_runs_once(
    loop_project, member, redis_url, start_worker
):
    """Redis redelivers an unacknowledged task once its visibility timeout (here 4 s) passes,
    even while a worker still runs it. Two workers: the second receives the redelivered training
    task while the first trains, sees the first one's live claim in the database and stops; the
    cycle trains once and registers one version."""
    first = _serving_first_version(loop_project)
    _train_long(loop_project, member)
    redis.Redis.from_url(redis_url).flushdb()
    old = (app.conf.broker_url, app.conf.broker_transport_options)
    _use_broker(redis_url, {"visibility_timeout": 4})
    try:
        env = {
            "CELERY_VISIBILITY_TIMEOUT": "4",
            "CELERY_UNACKED_RESTORE_INTERVAL": "1",
            "CELERY_UNACKED_RESTORE_THROTTLE": "1",
        }
        workers = [start_worker(redis_url, env, queues=QUEUES, pool="prefork") for _ in range(2)]
        owner = api_client_for(member("owner1", "model_owner"))
        cycle_id = owner.post(f"/api/projects/{loop_project.pk}/cycles/").json()["id"]
        wait_until_training(cycle_id)

        def logs() -> str:
            return "".join(Path(w.log_path).read_text() for w in workers)

        wait_for(
            lambda: f"cycle {cycle_id} is held by" in logs(),
            timeout=120,
            what="a redelivered training task to find the live claim",
        )
        cycle = wait_until_finished(cycle_id, timeout=300)
    finally:
        _use_broker(*old)
    assert cycle.status == RetrainingCycle.Status.SUCCEEDED, cycle.log
    assert "taken_over_from" not in cycle.outcome
    assert not any("taking over" in line for line in cycle.log)
    assert sorted(
        ModelVersion.objects.filter(project=loop_project).values_list("number", flat=True)
    ) == [
        first.number,
        first.number + 1,
    ]
    registered_versions_are_intact(loop_project)


def test_worker_killed_mid_scoring(loop_project, member, on_redis, start_worker, tmp_path_factory):
    """SIGKILL of the pool process while it scores a chunk: the chunk is redelivered (late ack,
    reject on worker lost), every open case ends up scored by the serving version, the cycle
    finishes, and the promoted version and its files are untouched by the kill."""
    from active_learning.ml import synthetic
    from tests.conftest import ingest_synthetic

    more = tmp_path_factory.mktemp("synthetic-scoring")
    synthetic.generate_dataset(seed=21, count=30, out_dir=more, size=128)
    ingest_synthetic(loop_project, more)
    worker = start_worker(on_redis, {"MEDLOOP_SCORING_CHUNK": "2"}, queues=QUEUES, pool="prefork")
    owner = api_client_for(member("owner1", "model_owner"))
    cycle_id = owner.post(f"/api/projects/{loop_project.pk}/cycles/").json()["id"]
    wait_for(
        lambda: RetrainingCycle.objects.filter(pk=cycle_id, stage="scoring").exists(),
        timeout=240,
        what=f"cycle {cycle_id} to be scoring",
    )
    at_kill = RetrainingCycle.objects.get(pk=cycle_id)
    (child,) = pool_children(worker.pid)
    os.kill(child, signal.SIGKILL)
    assert at_kill.stage == "scoring" and len(at_kill.chunks_done) < len(at_kill.chunks)

    cycle = wait_until_finished(cycle_id, timeout=300)
    assert cycle.status == RetrainingCycle.Status.SUCCEEDED, cycle.log
    assert "SIGKILL" in Path(worker.log_path).read_text()
    assert sorted(cycle.chunks_done) == list(range(len(cycle.chunks)))
    serving = versions.promoted_version(loop_project)
    assert serving.number == cycle.outcome["scoring_version"]
    open_cases = Case.objects.filter(project=loop_project, state=Case.State.OPEN)
    scored = Suggestion.objects.filter(model_version=serving, case__in=open_cases)
    assert scored.values("case").distinct().count() == open_cases.count() > 20
    registered_versions_are_intact(loop_project)
