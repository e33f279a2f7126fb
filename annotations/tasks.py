"""Celery tasks of the annotations app: thin wrappers around services, ids in, idempotent."""

from __future__ import annotations

from celery import shared_task

from annotations.services import consent, queue
from medloop.celery import app as _celery_app  # noqa: F401 (configures the app these tasks use)


@shared_task(name="annotations.release_expired_leases", acks_late=True, ignore_result=True)
def release_expired_leases() -> int:
    """Free leases whose time is up (run every minute by beat). Idempotent."""
    return queue.release_expired_leases()


@shared_task(name="annotations.purge_withdrawn_patients", acks_late=True, ignore_result=True)
def purge_withdrawn_patients() -> list[int]:
    """Delete the files and clinical text of patients withdrawn at least
    MEDLOOP_WITHDRAWAL_RETENTION_DAYS ago (run hourly by beat, and at once after a withdrawal
    when the retention is 0). Idempotent."""
    return consent.purge_due()
