"""Run a Django script in a fresh process on a new SQLite database (migrations as a deployment
runs them), and read the JSON it prints last."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_on_sqlite(script: str, tmp_path: Path, **env: str) -> Any:
    """Run ``script`` with the local settings on ``tmp_path``'s database; ``env``: more
    settings. Fails the test with the process's error output when the script fails."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    environ.update(
        DJANGO_SETTINGS_MODULE="medloop.settings.local",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        MEDLOOP_VAR_DIR=str(tmp_path / "var"),
        CELERY_BROKER_URL="memory://",
        **env,
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environ, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
