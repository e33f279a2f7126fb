"""Which settings each entry point picks when DJANGO_SETTINGS_MODULE is not set (issue 15):
the production entry points (gunicorn's medloop.wsgi, medloop.asgi, `celery -A medloop`) default
to production, which refuses the development key; manage.py (and so run_platform) keeps the
local settings, whose broker is the embedded Valkey server on a Unix socket under var/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STRONG_KEY = "entry-point-test-" + "k7Qz" * 12

SHOW = (
    "import os; from django.conf import settings; "
    "print(os.environ['DJANGO_SETTINGS_MODULE'], settings.DEBUG, settings.CELERY_BROKER_URL)"
)


def _python(code: str, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY", "CELERY_BROKER_URL")
        and not k.startswith("PYTEST")
    }
    env.update(MEDLOOP_VAR_DIR=str(tmp_path / "var"), **extra)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "entry", ["import medloop.wsgi", "import medloop.asgi", "from medloop.celery import app"]
)
def test_production_entry_points_default_to_production_settings(entry: str, tmp_path: Path):
    refused = _python(f"{entry}; from django.conf import settings; settings.DEBUG", tmp_path)
    assert refused.returncode != 0
    assert "Set DJANGO_SECRET_KEY for production" in refused.stderr

    served = _python(
        f"{entry}; import django; django.setup(); {SHOW}",
        tmp_path,
        DJANGO_SECRET_KEY=STRONG_KEY,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    assert served.returncode == 0, served.stderr
    assert served.stdout.split()[:2] == ["medloop.settings.production", "False"]


def test_manage_py_keeps_the_local_settings_and_the_embedded_broker(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SHOW],
        cwd=REPO,
        env={
            k: v
            for k, v in os.environ.items()
            if k not in ("DJANGO_SETTINGS_MODULE", "CELERY_BROKER_URL", "DJANGO_DEBUG")
        }
        | {"MEDLOOP_VAR_DIR": str(tmp_path / "var")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    module, debug, broker = result.stdout.split()[-3:]
    assert (module, debug) == ("medloop.settings.local", "True")
    assert broker == f"redis+socket://{(tmp_path / 'var').resolve()}/broker/valkey.sock"
