"""Messages from the annotator's world to the active-learning loop, sent by task name so that
annotating never imports the loop, and never fails because the broker is away: a label is
saved whether or not the loop hears of it (the next submission, or beat, tells it again)."""

from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def _send(task: str, project_id: int) -> None:
    from medloop.celery import app

    try:
        app.send_task(task, args=[project_id], retry=False)
    except Exception as exc:  # the broker is down: the label is saved all the same
        logger.warning("could not queue %s for project %s: %s", task, project_id, exc)


def labels_submitted(project_id: int, auto_retrain_threshold: int) -> None:
    """After commit: let the loop check whether the new labels reach the retrain threshold."""
    if auto_retrain_threshold > 0:
        transaction.on_commit(lambda: _send("active_learning.maybe_retrain", project_id))


def reorder_queue(project_id: int) -> None:
    """After commit: let the loop re-rank the queue (new cases, a new strategy)."""
    transaction.on_commit(lambda: _send("active_learning.rerank_project", project_id))
