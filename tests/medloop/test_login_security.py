"""Login hardening: Argon2, lockout, a new session at login, idle logoff, CSRF, headers,
throttling, body limits, and Django's deployment checks on the production settings."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.hashers import identify_hasher, make_password
from django.core.cache import cache
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from annotations.models import AuditEvent
from medloop.settings import base

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parents[2]
ARGON2 = "medloop.accounts.hashers.SizedArgon2PasswordHasher"
# Small Argon2 parameters keep these tests fast; the production ones are in base settings.
QUICK_ARGON2 = {
    "PASSWORD_HASHERS": [ARGON2, "django.contrib.auth.hashers.MD5PasswordHasher"],
    "MEDLOOP_ARGON2_TIME_COST": 1,
    "MEDLOOP_ARGON2_MEMORY_KIB": 1024,
    "MEDLOOP_ARGON2_PARALLELISM": 1,
}


def login(client: Client, username: str, password: str = PASSWORD, **extra: str):
    return client.post("/login/", {"username": username, "password": password}, **extra)


# --- passwords --------------------------------------------------------------------------------


def test_argon2id_comes_first_with_the_parameters_sized_for_the_machine():
    assert base.PASSWORD_HASHERS[0] == ARGON2
    assert (
        base.MEDLOOP_ARGON2_TIME_COST,
        base.MEDLOOP_ARGON2_MEMORY_KIB,
        base.MEDLOOP_ARGON2_PARALLELISM,
    ) == (3, 65536, 2)
    with override_settings(**QUICK_ARGON2):
        encoded = make_password("s3cret-passphrase")
        assert encoded.startswith("argon2$argon2id$v=19$m=1024,t=1,p=1$")
        assert identify_hasher(encoded).algorithm == "argon2"


def test_an_older_hash_is_replaced_by_argon2_at_the_next_login(client, make_user):
    user = make_user("olduser")
    assert user.password.startswith("md5$")
    with override_settings(**QUICK_ARGON2):
        assert login(client, "olduser").status_code == 302
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")


# --- sessions ---------------------------------------------------------------------------------


def test_logging_in_gives_a_new_session_key(client, make_user):
    make_user("alice")
    session = client.session
    session["before_login"] = True
    session.save()
    before = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert login(client, "alice").status_code == 302
    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after and after != before
    assert client.get("/").status_code == 200


def test_an_idle_session_is_logged_out_and_activity_keeps_it(client, make_user, monkeypatch):
    assert settings.SESSION_COOKIE_AGE == 900 and settings.SESSION_SAVE_EVERY_REQUEST
    client.force_login(make_user("alice"))
    start = timezone.now()

    def at(minutes: int) -> int:
        monkeypatch.setattr(timezone, "now", lambda: start + timedelta(minutes=minutes))
        return client.get("/").status_code

    assert at(10) == 200  # within 15 minutes: still in, and the expiry moves on
    assert at(20) == 200  # 20 minutes after login, but only 10 idle
    response_status = at(36)  # 16 minutes idle: logged off
    assert response_status == 302
    assert client.get("/").url.startswith("/login/")


# --- lockout ----------------------------------------------------------------------------------

LOCKOUT = {"AXES_ENABLED": True, "AXES_FAILURE_LIMIT": 3}


@override_settings(**LOCKOUT)
def test_repeated_failed_logins_lock_the_username_from_that_address(client, make_user):
    make_user("alice")
    assert login(client, "alice", "wrong-1").status_code == 200
    assert login(client, "alice", "wrong-2").status_code == 200
    locked = login(client, "alice", "wrong-3")
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content and b"15 minutes" in locked.content
    assert locked["Retry-After"] == "900"
    # Now even the right password is refused from that address...
    assert login(client, "alice").status_code == 429
    assert AuditEvent.objects.filter(action="auth.locked_out").count() == 2
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 4
    # ...while the same user from another address, and another user, still get in.
    assert login(Client(), "alice", REMOTE_ADDR="10.20.30.40").status_code == 302
    make_user("bob")
    assert login(Client(), "bob").status_code == 302


@override_settings(**LOCKOUT, AXES_COOLOFF_TIME=timedelta(seconds=1))
def test_the_lock_ends_after_the_cool_off_time(client, make_user, advance_clock):
    make_user("alice")
    for attempt in range(3):
        login(client, "alice", f"wrong-{attempt}")
    assert login(client, "alice").status_code == 429
    advance_clock(0.9)  # still within the second of cool-off
    assert login(client, "alice").status_code == 429
    advance_clock(0.2)
    assert login(client, "alice").status_code == 302


@override_settings(**LOCKOUT)
def test_the_token_endpoint_counts_failures_and_locks_out_with_a_json_error(make_user):
    make_user("scripter")
    client = APIClient()
    url = "/api/auth/token/"
    for attempt in range(2):
        assert (
            client.post(url, {"username": "scripter", "password": f"x{attempt}"}).status_code == 400
        )
    locked = client.post(url, {"username": "scripter", "password": "x2"})
    assert locked.status_code == 429
    assert locked.json()["error"] == "locked_out" and "locked" in locked.json()["message"]
    assert client.post(url, {"username": "scripter", "password": PASSWORD}).status_code == 429


def test_local_settings_do_not_lock_out_the_demo_users_unless_asked():
    source = (ROOT / "medloop" / "settings" / "local.py").read_text()
    assert 'AXES_ENABLED = env_bool("MEDLOOP_LOGIN_LOCKOUT", False)' in source
    assert base.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


# --- CSRF, headers ----------------------------------------------------------------------------


def test_session_authenticated_api_writes_need_the_csrf_token(project, member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member("lena", "lead"))
    client.get("/")  # the page sets the CSRF cookie
    url = f"/api/projects/{project.pk}/"
    refused = client.patch(url, {"description": "x"}, content_type="application/json")
    assert refused.status_code == 403
    assert refused.json()["error"] == "permission_denied" and "CSRF" in refused.json()["message"]
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    accepted = client.patch(
        url, {"description": "x"}, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert accepted.status_code == 200


def test_the_login_form_needs_the_csrf_token(make_user):
    make_user("alice")
    assert login(Client(enforce_csrf_checks=True), "alice").status_code == 403


def test_pages_and_api_send_the_security_headers(client, project, member):
    client.force_login(member("lena", "lead"))
    for path in ["/login/", "/", f"/projects/{project.pk}/upload/", "/api/projects/"]:
        response = client.get(path)
        assert response["X-Content-Type-Options"] == "nosniff", path
        assert response["Referrer-Policy"] == "same-origin", path
        assert response["X-Frame-Options"] == "DENY", path
        assert response["Cross-Origin-Opener-Policy"] == "same-origin", path
        policy = response["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, path
        assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0], path
    # The upload page's own inline script carries this response's nonce, and only it runs.
    page = client.get(f"/projects/{project.pk}/upload/")
    nonce = re.search(r"'nonce-([^']+)'", page["Content-Security-Policy"]).group(1)
    assert f'<script nonce="{nonce}">'.encode() in page.content
    assert client.get("/login/")["Content-Security-Policy"] != page["Content-Security-Policy"]


# --- throttling, body limits ------------------------------------------------------------------


@pytest.fixture
def low_rates():
    rates = {"anon": "2/min", "user": "3/min", "token": "2/min"}
    cache.clear()
    with override_settings(
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    ):
        yield
    cache.clear()


def test_api_users_beyond_their_rate_get_429_in_the_api_error_shape(low_rates, make_user, api_for):
    client = api_for(make_user("busy"))
    assert [client.get("/api/projects/").status_code for _ in range(3)] == [200, 200, 200]
    throttled = client.get("/api/projects/")
    assert throttled.status_code == 429
    assert throttled.json()["error"] == "throttled" and "seconds" in throttled.json()["message"]
    assert int(throttled["Retry-After"]) > 0
    # Another user has a count of their own.
    assert api_for(make_user("calm")).get("/api/projects/").status_code == 200


def test_password_for_token_exchanges_are_throttled_per_address(low_rates, make_user):
    make_user("scripter")
    client = APIClient()
    body = {"username": "scripter", "password": PASSWORD}
    statuses = [client.post("/api/auth/token/", body).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert APIClient(REMOTE_ADDR="10.1.1.1").post("/api/auth/token/", body).status_code == 200


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2000)
def test_an_oversized_json_body_is_refused_with_413_before_it_is_read(project, member, api_for):
    lead = api_for(member("lena", "lead"))
    url = f"/api/projects/{project.pk}/"
    too_big = lead.patch(url, {"description": "x" * 3000}, format="json")
    assert too_big.status_code == 413
    assert too_big.json()["error"] == "too_large" and "2000 bytes" in too_big.json()["message"]
    assert lead.patch(url, {"description": "x" * 500}, format="json").status_code == 200


def test_upload_limits_are_configured():
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 10 * 1024 * 1024
    assert settings.DATA_UPLOAD_MAX_NUMBER_FILES == 1000
    assert settings.FILE_UPLOAD_HANDLERS == ["annotations.uploads.MemoryOnlyUploadHandler"]


# --- deployment checks ------------------------------------------------------------------------


def test_check_deploy_passes_with_the_production_settings(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "MEDLOOP_", "DATABASE_", "CELERY_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="medloop.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="medloop.example.org",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://medloop.example.org",
        # Never connected to: the checks read settings only.
        DATABASE_URL="postgres://medloop:secret@db.invalid:5432/medloop",
        MEDLOOP_VAR_DIR=str(tmp_path),
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout
