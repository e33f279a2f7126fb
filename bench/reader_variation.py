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

from box_priors import rebuild  # noqa: E402 (bench/, this script's folder)

from active_learning.ml.simulated_annotator import (  # noqa: E402
    VARIATION_PATH,
    build_reader_variation,
)


def main() -> None:
    rebuild(VARIATION_PATH, build_reader_variation)


if __name__ == "__main__":
    main()
