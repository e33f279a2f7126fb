"""run_platform's supervisor (medloop/supervisor.py) with real child processes: a child that
exits is started again with backoff and logged, a crash loop is given up on, stopping ends
every child (and what the child started) with the broker last."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from medloop.supervisor import ChildSpec, GaveUp, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def _poll_until(supervisor: Supervisor, predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        supervisor.poll()
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split(")")[-1].split()[0] != "Z"


def test_killed_worker_is_restarted_and_logged_while_the_others_keep_running(caplog):
    supervisor = Supervisor(
        [ChildSpec("worker", SLEEPER), ChildSpec("web", SLEEPER)], backoff_initial=0.1
    )
    caplog.set_level(logging.INFO, logger="medloop.supervisor")
    supervisor.start_all()
    try:
        worker, web = supervisor.pid("worker"), supervisor.pid("web")
        assert worker and web
        os.kill(worker, signal.SIGKILL)
        _poll_until(supervisor, lambda: supervisor.pid("worker") not in (None, worker))
        assert supervisor.pid("web") == web
        assert supervisor.restarts() == {"worker": 1, "web": 0}
        assert supervisor.exit_codes()["worker"] == [-signal.SIGKILL]
        messages = caplog.text
        assert "worker exited unexpectedly (killed by SIGKILL)" in messages
        assert "restarting worker (restart 1)" in messages
    finally:
        supervisor.stop_all()


def test_backoff_doubles_for_quick_failures_and_gives_up_on_a_crash_loop():
    failing = ChildSpec("listener", [sys.executable, "-c", "raise SystemExit(3)"])
    supervisor = Supervisor(
        [failing], backoff_initial=0.05, backoff_max=0.2, stable_after=30, max_quick_failures=4
    )
    supervisor.start_all()
    started = time.monotonic()
    with pytest.raises(GaveUp, match=r"listener exited 4 times in a row .*exit code 3"):
        _poll_until(supervisor, lambda: False, timeout=20)
    # Three waits before giving up: 0.05 + 0.1 + 0.2 s at least.
    assert time.monotonic() - started >= 0.35
    assert supervisor.restarts() == {"listener": 3}
    assert supervisor.exit_codes()["listener"] == [3, 3, 3, 3]
    supervisor.stop_all()


def test_a_child_that_ran_long_enough_restarts_after_the_initial_backoff():
    supervisor = Supervisor(
        [ChildSpec("beat", [sys.executable, "-c", "import time; time.sleep(0.3)"])],
        backoff_initial=0.05,
        stable_after=0.2,
        max_quick_failures=2,
    )
    supervisor.start_all()
    try:
        # Each run outlives stable_after, so the count of quick failures never reaches 2.
        _poll_until(supervisor, lambda: supervisor.restarts()["beat"] >= 3, timeout=20)
    finally:
        supervisor.stop_all()


def test_stop_all_ends_children_and_their_own_children_broker_last(tmp_path: Path):
    order = tmp_path / "order"
    # The "web" child starts a grandchild (like gunicorn's workers) and records its pid.
    grandchild_pid = tmp_path / "grandchild"
    web = ChildSpec(
        "web",
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time, pathlib;"
            f"p = subprocess.Popen({SLEEPER!r});"
            f"pathlib.Path({str(grandchild_pid)!r}).write_text(str(p.pid));"
            "time.sleep(120)",
        ],
    )

    def recorder(name: str) -> list[str]:
        # Appends its name to the order file when SIGTERM arrives, then exits.
        return [
            sys.executable,
            "-c",
            "import signal, sys, time\n"
            "def bye(*_):\n"
            f"    open({str(order)!r}, 'a').write({name!r} + '\\n'); sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, bye)\n"
            "time.sleep(120)\n",
        ]

    supervisor = Supervisor(
        [
            ChildSpec("broker", recorder("broker"), stop_last=True),
            ChildSpec("worker", recorder("worker")),
            web,
        ],
        stop_timeout=10,
    )
    supervisor.start_all()
    deadline = time.monotonic() + 20
    while not grandchild_pid.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the recorders install their handlers
    grandchild = int(grandchild_pid.read_text())
    assert _alive(grandchild)
    supervisor.stop_all()
    assert order.read_text().split() == ["worker", "broker"]
    assert all(supervisor.pid(name) is None for name in ("broker", "worker", "web"))
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)
