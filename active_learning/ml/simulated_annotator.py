"""A simulated annotator whose boxes differ from the truth the way VinDr-CXR readers differ.

VinDr-CXR had three radiologists box every image (``vinbigdata-train.csv.gz`` in the
``torchxrayvision`` 1.5.7 wheel). For every image, finding class and ordered pair of readers
(A, B) who both boxed that class, each of A's boxes is paired with B's box of the same label that
overlaps it most (its *best IoU*, 0 when none overlaps), and the difference is written relative to
A's box::

    dx = (cx_B - cx_A) / w_A     dy = (cy_B - cy_A) / h_A
    log_w = ln(w_B / w_A)        log_h = ln(h_B / h_A)

IoU is invariant to shifts and to scaling either axis, so these four numbers fix the pair's IoU
whatever the image size. Per class, ``reader_variation.json`` keeps the quantiles of the best IoU,
400 of the pairs' ``(dx, dy, log_w, log_h)`` taken at evenly spaced ranks of their IoU (relative
offsets, not boxes; the four numbers of a pair stay together, because their joint shape sets the
IoU: a Gaussian copula of the four marginals was tried and put the nodules' median IoU at 0.07
instead of 0.48), and how often reader B drew no box of the class at all
(``other_reader_drew_none``: disagreement on presence, kept for reference; the annotator below
never misses a lesion). Nodule and mass follow the 3 cm split of
:mod:`active_learning.ml.box_priors`, by the size of A's box.

:class:`SimulatedAnnotator` applies one pair's offsets, drawn at random, to each true box: the
annotator is one more reader, whose disagreement with the truth is that of one VinDr reader with
another (so the truth plays reader A: its disagreement with a reader is taken as large as two
readers' disagreement, an upper bound if the truth were the readers' consensus).
``python bench/reader_variation.py`` rewrites the JSON; at run time only the
JSON is read. Pure Python and numpy: no Django, no torch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from active_learning.ml.box_priors import VINDR_FILE, vindr_class
from active_learning.ml.interface import Box
from medloop.metrics.boxes import iou_matrix as box_iou
from medloop.public_data import VinDrRow, vindr_rows

FORMAT_VERSION = 1
VARIATION_PATH = Path(__file__).with_name("reader_variation.json")
VARIABLES = ("dx", "dy", "log_w", "log_h")
IOU_LEVELS = tuple(round(i / 20, 2) for i in range(21))
MIN_SIDE_PX = 1.0
SAMPLES_PER_CLASS = 400


def _relative(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(dx, dy, log_w, log_h)`` of box ``b`` relative to box ``a`` (both x0, y0, x1, y1)."""
    wa, ha = a[2] - a[0], a[3] - a[1]
    wb, hb = b[2] - b[0], b[3] - b[1]
    return np.array(
        [
            ((b[0] + b[2]) - (a[0] + a[2])) / 2 / wa,
            ((b[1] + b[3]) - (a[1] + a[3])) / 2 / ha,
            np.log(wb / wa),
            np.log(hb / ha),
        ]
    )


def reader_pairs(
    rows: Iterable[VinDrRow], frame_px: tuple[float, float]
) -> tuple[dict[str, NDArray[np.float64]], dict[str, int]]:
    """Pair the readers' boxes of the VinDr CSV ``rows`` (:func:`medloop.public_data.vindr_rows`).

    Returns, per our class, an ``(n, 5)`` array of ``(best_iou, dx, dy, log_w, log_h)``, one row
    per (box of reader A, other reader B who boxed the same label), and per class the number of
    (box, other reader) pairs where the other reader drew no box of the label.
    ``frame_px``: the typical VinDr frame (width, height) that sizes boxes for the nodule/mass
    split (``box_priors.json``'s ``vindr_frame_px``).
    """
    boxes: dict[tuple[str, str], dict[str, list[tuple[float, float, float, float]]]] = {}
    readers_of_image: dict[str, set[str]] = {}
    for r in rows:
        readers_of_image.setdefault(r.image_id, set()).add(r.rad_id)
        box = r.box
        if box is None:
            continue  # "No finding" rows carry no box
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        readers = boxes.setdefault((r.image_id, r.class_name), {})
        readers.setdefault(r.rad_id, []).append(box)
    pairs: dict[str, list[NDArray[np.float64]]] = {}
    missing: dict[str, int] = {}
    for (image_id, label), by_reader in boxes.items():
        everyone = readers_of_image[image_id]
        for reader_a in sorted(by_reader):
            a = np.array(by_reader[reader_a])
            names = [vindr_class(label, (x1 - x0) / frame_px[0], (y1 - y0) / frame_px[1])
                     for x0, y0, x1, y1 in a]  # fmt: skip
            for reader_b in sorted(everyone - {reader_a}):
                if reader_b not in by_reader:
                    for name in names:
                        if name is not None:
                            missing[name] = missing.get(name, 0) + 1
                    continue
                b = np.array(by_reader[reader_b])
                overlaps = box_iou(a, b)
                for index, name in enumerate(names):
                    if name is None:
                        continue
                    best = int(np.argmax(overlaps[index]))
                    row = np.concatenate([[overlaps[index, best]], _relative(a[index], b[best])])
                    pairs.setdefault(name, []).append(row)
    return {name: np.array(rows_) for name, rows_ in pairs.items()}, missing


