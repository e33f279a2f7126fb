"""The life of a background job (:class:`~active_learning.models.BackgroundJob`: a validation
report, a version comparison) as its task writes it: running with a stage and percent, then
succeeded with its result or failed with the error. Each write is one UPDATE of the job's row,
so the page that polls it sees every step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils import timezone

from active_learning.models import BackgroundJob

Status = BackgroundJob.Status


def _update(job: BackgroundJob, **fields: Any) -> None:
    type(job)._default_manager.filter(pk=job.pk).update(**fields)


def progress_writer(job: BackgroundJob) -> Callable[[str, float], None]:
    """The callback a computation reports ``(stage, percent)`` through: the job runs."""

    def progress(stage: str, percent: float) -> None:
        _update(job, stage=stage, progress=round(percent, 1), status=Status.RUNNING)

    return progress


def fail(job: BackgroundJob, exc: BaseException) -> None:
    """The job failed; its error is the exception's message."""
    _update(job, status=Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now())


def succeed(job: BackgroundJob, result: dict[str, Any]) -> None:
    """The job is done with ``result``."""
    _update(
        job,
        status=Status.SUCCEEDED,
        stage="done",
        progress=100.0,
        result=result,
        finished_at=timezone.now(),
    )
