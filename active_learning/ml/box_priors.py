"""Box size and position priors for the synthetic cases, derived from real expert box lists.

The priors are aggregated statistics of the normalised box centre ``cx``, ``cy``, width ``w`` and
height ``h`` (fractions 0..1 of the image width and height, origin top-left, image displayed with
the patient's right on the viewer's left) of two public box lists that ship in the
``torchxrayvision`` 1.5.7 wheel (``pip install --no-deps torchxrayvision==1.5.7``):

- ``vinbigdata-train.csv.gz``: VinDr-CXR, boxes in pixels of the original DICOM images, three
  radiologists per image (every reader's box counts once). The list carries **no image sizes**, so
  each box is normalised by a per-image frame
  ``max(typical frame, farthest box edge of that image)``.
  The typical frame (``vindr_frame_px``, about 2,450 x 2,950 px) is calibrated from the data: it is
  the one that puts the median centre of VinDr "Cardiomegaly" boxes where the median centre of NIH
  "Cardiomegaly" boxes lies in NIH's known 1024 x 1024 frame. Its aspect ratio comes out close to a
  35 x 43 cm detector, which is how the 3 cm nodule/mass split below converts pixels to millimetres.
- ``BBox_List_2017.csv.gz``: NIH ChestX-ray14, ``[x, y, w, h]`` in 1024 x 1024 pixel images.

Class mapping (our class <- source labels):

- nodule <- VinDr "Nodule/Mass" with longest side < 30 mm, NIH "Nodule"
- mass <- VinDr "Nodule/Mass" with longest side >= 30 mm (the radiological nodule/mass cut-off),
  NIH "Mass"
- consolidation <- VinDr "Consolidation", NIH "Pneumonia" and "Infiltrate" (NIH has no consolidation
  boxes; pneumonia and infiltrate boxes outline the same airspace opacities)
- effusion <- VinDr "Pleural effusion", NIH "Effusion"
- pneumothorax <- VinDr "Pneumothorax", NIH "Pneumothorax"
- cardiomegaly <- VinDr "Cardiomegaly", NIH "Cardiomegaly"

Image-level prevalence (``"prevalence"`` in the JSON, VinDr only: NIH's box list covers only
images with boxes): an image has a class when **any** of its three readers boxed it (nodule and
mass split by the same 3 cm rule), it is normal when every reader wrote "No finding"; the JSON
keeps the per-class rates, the normal rate and the count of every combination of our six classes
(the empty combination includes images whose only findings are outside our six), so a synthetic
pool can follow both the marginal rates and the co-occurrence (cardiomegaly with effusion).

Per class the JSON keeps the count per source, 21 marginal quantiles of each of cx, cy, w, h, the
correlation of their normal scores (a Gaussian copula), and 200 ``(cx, cy, w, h)`` samples drawn
from that copula with a deterministic Halton sequence: a summary of the distribution, not a copy of
any box. ``python bench/box_priors.py`` rewrites ``box_priors.json``; at run time only
the JSON is read (``load_priors``). No Django, no torch.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from medloop.public_data import VINDR_FILE, torchxrayvision_data_dir, vindr_rows

FORMAT_VERSION = 1
PRIORS_PATH = Path(__file__).with_name("box_priors.json")
NIH_FILE = "BBox_List_2017.csv.gz"
NIH_IMAGE_SIZE = 1024.0
DETECTOR_MM = (350.0, 430.0)  # width, height of the 35 x 43 cm detector the VinDr frame stands for
NODULE_MASS_CUTOFF_MM = 30.0
QUANTILE_LEVELS = tuple(i / 20 for i in range(21))
SAMPLES_PER_CLASS = 200
DIMENSIONS = ("cx", "cy", "w", "h")

# our class -> ([VinDr labels], [NIH labels]); "Nodule/Mass" is split by size, see module docstring.
CLASS_SOURCES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "nodule": (("Nodule/Mass",), ("Nodule",)),
    "mass": (("Nodule/Mass",), ("Mass",)),
    "consolidation": (("Consolidation",), ("Pneumonia", "Infiltrate")),
    "effusion": (("Pleural effusion",), ("Effusion",)),
    "pneumothorax": (("Pneumothorax",), ("Pneumothorax",)),
    "cardiomegaly": (("Cardiomegaly",), ("Cardiomegaly",)),
}

Box = tuple[float, float, float, float]  # cx, cy, w, h as fractions of the image


def default_data_dir() -> Path | None:
    """torchxrayvision's ``data`` folder when it holds both CSV files, found without importing the
    package (None otherwise)."""
    path = torchxrayvision_data_dir()
    if path is None:
        return None
    return path if (path / VINDR_FILE).exists() and (path / NIH_FILE).exists() else None


VinDrBox = tuple[str, str, float, float, float, float]  # image_id, class_name, x0, y0, x1, y1 (px)


def _read_vindr(path: Path) -> list[VinDrBox]:
    return [
        (r.image_id, r.class_name, *r.box)
        for r in vindr_rows(path)
        if r.box is not None  # "No finding" rows carry no box
    ]


def _read_vindr_labels(path: Path) -> dict[str, set[str]]:
    """Every VinDr image id -> the set of labels its readers wrote ("No finding" included)."""
    labels: dict[str, set[str]] = {}
    for r in vindr_rows(path):
        labels.setdefault(r.image_id, set()).add(r.class_name)
    return labels


def _vindr_frame(vindr: list[VinDrBox], nih: list[tuple[str, Box]]) -> tuple[float, float]:
    """Typical VinDr image size (px) calibrated on the median cardiomegaly box centre of NIH."""
    cardio = np.array([r[2:] for r in vindr if r[1] == "Cardiomegaly"])
    nih_cardio = np.array([b for label, b in nih if label == "Cardiomegaly"])
    px_cx = np.median((cardio[:, 0] + cardio[:, 2]) / 2)
    px_cy = np.median((cardio[:, 1] + cardio[:, 3]) / 2)
    width = 16 * round(px_cx / np.median(nih_cardio[:, 0]) / 16)
    height = 16 * round(px_cy / np.median(nih_cardio[:, 1]) / 16)
    return float(width), float(height)


def _read_nih(path: Path) -> list[tuple[str, Box]]:
    out = []
    with gzip.open(path, "rt", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)  # header: Image Index, Finding Label, Bbox [x,y,w,h]
        for row in reader:
            x, y, w, h = (float(v) / NIH_IMAGE_SIZE for v in row[2:6])
            out.append((row[1], (x + w / 2, y + h / 2, w, h)))
    return out


def _halton(count: int, base: int) -> np.ndarray:
    values = np.zeros(count)
    for i in range(count):
        f, n, r = 1.0, i + 1, 0.0
        while n > 0:
            f /= base
            r += f * (n % base)
            n //= base
        values[i] = r
    return values


def _summarise(boxes: np.ndarray) -> dict[str, Any]:
    """Quantiles, normal-score correlation and copula samples of an (n, 4) array of cx, cy, w, h."""
    normal = NormalDist()
    n = len(boxes)
    ranks = boxes.argsort(axis=0, kind="stable").argsort(axis=0, kind="stable")
    scores = np.vectorize(normal.inv_cdf)((ranks + 0.5) / n)
    corr = np.corrcoef(scores, rowvar=False)
    quantiles = np.quantile(boxes, QUANTILE_LEVELS, axis=0)
    cholesky = np.linalg.cholesky(corr + 1e-9 * np.eye(4))
    uniform = np.stack([_halton(SAMPLES_PER_CLASS, b) for b in (2, 3, 5, 7)], axis=1)
    z = np.vectorize(normal.inv_cdf)(uniform) @ cholesky.T
    u = np.vectorize(normal.cdf)(z)
    samples = np.stack(
        [np.interp(u[:, d], QUANTILE_LEVELS, quantiles[:, d]) for d in range(4)], axis=1
    )
    samples[:, 2:] = samples[:, 2:].clip(0.005, 1.0)
    samples[:, :2] = samples[:, :2].clip(samples[:, 2:] / 2, 1 - samples[:, 2:] / 2)
    return {
        "quantile_levels": [round(q, 4) for q in QUANTILE_LEVELS],
        "quantiles": {
            d: [round(float(v), 4) for v in quantiles[:, i]] for i, d in enumerate(DIMENSIONS)
        },
        "normal_score_correlation": [[round(float(v), 3) for v in row] for row in corr],
        "samples": [[round(float(v), 4) for v in row] for row in samples],
    }


def build_priors(data_dir: Path | str) -> dict[str, Any]:
    """Build the priors dict from the two CSV files in ``data_dir`` (torchxrayvision's data folder).

    Returns ``{"format_version", "vindr_frame_px": [w, h], "classes": {class: {"count", "sources",
    "quantile_levels", "quantiles": {"cx"|"cy"|"w"|"h": [21 floats]}, "normal_score_correlation":
    4x4, "samples": [[cx, cy, w, h] x 200]}}}``, every coordinate a fraction 0..1 of the image.
    """
    data_dir = Path(data_dir)
    vindr = _read_vindr(data_dir / VINDR_FILE)
    nih = _read_nih(data_dir / NIH_FILE)
    frame_w, frame_h = _vindr_frame(vindr, nih)
    extent: dict[str, tuple[float, float]] = {}
    for image_id, _, _, _, x1, y1 in vindr:
        w, h = extent.get(image_id, (frame_w, frame_h))
        extent[image_id] = (max(w, x1), max(h, y1))

    per_class: dict[str, list[Box]] = {name: [] for name in CLASS_SOURCES}
    sources: dict[str, dict[str, int]] = {name: {} for name in CLASS_SOURCES}
    present: dict[str, set[str]] = {}  # image id -> our classes any reader boxed
    for image_id, label, x0, y0, x1, y1 in vindr:
        if x1 <= x0 or y1 <= y0:
            continue
        fw, fh = extent[image_id]
        box = ((x0 + x1) / 2 / fw, (y0 + y1) / 2 / fh, (x1 - x0) / fw, (y1 - y0) / fh)
        name = vindr_class(label, box[2], box[3])
        if name is None:
            continue
        per_class[name].append(box)
        present.setdefault(image_id, set()).add(name)
        key = f"vindr:{label}"
        sources[name][key] = sources[name].get(key, 0) + 1
    for label, box in nih:
        for name, (_, nih_labels) in CLASS_SOURCES.items():
            if label in nih_labels:
                per_class[name].append(box)
                key = f"nih:{label}"
                sources[name][key] = sources[name].get(key, 0) + 1

    classes = {
        name: {"count": len(boxes), "sources": sources[name], **_summarise(np.array(boxes))}
        for name, boxes in per_class.items()
    }
    return {
        "format_version": FORMAT_VERSION,
        "generated_by": "python bench/box_priors.py",
        "vindr_frame_px": [frame_w, frame_h],
        "classes": classes,
        "prevalence": _prevalence(_read_vindr_labels(data_dir / VINDR_FILE), present),
    }


def vindr_class(label: str, width: float, height: float) -> str | None:
    """Our class for a VinDr box of ``label`` whose size is ``width`` x ``height`` (fractions of
    the VinDr frame): "Nodule/Mass" splits at 3 cm on the 35 x 43 cm detector; None for a label
    outside our six classes."""
    for name, (vindr_labels, _) in CLASS_SOURCES.items():
        if label not in vindr_labels:
            continue
        if label == "Nodule/Mass":
            longest_mm = max(width * DETECTOR_MM[0], height * DETECTOR_MM[1])
            return "mass" if longest_mm >= NODULE_MASS_CUTOFF_MM else "nodule"
        return name
    return None


def _prevalence(labels: dict[str, set[str]], present: dict[str, set[str]]) -> dict[str, Any]:
    """Image-level rates over every VinDr image (see the module docstring)."""
    images = len(labels)
    normal = sum(1 for found in labels.values() if found == {"No finding"})
    combinations: dict[str, int] = {}
    for image_id in labels:
        key = "+".join(sorted(present.get(image_id, ())))
        combinations[key] = combinations.get(key, 0) + 1
    return {
        "source": "VinDr-CXR, any of three readers",
        "images": images,
        "no_finding_rate": round(normal / images, 4),
        "rates": {
            name: round(sum(name in found for found in present.values()) / images, 4)
            for name in CLASS_SOURCES
        },
        "combinations": dict(sorted(combinations.items())),
    }


def dumps(priors: dict[str, Any]) -> str:
    """The JSON text as committed: indented, with each list of numbers kept on one line."""
    text = json.dumps(priors, indent=1, sort_keys=True)
    return (
        re.sub(
            r"\[([^\[\]{}]*)\]",
            lambda m: "[" + ", ".join(p.strip() for p in m.group(1).split(",")) + "]",
            text,
        )
        + "\n"
    )


def load_priors(path: Path | str | None = None) -> dict[str, Any]:
    """Read the committed priors JSON (no CSV needed); see ``build_priors`` for the structure."""
    with open(path or PRIORS_PATH, encoding="utf-8") as handle:
        priors: dict[str, Any] = json.load(handle)
    if priors.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"box priors format {priors.get('format_version')} != {FORMAT_VERSION}")
    return priors