def stratified_sample(table: NDArray[np.float64], size: int) -> NDArray[np.float64]:
    """``size`` rows of ``table`` (rows ``(best_iou, dx, dy, log_w, log_h)``) at evenly spaced
    ranks of the IoU: the sample's IoU distribution is the table's, quantile for quantile, and
    each row keeps the four offsets of one real pair together (their joint shape, such as a
    large box around a small one, is what sets the IoU; a per-variable summary loses it)."""
    order = np.argsort(table[:, 0], kind="stable")
    if len(order) <= size:
        return table[order]
    picks = np.round((np.arange(size) + 0.5) * len(order) / size - 0.5).astype(int)
    return table[order[picks]]


def build_reader_variation(data_dir: Path | str) -> dict[str, Any]:
    """The JSON dict from the VinDr CSV in ``data_dir`` (torchxrayvision's data folder):
    ``{"format_version", "source", "classes": {class: {"pairs", "other_reader_drew_none",
    "iou_levels", "iou_quantiles", "quantile_levels", "quantiles": {variable: [...]},
    "normal_score_correlation": 4x4}}}``."""
    from active_learning.ml.box_priors import load_priors

    rows = vindr_rows(Path(data_dir) / VINDR_FILE)
    frame = load_priors()["vindr_frame_px"]
    pairs, missing = reader_pairs(rows, (float(frame[0]), float(frame[1])))
    classes: dict[str, Any] = {}
    for name in sorted(pairs):
        table = pairs[name]
        classes[name] = {
            "pairs": len(table),
            "other_reader_drew_none": missing.get(name, 0),
            "iou_levels": list(IOU_LEVELS),
            "iou_quantiles": [round(float(v), 4) for v in np.quantile(table[:, 0], IOU_LEVELS)],
            "offsets": [
                [round(float(v), 4) for v in row[1:]]
                for row in stratified_sample(table, SAMPLES_PER_CLASS)
            ],
        }
    return {
        "format_version": FORMAT_VERSION,
        "generated_by": "python -m active_learning.ml.simulated_annotator",
        "source": "VinDr-CXR vinbigdata-train.csv.gz, every ordered pair of its three readers",
        "classes": classes,
    }


def load_reader_variation(path: Path | str | None = None) -> dict[str, Any]:
    """Read the committed ``reader_variation.json`` (no CSV needed)."""
    with open(path or VARIATION_PATH, encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    if data.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"reader variation format {data.get('format_version')} != {FORMAT_VERSION}"
        )
    return data


class SimulatedAnnotator:
    """Redraws true boxes as one more VinDr reader would (see the module docstring).

    ``seed`` fixes every draw; ``scale`` multiplies the offsets and log-scales (1.0: VinDr's
    readers; 0.0: the truth itself), for sensitivity runs. A class without reader statistics
    is boxed exactly.
    """

    def __init__(
        self, seed: int = 0, *, scale: float = 1.0, variation: Mapping[str, Any] | None = None
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.scale = scale
        classes = (variation or load_reader_variation())["classes"]
        self.offsets = {name: np.array(stats["offsets"]) for name, stats in classes.items()}

    def redraw(self, box: Box, *, rows: int, columns: int) -> Box:
        """The annotator's box for the true ``box`` on an image of ``rows`` x ``columns`` px:
        the offsets of one VinDr reader pair of the class, drawn at random, applied to it."""
        table = self.offsets.get(box.finding)
        if table is None or len(table) == 0 or self.scale == 0:
            return box
        offsets = table[int(self.rng.integers(len(table)))] * self.scale
        return _apply(box, offsets, rows=rows, columns=columns)

    def annotate(self, boxes: Sequence[Box], *, rows: int, columns: int) -> list[Box]:
        """The annotator's boxes for a case whose true boxes are ``boxes`` (same order)."""
        return [self.redraw(box, rows=rows, columns=columns) for box in boxes]


def _apply(box: Box, offsets: NDArray[np.float64], *, rows: int, columns: int) -> Box:
    """``box`` moved and resized by ``(dx, dy, log_w, log_h)``, clipped to the image."""
    dx, dy, log_w, log_h = (float(v) for v in offsets)
    width = max(box.width * float(np.exp(log_w)), MIN_SIDE_PX)
    height = max(box.height * float(np.exp(log_h)), MIN_SIDE_PX)
    cx = box.x + box.width / 2 + dx * box.width
    cy = box.y + box.height / 2 + dy * box.height
    x0, x1 = max(cx - width / 2, 0.0), min(cx + width / 2, float(columns))
    y0, y1 = max(cy - height / 2, 0.0), min(cy + height / 2, float(rows))
    # A box pushed off the image keeps at least one pixel inside it.
    x0, y0 = min(x0, columns - MIN_SIDE_PX), min(y0, rows - MIN_SIDE_PX)
    x1, y1 = max(x1, x0 + MIN_SIDE_PX), max(y1, y0 + MIN_SIDE_PX)
    return Box(box.finding, round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2))


def iou_ks_distance(
    simulated: Sequence[float], levels: Sequence[float], quantiles: Sequence[float]
) -> float:
    """Kolmogorov-Smirnov distance between simulated IoUs and a reference given by its
    quantiles: the largest gap between the simulated CDF and the reference levels, checked at
    the reference's interior quantiles (where the reference CDF is known)."""
    values = np.sort(np.asarray(simulated, dtype=np.float64))
    gaps = []
    for level, q in zip(levels[1:-1], quantiles[1:-1], strict=True):
        below = np.searchsorted(values, q, side="left") / len(values)
        at_or_below = np.searchsorted(values, q, side="right") / len(values)
        # A reference quantile on an atom (IoU 0) is met by any CDF value between the two.
        gaps.append(
            0.0
            if below <= level <= at_or_below
            else min(abs(below - level), abs(at_or_below - level))
        )
    return float(max(gaps))
