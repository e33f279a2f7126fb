"""Celery tasks of the loop: thin, ids in, idempotent, acknowledged late (a worker that dies
mid-task has its message redelivered). The work and the order of stages live in
:mod:`active_learning.services.cycles`; routing to the ``training`` and ``inference`` queues is
in ``CELERY_TASK_ROUTES``."""

from __future__ import annotations

import logging
import traceback

from celery import shared_task
from django.db import OperationalError

from active_learning.services import cycle_claims, cycles, deliveries, explanation_jobs
from annotations.models import Project
from medloop.celery import app as _celery_app  # noqa: F401 (configures the app these tasks use)

logger = logging.getLogger(__name__)

# Errors worth another try (the database restarting, a lost connection); anything else fails
# the cycle with its message.
TRANSIENT = (OperationalError,)


def _fail_unless_transient(cycle_id: int, exc: BaseException) -> None:
    if isinstance(exc, cycle_claims.CycleStopped):
        logger.info("cycle %s stopped: %s", cycle_id, exc)
        return
    if isinstance(exc, TRANSIENT):
        raise exc
    cycle_claims.fail(cycle_id, f"{type(exc).__name__}: {exc}")
    logger.error("cycle %s:\n%s", cycle_id, traceback.format_exc())


@shared_task(
    bind=True,
    name="active_learning.train_cycle",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    max_retries=3,
    ignore_result=True,
)
def train_cycle(self, cycle_id: int) -> None:
    """Snapshot, train, evaluate, register and promote; then queue the scoring chunks."""
    try:
        cycles.run_training(cycle_id, owner=deliveries.delivery_owner(self.request.id or "local"))
    except Exception as exc:
        _fail_unless_transient(cycle_id, exc)


@shared_task(
    name="active_learning.score_chunk",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    max_retries=3,
    ignore_result=True,
)
def score_chunk(cycle_id: int, index: int) -> None:
    """Store the serving version's suggestions for chunk ``index`` (at most
    ``MEDLOOP_SCORING_CHUNK`` cases); the last chunk queues the ranking."""
    try:
        cycles.run_scoring_chunk(cycle_id, index)
    except Exception as exc:
        _fail_unless_transient(cycle_id, exc)


@shared_task(
    name="active_learning.rank_cycle",
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    max_retries=3,
    ignore_result=True,
)
def rank_cycle(cycle_id: int) -> None:
    """Re-rank the queue with the project's strategy; the cycle succeeds."""
    try:
        cycles.run_ranking(cycle_id)
    except Exception as exc:
        _fail_unless_transient(cycle_id, exc)


@shared_task(
    name="active_learning.explain_case",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    max_retries=3,
    ignore_result=True,
)
def explain_case(version_id: int, case_id: int, finding: str) -> bool:
    """Compute the Grad-CAM overlays of ``finding`` for the case's volume by the version
    (a model that reads volumes; queued by the explanation request or by scoring). Idempotent:
    overlays already there are kept. A failure is kept for the request to answer with."""
    try:
        return explanation_jobs.render_volume_explanation(
            version_id=version_id, case_id=case_id, finding=finding
        )
    except TRANSIENT:
        raise
    except Exception as exc:
        message = explanation_jobs.record_failure(
            version_id=version_id, case_id=case_id, finding=finding, exc=exc
        )
        logger.error("explanation of case %s (%s): %s", case_id, finding, message, exc_info=True)
        return False


@shared_task(name="active_learning.maybe_retrain", acks_late=True, ignore_result=True)
def maybe_retrain(project_id: int) -> int | None:
    """Start a cycle if the project's new labels reached its threshold (queued on submit)."""
    project = Project.objects.filter(pk=project_id).first()
    cycle = cycles.maybe_trigger_automatic(project) if project else None
    return cycle.pk if cycle else None


@shared_task(name="active_learning.rerank_project", acks_late=True, ignore_result=True)
def rerank_project(project_id: int) -> int:
    """Re-rank a project's queue now (strategy changed, new cases ingested); draw new cases for
    the locked test set; queue a backbone pretraining if the grown pool makes one due."""
    from active_learning.services import test_sets
    from active_learning.services.pretraining import maybe_queue_pretraining
    from active_learning.services.ranking import rerank_project as rerank

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return 0
    # New cases are drawn for the locked test set before anything learns from them.
    test_sets.draw(project)
    # New cases may have brought the pool to the pretraining threshold (or doubled it).
    maybe_queue_pretraining(project)
    return rerank(project)


@shared_task(name="active_learning.refresh_serving", acks_late=True, ignore_result=True)
def refresh_serving(project_id: int) -> int:
    """Score what the newly serving version has not scored, then re-rank (after a promotion
    or a rollback by a model owner)."""
    project = Project.objects.filter(pk=project_id).first()
    return cycles.refresh_serving(project) if project else 0


@shared_task(name="active_learning.resume_stalled_cycles", acks_late=True, ignore_result=True)
def resume_stalled_cycles() -> list[int]:
    """Re-queue cycles whose worker stopped sending heartbeats (run by beat)."""
    return cycles.resume_stalled()


@shared_task(
    bind=True,
    name="active_learning.pretrain_backbone",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    max_retries=3,
    ignore_result=True,
)
def pretrain_backbone(self, project_id: int) -> int | None:
    """Pretrain the project's image backbone on its unlabelled images when due (training
    queue); idempotent: the same images, or a pool that has not grown enough, do nothing.
    Returns the new backbone's number."""
    from active_learning.services import pretraining

    row = pretraining.run_pretraining(
        project_id, owner=deliveries.delivery_owner(self.request.id or "local")
    )
    return row.number if row else None


@shared_task(name="active_learning.schedule_pretraining", acks_late=True, ignore_result=True)
def schedule_pretraining() -> list[int]:
    """Queue a pretraining for every project whose pool reached the threshold or grew enough
    (run by beat; cheap when nothing is due). Returns the projects queued."""
    from active_learning.services import pretraining

    return [p.pk for p in Project.objects.all() if pretraining.maybe_queue_pretraining(p)]


@shared_task(name="active_learning.validation_report", acks_late=True, ignore_result=True)
def validation_report(report_id: int) -> None:
    """Compute a queued validation report (progress on its row); a finished one is skipped."""
    from active_learning.services import validation_reports

    validation_reports.run_report(report_id)


@shared_task(name="active_learning.version_comparison", acks_late=True, ignore_result=True)
def version_comparison(comparison_id: int) -> None:
    """Compute a queued comparison of two versions (progress on its row); a finished one is
    skipped."""
    from active_learning.services import comparisons

    comparisons.run_comparison(comparison_id)
