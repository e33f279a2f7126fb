"""The README's first command: `make run` runs manage.py run_platform, which migrates an
embedded SQLite database, seeds the demo, starts web and worker, and stops on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import REPO, wait_for
from tests.support.tools import dcmtk

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_run_platform_serves_demo_users_and_stops_everything_on_ctrl_c(tmp_path: Path):
    port, dicom_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="medloop.settings.local",
        MEDLOOP_VAR_DIR=str(tmp_path),
        PYTHONUNBUFFERED="1",
    )
    log = tmp_path / "run.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "run_platform",
            "--port",
            str(port),
            "--demo-cases",
            "4",
            "--dicom-port",
            str(dicom_port),
        ],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: b"Press Ctrl-C" in log.read_bytes() or process.poll() is not None,
            timeout=120,
            what="run_platform to start",
        )
        output = log.read_text()
        assert process.poll() is None, output
        passwords = dict(re.findall(r"user (\w+)\s+password (\S+)", output))
        assert set(passwords) >= {"annotator", "lead", "modelowner"}
        wait_for(lambda: b"ready." in log.read_bytes(), timeout=60, what="the Celery worker")
        session = requests.Session()
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _ok(f"{base}/login/"), timeout=60, what="the web server")
        session.get(f"{base}/login/")
        token = session.post(
            f"{base}/api/auth/token/",
            data={"username": "annotator", "password": passwords["annotator"]},
        ).json()["token"]
        headers = {"Authorization": f"Token {token}"}
        project = requests.get(f"{base}/api/projects/", headers=headers, timeout=30).json()[0]
        case = requests.post(
            f"{base}/api/projects/{project['id']}/next-case/", headers=headers, timeout=30
        )
        assert case.status_code == 200 and case.json()["series"]
        assert (tmp_path / "medloop.sqlite3").exists()
        wait_for(lambda: _echo(dicom_port), timeout=30, what="the DICOM listener")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert "MedLoop stopped." in log.read_text()
    time.sleep(0.5)
    assert not _ok(f"http://127.0.0.1:{port}/login/")
    leftover = subprocess.run(
        ["pgrep", "-f", f"runserver --noreload 127.0.0.1:{port}"], capture_output=True, text=True
    )
    assert leftover.stdout.strip() == ""


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _echo(port: int) -> bool:
    result = subprocess.run(
        [dcmtk("echoscu"), "-aec", "MEDLOOP", "127.0.0.1", str(port)],
        capture_output=True,
        timeout=20,
    )
    return result.returncode == 0
