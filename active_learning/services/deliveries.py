"""Which delivery of a Celery task holds a piece of long work (a cycle's stage, a backbone's
pretraining), and whether it is still alive: one home for the claim check that
:mod:`~active_learning.services.cycle_claims` and :mod:`~active_learning.services.pretraining`
share.

A delivery is named ``host:pid:task id``. A claim is alive while its last sign of life (a
heartbeat, or the claim's start) is younger than the stale limit and, on this host, its
process still exists: a worker killed with SIGKILL is known dead at once on its own host, and
after the stale limit anywhere."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from django.utils import timezone


def delivery_owner(task_id: str) -> str:
    """Who works on a piece of work: this host, this process and the task's delivery."""
    return f"{socket.gethostname()}:{os.getpid()}:{task_id}"


def claim_alive(owner: str, last_sign: datetime | None, *, stale_seconds: float) -> bool:
    """Whether the delivery ``owner`` (``host:pid:task id``), last seen at ``last_sign`` (None:
    never), may still be working: seen within ``stale_seconds`` and, when it ran on this
    host, its process exists (one we may not signal exists)."""
    if last_sign is None or last_sign < timezone.now() - timedelta(seconds=stale_seconds):
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host == socket.gethostname() and pid_text.isdigit():
        try:
            os.kill(int(pid_text), 0)  # signal 0: does the process exist?
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True
