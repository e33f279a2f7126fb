"""Outages of the services MedLoop stands on, against a real gunicorn server over loopback.

- PostgreSQL stopped under a running server (a private instance, so the machine's shared one is
  never touched): API requests get a JSON 503 with Retry-After, pages a 503, /health/ 503; once
  the database is back the very next request is served (stale connections are health-checked).
- Redis (the broker; a private redis-server) stopped while annotators work: next case, drafts
  and submissions are all served; a retraining cycle triggered meanwhile is accepted and waits,
  queued; once Redis is back, beat's watchdog sends it and a worker runs it to the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_client
import requests
from django.conf import settings
from rest_framework.authtoken.models import Token

from active_learning.models import RetrainingCycle
from active_learning.services import cycles
from medloop.celery import app
from tests.integration.conftest import REPO, current_database_url, wait_for

pytestmark = [pytest.mark.integration]

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), Path("/nonexistent"))
QUEUES = "default,training,inference"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1:<port> (trust auth), run as ``postgres``
    when this process is root (PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="medloop-pg-", dir="/tmp"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = _free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/medloop"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_postgres, str(PG_BIN / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _server_env(database_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "medloop.settings.local",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": database_url,
        "MEDLOOP_VAR_DIR": str(var_dir),
        "MEDLOOP_STORAGE_DIR": str(settings.STORAGE_DIR),
        "MEDLOOP_MODELS_DIR": str(settings.MODELS_DIR),
        "MEDLOOP_LOG_LEVEL": "WARNING",
        **extra,
    }


def _start_gunicorn(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "medloop.wsgi",
            "--workers",
            "1",
            "--threads",
            "4",
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "60",
        ],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{base}/health/", timeout=2).status_code in (200, 503)
        except requests.RequestException:
            return server.poll() is not None

    wait_for(up, timeout=60, what="gunicorn to listen")
    assert server.poll() is None, log.read_text()
    return server, base


def _stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


# ------------------------------------------------------------------------------------ PostgreSQL
@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL's server binaries are missing ({PG_BIN}); install postgresql")
    server = PrivatePostgres()
    try:
        server.start()
        subprocess.run(
            [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres",
             "medloop"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        yield server
    finally:
        server.remove()


PREPARE = """
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from annotations.services import projects
user = get_user_model().objects.create_user("lena", password="correct horse battery")
project = projects.create_project(name="Outage", created_by=user)
print("TOKEN", Token.objects.create(user=user).key, project.pk)
"""


def test_database_restart_gives_503_then_recovers(private_postgres, tmp_path):
    env = _server_env(private_postgres.url, tmp_path / "var")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=REPO, env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PREPARE],
        cwd=REPO, env=env, check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    token, project_id = out.split("TOKEN ")[1].split()
    server, base = _start_gunicorn(env, tmp_path / "gunicorn.log")
    api = requests.Session()
    api.headers["Authorization"] = f"Token {token}"
    browser = requests.Session()
    try:
        login = browser.get(f"{base}/login/", timeout=10)
        csrf = browser.cookies["csrftoken"]
        assert login.status_code == 200
        browser.post(
            f"{base}/login/",
            data={"username": "lena", "password": "correct horse battery",
                  "csrfmiddlewaretoken": csrf},
            headers={"Referer": f"{base}/login/"},
            timeout=10,
        )  # fmt: skip
        page = f"{base}/projects/{project_id}/dashboard/"
        # Served before the outage (make test builds the pages first), so the 503 below is the
        # database's and not a page that was never built.
        before = browser.get(page, timeout=10, allow_redirects=False)
        assert before.status_code == 200, before.text[:300]
        assert api.get(f"{base}/api/projects/", timeout=10).status_code == 200
        # Healthy before the outage: every 503 below is the stopped database's.
        assert requests.get(f"{base}/health/", timeout=10).status_code == 200

        private_postgres.stop()
        for _ in range(3):  # each request finds the database gone, none gets a 500
            response = api.get(f"{base}/api/projects/{project_id}/", timeout=30)
            assert response.status_code == 503, response.text
            assert response.json()["error"] == "unavailable"
            assert response.headers["Retry-After"].isdigit()
        written = api.patch(
            f"{base}/api/projects/{project_id}/", json={"description": "x"}, timeout=30
        )
        assert written.status_code == 503, written.text
        assert requests.get(f"{base}/health/", timeout=30).status_code == 503
        page_response = browser.get(page, timeout=30, allow_redirects=False)
        assert page_response.status_code == 503, page_response.text[:300]
        assert "database is unavailable" in page_response.text

        private_postgres.start()
        recovered = api.get(f"{base}/api/projects/{project_id}/", timeout=30)
        assert recovered.status_code == 200, recovered.text
        assert requests.get(f"{base}/health/", timeout=30).status_code == 200
        assert server.poll() is None
    finally:
        _stop(server)


# ----------------------------------------------------------------------------------------- Redis
class PrivateRedis:
    def __init__(self, root: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.root = root
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self._pings, timeout=20, what="redis-server to answer")

    def _pings(self) -> bool:
        try:
            return bool(redis_client.Redis.from_url(self.url, socket_timeout=1).ping())
        except redis_client.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is missing (Debian's redis-server package)")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.mark.django_db(transaction=True)
def test_redis_outage_leaves_annotating_untouched_and_cycles_wait(
    loop_project, member, private_redis, start_worker, tmp_path
):
    annotator = member("ann", "annotator")
    owner = member("olga", "model_owner")
    tokens = {
        u.username: f"Token {Token.objects.get_or_create(user=u)[0].key}"
        for u in (annotator, owner)
    }
    env = _server_env(current_database_url(), tmp_path / "var", CELERY_BROKER_URL=private_redis.url)
    server, base = _start_gunicorn(env, tmp_path / "gunicorn.log")

    def call(user: str, method: str, path: str, **kwargs: object) -> requests.Response:
        headers = {"Authorization": tokens[user], **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        return requests.request(method, base + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def read_one_case() -> int:
        case = call("ann", "POST", f"/api/projects/{loop_project.pk}/next-case/")
        assert case.status_code == 200, case.text
        body = case.json()
        draft = call(
            "ann", "PUT", f"/api/cases/{body['id']}/annotation/",
            json={"findings": {"nodule": "present"}},
            headers={"If-Match": body["annotation"]["etag"]},
        )  # fmt: skip
        assert draft.status_code == 200, draft.text
        submitted = call(
            "ann", "POST", f"/api/cases/{body['id']}/annotation/submit/",
            json={}, headers={"If-Match": draft.headers["ETag"]},
        )  # fmt: skip
        assert submitted.status_code == 200, submitted.text
        return body["id"]

    try:
        read_one_case()  # with Redis up
        private_redis.stop()
        read_one_case()  # with Redis down: served all the same
        triggered = call("olga", "POST", f"/api/projects/{loop_project.pk}/cycles/")
        assert triggered.status_code == 202, triggered.text
        cycle_id = triggered.json()["id"]
        assert RetrainingCycle.objects.get(pk=cycle_id).status == RetrainingCycle.Status.QUEUED
        assert (
            "could not queue active_learning.train_cycle" in (tmp_path / "gunicorn.log").read_text()
        )

        private_redis.start()  # empty: the trigger's message never reached it
        start_worker(private_redis.url, {"MEDLOOP_CYCLE_STALE_SECONDS": "1"}, queues=QUEUES)
        old = (app.conf.broker_url, app.conf.broker_transport_options)
        app.conf.broker_url, app.conf.broker_transport_options = private_redis.url, {}
        app._after_fork()
        try:
            time.sleep(1.5)  # past the (test's) stale threshold
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(settings, "MEDLOOP_CYCLE_STALE_SECONDS", 1)
                assert cycle_id in cycles.resume_stalled()  # what beat runs every minute
        finally:
            app.conf.broker_url, app.conf.broker_transport_options = old
            app._after_fork()
        wait_for(
            lambda: (
                RetrainingCycle.objects.get(pk=cycle_id).status
                not in (RetrainingCycle.Status.QUEUED, RetrainingCycle.Status.RUNNING)
            ),
            timeout=240,
            what="the resumed cycle to finish",
        )
        cycle = RetrainingCycle.objects.get(pk=cycle_id)
        assert cycle.status == RetrainingCycle.Status.SUCCEEDED, cycle.log
    finally:
        _stop(server)
