"""Supervision of run_platform's child processes: a child that exits is started again with
backoff and the restart is logged, instead of the whole platform stopping.

A child that keeps failing soon after each start (a port taken, a broken configuration) is not
retried for ever: after ``max_quick_failures`` such exits in a row the supervisor gives up and
says which child it was. This module imports no Django (tests drive it with plain processes)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

logger = logging.getLogger("medloop.supervisor")


@dataclass
class ChildSpec:
    """One supervised process: its name in the log, its command line and its environment.

    ``ready`` (optional) is called after each start and may block until the child serves
    (e.g. the broker answering PING); a False answer counts as a failed start. ``stop_last``
    children are stopped after all the others."""

    name: str
    command: Sequence[str]
    env: dict[str, str] | None = None
    cwd: str | None = None
    ready: Callable[[], bool] | None = None
    stop_last: bool = False


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    restarts: int = 0
    quick_failures: int = 0
    exit_codes: list[int] = field(default_factory=list)


class GaveUp(RuntimeError):
    """A child failed ``max_quick_failures`` times in a row soon after starting."""


class Supervisor:
    """Start children in order, restart the ones that exit, stop them all in reverse order.

    Backoff: the first restart waits ``backoff_initial`` seconds; each further exit within
    ``stable_after`` seconds of its start doubles the wait, up to ``backoff_max``; a child
    that ran longer than ``stable_after`` starts again from ``backoff_initial``."""

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        stable_after: float = 60.0,
        max_quick_failures: int = 8,
        stop_timeout: float = 15.0,
        log: logging.Logger = logger,
    ) -> None:
        self._children = [_Child(spec) for spec in specs]
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        self.max_quick_failures = max_quick_failures
        self.stop_timeout = stop_timeout
        self.log = log

    # --- what tests and run_platform read -----------------------------------------------------
    def pid(self, name: str) -> int | None:
        """The process id of the running child ``name`` (None while it is down)."""
        child = self._child(name)
        if child.process is None or child.process.poll() is not None:
            return None
        return child.process.pid

    def restarts(self) -> dict[str, int]:
        """How many times each child has been started again."""
        return {child.spec.name: child.restarts for child in self._children}

    def exit_codes(self) -> dict[str, list[int]]:
        """The exit codes of each child's unexpected exits, oldest first."""
        return {child.spec.name: list(child.exit_codes) for child in self._children}

    # --- lifecycle ------------------------------------------------------------------------------
    def add(self, *specs: ChildSpec) -> None:
        """Supervise more children (started by the next ``start_all``)."""
        self._children.extend(_Child(spec) for spec in specs)

    def start_all(self) -> None:
        """Start, in order, every child not started yet (the broker before its users)."""
        for child in self._children:
            if child.process is None:
                self._start(child)

    def poll(self, now: float | None = None) -> None:
        """Notice exits and start due restarts. Raises GaveUp for a child in a crash loop."""
        now = time.monotonic() if now is None else now
        for child in self._children:
            if child.process is not None and child.restart_at is None:
                code = child.process.poll()
                if code is None:
                    continue
                self._schedule_restart(child, code, now)
            if child.restart_at is not None and now >= child.restart_at:
                child.restart_at = None
                child.restarts += 1
                self.log.warning("restarting %s (restart %d)", child.spec.name, child.restarts)
                self._start(child)

    def run(self, should_stop: Callable[[], bool], interval: float = 0.3) -> None:
        """Poll until ``should_stop()`` is true (Ctrl-C) or a child is given up on."""
        while not should_stop():
            self.poll()
            time.sleep(interval)

    def stop_all(self) -> None:
        """SIGTERM every child's process group and wait; SIGKILL what outlives
        ``stop_timeout``. Children marked ``stop_last`` (the broker) stop after the others, which
        may still acknowledge tasks while they stop."""
        for last in (False, True):
            stage = [
                c
                for c in reversed(self._children)
                if c.spec.stop_last is last and c.process is not None and c.process.poll() is None
            ]
            for child in stage:
                assert child.process is not None
                _signal_group(child.process, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout
            for child in stage:
                assert child.process is not None
                try:
                    child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.log.warning("%s did not stop in time; killing it", child.spec.name)
                    _signal_group(child.process, signal.SIGKILL)
                    child.process.wait()

    # --- internals ------------------------------------------------------------------------------
    def _child(self, name: str) -> _Child:
        for child in self._children:
            if child.spec.name == name:
                return child
        raise KeyError(name)

    def _start(self, child: _Child) -> None:
        child.process = subprocess.Popen(
            list(child.spec.command),
            env=child.spec.env,
            cwd=child.spec.cwd,
            # Its own process group: Ctrl-C reaches only run_platform, which stops the children
            # in order, and a child's own children (gunicorn's and Celery's workers) go with it.
            start_new_session=True,
        )
        child.started_at = time.monotonic()
        self.log.info("started %s (pid %d)", child.spec.name, child.process.pid)
        if child.spec.ready is not None and not child.spec.ready():
            self.log.warning("%s did not become ready", child.spec.name)
            _signal_group(child.process, signal.SIGKILL)
            child.process.wait()

    def _schedule_restart(self, child: _Child, code: int, now: float) -> None:
        child.exit_codes.append(code)
        assert child.process is not None
        # What the dead process left behind in its group (Celery's pool processes, gunicorn's
        # workers holding the port) goes too, so the restart starts clean.
        _signal_group(child.process, signal.SIGKILL)
        ran_for = now - child.started_at
        if ran_for < self.stable_after:
            child.quick_failures += 1
        else:
            child.quick_failures = 1
        if child.quick_failures >= self.max_quick_failures:
            raise GaveUp(
                f"{child.spec.name} exited {child.quick_failures} times in a row within "
                f"{self.stable_after:.0f} s of starting (last exit code {code}); giving up"
            )
        delay = min(self.backoff_max, self.backoff_initial * 2 ** (child.quick_failures - 1))
        child.restart_at = now + delay
        self.log.error(
            "%s exited unexpectedly (%s) after %.1f s; restarting in %.1f s",
            child.spec.name,
            _describe_exit(code),
            ran_for,
            delay,
        )


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
