"""Claims, heartbeats and progress of a retraining cycle: which delivery of a task works on a
cycle now, and what it tells the page while it works.

A stage is *claimed* by one delivery (host, pid, task id, heartbeat): a second delivery of the
same message (the Redis broker redelivers a task that outlives its visibility timeout) sees a
live claim and stops; a delivery whose claimant died (SIGKILL) takes over. Every progress
report refreshes the heartbeat and raises :class:`CycleStopped` when the cycle was cancelled or
taken over, so work stops at the next report. The orchestration is in
:mod:`active_learning.services.cycles`."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from active_learning.models import RetrainingCycle
from active_learning.services.deliveries import claim_alive

logger = logging.getLogger(__name__)

Status = RetrainingCycle.Status
ACTIVE = [Status.QUEUED, Status.RUNNING]
LOG_LINES = 50
# Progress bands of the stages (percent of the whole cycle at each stage's start and end).
BANDS = {
    "training": (2.0, 60.0),
    "evaluating": (60.0, 68.0),
    "registering": (68.0, 70.0),
    "scoring": (70.0, 97.0),
    "ranking": (97.0, 100.0),
}


class CycleStopped(Exception):
    """The cycle was cancelled (or taken over) while this task worked on it."""


def claim(cycle_id: int, owner: str) -> RetrainingCycle | None:
    """Make ``owner`` the one delivery working on the cycle; None when the cycle is not active
    or another live delivery holds it."""
    with transaction.atomic():
        cycle = RetrainingCycle.objects.select_for_update().filter(pk=cycle_id).first()
        if cycle is None or cycle.status not in ACTIVE:
            return None
        if cycle.claimed_by and cycle.claimed_by != owner:
            alive = claim_alive(
                cycle.claimed_by,
                cycle.heartbeat_at,
                stale_seconds=settings.MEDLOOP_CYCLE_STALE_SECONDS,
            )
            if alive:
                logger.warning(
                    "cycle %s is held by %s; %s stops", cycle_id, cycle.claimed_by, owner
                )
                return None
            cycle.log = [*cycle.log, log_line(f"taking over from {cycle.claimed_by}")][-LOG_LINES:]
            taken = [*cycle.outcome.get("taken_over_from", []), cycle.claimed_by]
            cycle.outcome = {**cycle.outcome, "taken_over_from": taken}
        cycle.claimed_by = owner
        cycle.heartbeat_at = timezone.now()
        if cycle.status == Status.QUEUED:
            cycle.status = Status.RUNNING
            cycle.started_at = timezone.now()
        cycle.save(
            update_fields=["claimed_by", "heartbeat_at", "status", "started_at", "log", "outcome"]
        )
        return cycle


def log_line(text: str) -> str:
    """``text`` as a line of a cycle's log, with the time."""
    return f"{timezone.now():%Y-%m-%d %H:%M:%S} {text}"


def record_progress(
    cycle: RetrainingCycle,
    *,
    stage: str | None = None,
    progress: float | None = None,
    log: str | None = None,
    owner: str | None = None,
    within: dict[str, Any] | None = None,
) -> None:
    """Write stage, percent and a log line, refresh the heartbeat, and raise
    :class:`CycleStopped` when the cycle was cancelled or claimed by another delivery.

    A new ``stage`` starts a new ``stage_progress`` (its name and start time); ``within`` is
    merged into it (``unit``, ``done``, ``total``: progress inside the stage). A cycle still
    ``queued`` that reports a stage of work is running: its status says so, never "queued"
    next to "training"."""
    with transaction.atomic():
        current = (
            RetrainingCycle.objects.select_for_update()
            .filter(pk=cycle.pk)
            .values("status", "claimed_by", "log", "stage_progress", "started_at")
            .first()
        )
        if current is None or current["status"] not in ACTIVE:
            raise CycleStopped(f"cycle {cycle.pk} is {current and current['status']}")
        if owner is not None and current["claimed_by"] != owner:
            raise CycleStopped(f"cycle {cycle.pk} was taken over by {current['claimed_by']}")
        now = timezone.now()
        changes: dict[str, Any] = {"heartbeat_at": now}
        if stage is not None:
            changes["stage"] = cycle.stage = stage
            if stage != "queued" and current["status"] == Status.QUEUED:
                changes["status"] = cycle.status = Status.RUNNING
                if current["started_at"] is None:
                    changes["started_at"] = cycle.started_at = now
        if stage is not None or within is not None:
            base = (
                {"stage": stage, "started_at": now.isoformat()}
                if stage is not None
                else current["stage_progress"]
            )
            changes["stage_progress"] = cycle.stage_progress = {**base, **(within or {})}
        if progress is not None:
            changes["progress"] = cycle.progress = round(min(max(progress, 0.0), 100.0), 1)
        if log is not None:
            cycle.log = [*current["log"], log_line(log)][-LOG_LINES:]
            changes["log"] = cycle.log
        RetrainingCycle.objects.filter(pk=cycle.pk).update(**changes)
    if log:
        logger.info("cycle %s: %s", cycle.pk, log)


@contextmanager
def stage(cycle: RetrainingCycle, name: str, owner: str | None = None) -> Iterator[None]:
    """Run one stage: announce it, time it (``stage_seconds``)."""
    record_progress(cycle, stage=name, progress=BANDS[name][0], log=f"{name}...", owner=owner)
    started = time.perf_counter()
    yield
    seconds = round(time.perf_counter() - started, 2)
    cycle.stage_seconds = {**cycle.stage_seconds, name: seconds}
    RetrainingCycle.objects.filter(pk=cycle.pk).update(stage_seconds=cycle.stage_seconds)


def fail(cycle_id: int, error: str) -> None:
    """Mark the cycle failed; the promoted version is left as it is."""
    with transaction.atomic():
        cycle = RetrainingCycle.objects.select_for_update().filter(pk=cycle_id).first()
        if cycle is None or cycle.status not in ACTIVE:
            return
        cycle.status = Status.FAILED
        cycle.error = error[:4000]
        cycle.finished_at = timezone.now()
        cycle.log = [*cycle.log, log_line(f"failed: {error[:300]}")][-LOG_LINES:]
        cycle.save(update_fields=["status", "error", "finished_at", "log"])
    logger.error("cycle %s failed: %s", cycle_id, error)
