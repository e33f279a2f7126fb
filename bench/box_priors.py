"""Rebuild ``active_learning/ml/box_priors.json`` from the VinDr-CXR and NIH box lists.

    python bench/box_priors.py

Needs the torchxrayvision wheel's data folder (``pip install --no-deps torchxrayvision==1.5.7``);
at run time MedLoop reads only the committed JSON (``box_priors.load_priors``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from active_learning.ml.box_priors import (  # noqa: E402
    PRIORS_PATH,
    build_priors,
    default_data_dir,
    dumps,
)
from medloop.public_data import TORCHXRAYVISION_INSTALL_HINT  # noqa: E402


def rebuild(path: Path, build: Callable[[Path], Any]) -> None:
    """Write ``build(the torchxrayvision data folder)`` to ``path`` as JSON; stop, saying how to
    install it, when the folder is missing."""
    data_dir = default_data_dir()
    if data_dir is None:
        raise SystemExit(f"{TORCHXRAYVISION_INSTALL_HINT} first: its data folder is needed")
    path.write_text(dumps(build(data_dir)), encoding="utf-8")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def main() -> None:
    rebuild(PRIORS_PATH, build_priors)


if __name__ == "__main__":
    main()
