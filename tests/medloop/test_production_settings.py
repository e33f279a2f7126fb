"""Production settings refuse to start with a weak secret (issue 15, Low): an empty key, the
development key, a placeholder such as ``changeme``, or a short one; the pseudonym key too."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOAD = "from django.conf import settings; print(settings.DEBUG)"


def _load_production(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SECRET_KEY", "MEDLOOP_PSEUDONYM_KEY") and not k.startswith("PYTEST")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="medloop.settings.production",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        MEDLOOP_VAR_DIR=str(tmp_path / "var"),
        **extra,
    )
    return subprocess.run(
        [sys.executable, "-c", LOAD], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("changeme", "well-known placeholder"),
        ("django-insecure-" + "x1" * 30, "the development key"),
        ("a-short-but-random-Q9x!", "fewer than 50"),
        ("ab" * 40, "fewer than 5 distinct"),
    ],
)
def test_production_refuses_a_weak_secret_key_with_a_clear_message(tmp_path, key, reason):
    result = _load_production(tmp_path, DJANGO_SECRET_KEY=key)
    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is too weak for production" in result.stderr
    assert reason in result.stderr and "secrets.token_urlsafe(50)" in result.stderr
    # The key itself is never echoed into the logs.
    assert not key.strip() or key not in result.stderr


def test_production_refuses_a_weak_pseudonym_key_and_starts_with_strong_ones(tmp_path):
    strong = secrets.token_urlsafe(50)
    weak = _load_production(tmp_path, DJANGO_SECRET_KEY=strong, MEDLOOP_PSEUDONYM_KEY="changeme")
    assert weak.returncode != 0
    assert "MEDLOOP_PSEUDONYM_KEY is too weak for production" in weak.stderr
    fine = _load_production(
        tmp_path, DJANGO_SECRET_KEY=strong, MEDLOOP_PSEUDONYM_KEY=secrets.token_urlsafe(50)
    )
    assert fine.returncode == 0, fine.stderr
    assert fine.stdout.strip() == "False"
