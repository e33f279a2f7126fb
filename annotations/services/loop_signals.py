"""Messages from the annotator's world to the active-learning loop, sent by task name so that
annotating never imports the loop, and never fails because the broker is away: a label is
saved whether or not the loop hears of it (the next submission, or beat, tells it again)."""

from __future__ import annotations

from medloop.celery import send_after_commit


def labels_submitted(project_id: int) -> None:
    """After commit: let the loop check whether the new labels reach its retrain threshold
    (the threshold, 0 for never, is the loop's own setting)."""
    send_after_commit("active_learning.maybe_retrain", project_id)


def reorder_queue(project_id: int) -> None:
    """After commit: let the loop re-rank the queue (new cases, a new strategy)."""
    send_after_commit("active_learning.rerank_project", project_id)
