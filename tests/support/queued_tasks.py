"""The tasks a test queued on the test settings' broker (kombu's in-memory transport: one per
process, its queues shared by every connection): taken off their queue as a worker takes them,
and run by the task registered under their name, as the worker runs them."""

from __future__ import annotations

from typing import Any

import active_learning.tasks  # noqa: F401 (registers the loop's tasks)
from medloop.celery import app


def take(queue: str) -> list[tuple[str, list[Any]]]:
    """Every message waiting on ``queue``, taken off it: ``(task name, args)`` in queue order."""
    taken = []
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            args, _kwargs, _embed = message.decode()
            taken.append((message.headers["task"], list(args)))
    return taken


def run(taken: list[tuple[str, list[Any]]]) -> list[Any]:
    """Run each taken task in this process, as a worker would; returns what each returned."""
    return [app.tasks[name](*args) for name, args in taken]
