"""Model versions made the product's way: a retraining cycle triggered as a model owner does and
run stage by stage in this process, with the service functions the Celery worker runs
(tests/integration/test_cycle_worker.py runs them through a real worker)."""

from __future__ import annotations

from typing import Any

from active_learning.models import ModelVersion, RetrainingCycle
from active_learning.services import cycles, loop_settings

OWNER = "test-host:1:task-a"


def run_whole_cycle(cycle: RetrainingCycle, owner: str = OWNER) -> RetrainingCycle:
    """What the worker does: stage 1, every scoring chunk, then the ranking."""
    cycles.run_training(cycle.pk, owner=owner)
    cycle.refresh_from_db()
    for index in range(len(cycle.chunks)):
        cycles.run_scoring_chunk(cycle.pk, index)
    cycles.run_ranking(cycle.pk)
    cycle.refresh_from_db()
    return cycle


def train_version(project: Any, **settings: Any) -> ModelVersion:
    """The version a whole retraining cycle of ``project`` trains and registers; ``settings``
    (loop settings, e.g. ``model_config``, ``auto_promote=False``) are set first, through the
    loop settings service. Fails the test, with the cycle's error, when the cycle did not
    succeed."""
    if settings:
        loop_settings.update_loop_settings(project=project, **settings)
    cycle = run_whole_cycle(cycles.trigger_cycle(project=project))
    assert cycle.status == RetrainingCycle.Status.SUCCEEDED, cycle.error
    assert cycle.model_version is not None
    return cycle.model_version
