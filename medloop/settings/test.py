"""Tests: PostgreSQL by default (DATABASE_URL), SQLite when TEST_DATABASE=sqlite.

Under CI=true PostgreSQL and Redis are required; tests/conftest.py fails the run when they
cannot be reached instead of skipping."""

import os
import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import database_from_url, env

_scratch = Path(tempfile.mkdtemp(prefix="medloop-test-"))
VAR_DIR = _scratch
STORAGE_DIR = _scratch / "storage"

if env("TEST_DATABASE", "postgres") == "sqlite":
    DATABASES = {"default": database_from_url(f"sqlite:///{_scratch / 'test.sqlite3'}")}
    # A file, not the in-memory default: concurrency tests need real separate connections.
    DATABASES["default"]["TEST"] = {"NAME": str(_scratch / "test.sqlite3")}
else:
    DATABASES = {
        "default": database_from_url(
            env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/medloop")
        )
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # One test database per run, so two checkouts can test side by side on one server.
    DATABASES["default"]["TEST"] = {"NAME": f"test_medloop_{os.getpid()}"}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Django's test client logs in without a request, which django-axes refuses; the lockout tests
# turn it on. Throttling: high rates, so only the tests that lower them meet a 429.
AXES_ENABLED = False
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"anon": "100000/min", "user": "100000/min", "token": "100000/min"},
}
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
CELERY_BROKER_URL = "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULE = {}
MODELS_DIR = STORAGE_DIR / "models"
# The tests' Orthanc runs on loopback (tests/support/orthanc.py); tests of the refusal clear it.
MEDLOOP_PACS_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
# Projects made by the fixtures need no ethics approval (issue 17); the tests of the rule create
# their projects with requires_ethics_approval=True.
MEDLOOP_REQUIRE_ETHICS_APPROVAL = False
