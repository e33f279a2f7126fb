"""Run one function in many threads at once, each with its own database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def run_concurrently(
    count: int, target: Callable[[int], None], *, timeout: float = 600
) -> list[BaseException]:
    """Start ``count`` threads that wait at a barrier, then call ``target(index)``; return the
    exceptions they raised. Each thread closes its database connection when done; a thread still
    running after ``timeout`` seconds fails the test."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=60)
            target(index)
        except BaseException as exc:  # collected and reported by the caller
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return errors
