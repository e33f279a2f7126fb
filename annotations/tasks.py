"""Celery tasks of the annotations app: thin wrappers around services, ids in, idempotent."""

from __future__ import annotations

from celery import shared_task

from annotations.services import queue
from medloop.celery import app as _celery_app  # noqa: F401 (configures the app these tasks use)


@shared_task(name="annotations.release_expired_leases", acks_late=True, ignore_result=True)
def release_expired_leases() -> int:
    """Free leases whose time is up (run every minute by beat). Idempotent."""
    return queue.release_expired_leases()
