"""The README's first command: `make run` runs manage.py run_platform, which starts the embedded
broker, migrates an embedded SQLite database, seeds the demo, starts gunicorn (DEBUG off, static
files served), a Celery worker, beat and the DICOM listener, restarts whichever of them dies,
and stops everything on Ctrl-C."""

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

        # Served by gunicorn with DEBUG off: no debug page with settings, static files served.
        assert re.search(r"Web server: gunicorn, \d+ workers, DEBUG off", output)
        missing = requests.get(f"{base}/no-such-page/", timeout=30)
        assert missing.status_code == 404
        assert "DEBUG = True" not in missing.text and "SECRET_KEY" not in missing.text
        login_page = requests.get(f"{base}/login/", timeout=30).text
        static = requests.get(f"{base}/static/admin/css/base.css", timeout=30)
        assert static.status_code == 200 and "text/css" in static.headers["Content-Type"]
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', login_page):
            assert requests.get(f"{base}{asset}", timeout=30).status_code == 200, asset
        # The embedded broker: a Valkey server on a private Unix socket, no broker folder race.
        assert "embedded Valkey broker (redis+socket://" in output
        assert (tmp_path / "broker" / "valkey.sock").is_socket()

        # A crashed worker, beat or listener is restarted and logged; the rest keeps serving.
        for name in ("worker", "beat", "listener"):
            pid = _pid(log, name)
            os.kill(pid, signal.SIGKILL)
            wait_for(
                lambda name=name, pid=pid: _pid(log, name) != pid,
                timeout=60,
                what=f"{name} to be restarted",
            )
        text = log.read_text()
        for name in ("worker", "beat", "listener"):
            assert f"{name} exited unexpectedly (killed by SIGKILL)" in text
            assert f"restarting {name} (restart 1)" in text
        assert process.poll() is None
        wait_for(lambda: log.read_text().count(" ready.") >= 2, timeout=90, what="worker again")
        wait_for(lambda: _echo(dicom_port), timeout=60, what="the DICOM listener again")
        again = requests.post(
            f"{base}/api/projects/{project['id']}/next-case/", headers=headers, timeout=30
        )
        assert again.status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    output = log.read_text()
    assert "MedLoop stopped." in output, output[-3000:]
    assert process.returncode == 0
    time.sleep(0.5)
    assert not _ok(f"http://127.0.0.1:{port}/login/")
    leftover = subprocess.run(
        ["pgrep", "-f", f"127.0.0.1:{port}|{tmp_path}"], capture_output=True, text=True
    )
    assert leftover.stdout.strip() == ""
    assert not (tmp_path / "broker" / "valkey.sock").exists()


def _pid(log: Path, name: str) -> int:
    """The pid of the latest start of ``name`` that run_platform logged."""
    return int(re.findall(rf"started {name} \(pid (\d+)\)", log.read_text())[-1])


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
