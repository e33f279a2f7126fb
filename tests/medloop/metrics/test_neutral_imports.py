"""The shared maths and the public data readers load no app, no Django and no torch when imported,
and reader agreement (annotations) loads nothing of the loop (active_learning)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_shared_maths_and_reader_agreement_import_without_django_torch_or_the_loop() -> None:
    code = (
        "import sys; import medloop.metrics.boxes, medloop.metrics.text, medloop.public_data; "
        "import annotations.agreement; "
        "print(sorted({m.split('.')[0] for m in sys.modules} "
        "& {'django', 'torch', 'celery', 'active_learning'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
