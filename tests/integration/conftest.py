"""Helpers to run MedLoop's own processes (Celery worker, the run command) in tests."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parents[2]


def current_database_url() -> str:
    """A URL for the database the test is using right now (pytest-django's test database)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    user = db.get("USER") or "postgres"
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start a real Celery worker process against the test database and a given broker."""
    started: list[subprocess.Popen[bytes]] = []

    def start(
        broker_url: str,
        extra_env: dict[str, str] | None = None,
        *,
        queues: str = "default",
        pool: str = "solo",
    ) -> subprocess.Popen[bytes]:
        log = tmp_path / f"worker-{len(started)}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "medloop.settings.local",
            "DJANGO_DEBUG": "false",
            "DATABASE_URL": current_database_url(),
            "CELERY_BROKER_URL": broker_url,
            "MEDLOOP_VAR_DIR": str(tmp_path / "var"),
            "MEDLOOP_STORAGE_DIR": str(settings.STORAGE_DIR),
            "MEDLOOP_MODELS_DIR": str(settings.MODELS_DIR),
            **(extra_env or {}),
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "medloop",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "1",
                "--pool",
                pool,
                "--without-mingle",
                "--without-gossip",
                "--queues",
                queues,
            ],
            cwd=REPO,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        process.log_path = log  # type: ignore[attr-defined]
        started.append(process)
        wait_for(
            lambda: b"ready." in log.read_bytes() or process.poll() is not None,
            timeout=60,
            what="the Celery worker to be ready",
        )
        assert process.poll() is None, log.read_text()
        return process

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log record of every logger, at DEBUG, as text."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)
