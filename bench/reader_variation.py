"""Rebuild ``active_learning/ml/reader_variation.json`` (how far two radiologists' boxes of one
finding lie apart, per class) from the VinDr-CXR box lists.

    python bench/reader_variation.py

Needs the torchxrayvision wheel's data folder (``pip install --no-deps torchxrayvision==1.5.7``);
at run time the simulated annotator reads only the committed JSON
(``simulated_annotator.load_reader_variation``).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from active_learning.ml.box_priors import default_data_dir, dumps  # noqa: E402
from active_learning.ml.simulated_annotator import (  # noqa: E402
    VARIATION_PATH,
    build_reader_variation,
)
from medloop.public_data import TORCHXRAYVISION_INSTALL_HINT  # noqa: E402


def main() -> None:
    data_dir = default_data_dir()
    if data_dir is None:
        raise SystemExit(f"{TORCHXRAYVISION_INSTALL_HINT} first: its data folder is needed")
    VARIATION_PATH.write_text(dumps(build_reader_variation(data_dir)), encoding="utf-8")
    print(f"wrote {VARIATION_PATH} ({VARIATION_PATH.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
