"""The Celery app, configured from Django settings (CELERY_* names)."""

import logging
import os
from typing import Any

from celery import Celery

# `celery -A medloop worker` is a production entry point: it defaults to the production
# settings, like wsgi.py. manage.py (and so run_platform and its children) set the local ones
# before this module is imported, and every process run_platform starts names them explicitly.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medloop.settings.production")

app = Celery("medloop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


def send_after_commit(name: str, *args: Any) -> None:
    """Queue the task ``name`` once the current transaction commits, never when it rolls back.

    For web requests: a broker that is down is logged, not raised, so the request that changed
    the database still succeeds. What the task was to do is not lost: the rows say it (a queued
    cycle, labels since the last cycle), and beat's ``resume_stalled_cycles`` sends a queued
    cycle again; the next submission or re-rank asks again."""
    from django.db import transaction

    def send() -> None:
        try:
            app.send_task(name, args=list(args), retry=False)
        except Exception as exc:  # the broker is away (connection refused, timeout)
            logger.warning("could not queue %s%s: %s", name, tuple(args), exc)

    transaction.on_commit(send)
