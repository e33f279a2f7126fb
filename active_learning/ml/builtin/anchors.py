"""Anchor shapes fitted to the box priors at the model's input size.

The detector's anchors are ``anchors_per_level`` base shapes at the finest FPN level (stride 4),
doubled at each of the 4 levels (MONAI's ``AnchorGeneratorWithAnchorShape`` with feature-map
scales 1, 2, 4, 8). The base shapes are chosen so that the real box sizes (the VinDr-CXR / NIH
samples in ``box_priors.json``, every class weighted equally so rare small findings count as
much as cardiomegaly) fall on an anchor: the base sizes are geometric steps of
``2 ** (1 / anchors_per_level)`` from the smallest size ``s0``, and ``s0`` is the one among
candidate starts that minimises the total distance (in octaves) of the boxes that fall outside
the covered range: the real sizes span about 6 octaves (3 px nodules to 130 px pneumothoraces at
256 px) and the anchors 4, so some boxes must match an anchor up to twice their size, and this
spreads the shortfall over both ends. Each base shape takes the median aspect ratio of the boxes
nearest to it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from active_learning.ml.box_priors import load_priors

LEVELS = 4  # FPN levels at strides 4, 8, 16, 32: anchor sizes double per level
MIN_ANCHOR_PX = 4.0


def prior_box_sizes(input_size: int, classes: Sequence[str] | None = None) -> np.ndarray:
    """``(N, 2)`` widths and heights in model pixels of the priors' samples (``classes`` only,
    when given; classes without priors are skipped). Each class contributes the same number of
    samples, so the fit is not dominated by the most frequent class."""
    priors = load_priors()["classes"]
    names = [c for c in (classes or priors) if c in priors]
    sizes = []
    for name in names:
        samples = np.asarray(priors[name]["samples"], dtype=np.float64)  # (n, 4) cx cy w h
        sizes.append(samples[:, 2:4] * input_size)
    if not sizes:
        return np.zeros((0, 2))
    return np.concatenate(sizes)


def fit_anchor_shapes(
    input_size: int,
    *,
    per_level: int = 3,
    classes: Sequence[str] | None = None,
) -> tuple[tuple[int, int], ...]:
    """``per_level`` base anchor shapes ``(width, height)`` in model pixels (module docstring).

    Without priors (no class known to them) the shapes fall back to squares of 6, 12, 24... px
    scaled to the input size."""
    wh = prior_box_sizes(input_size, classes)
    if len(wh) == 0:
        base = max(MIN_ANCHOR_PX, 6.0 * input_size / 256)
        return tuple((round(base * 2**j), round(base * 2**j)) for j in range(per_level))
    wh = np.maximum(wh, 1.0)
    log_size = np.log2(np.sqrt(wh[:, 0] * wh[:, 1]))
    step = 1.0 / per_level
    span = LEVELS  # log2 range covered: s0 .. s0 * 2 ** (LEVELS - step)
    low = max(math.log2(MIN_ANCHOR_PX), float(np.quantile(log_size, 0.01)))
    best_start, best_missed = low, math.inf
    for start in np.arange(low, low + 3.0, 0.05):
        below = np.clip(start - step / 2 - log_size, 0, None)
        above = np.clip(log_size - (start + span - step / 2), 0, None)
        missed = float(np.sum(below) + np.sum(above))
        if missed < best_missed:  # the smallest start wins ties: small lesions come first
            best_start, best_missed = float(start), missed
    # Every box is assigned to its nearest anchor in log size; the anchor's aspect ratio is the
    # median of its boxes' (1 where none).
    offsets = np.round((log_size - best_start) / step)
    index = np.clip(offsets, 0, LEVELS * per_level - 1).astype(int) % per_level
    log_aspect = np.log2(wh[:, 1] / wh[:, 0])
    shapes = []
    for j in range(per_level):
        size = 2 ** (best_start + j * step)
        mine = log_aspect[index == j]
        aspect = 2 ** float(np.clip(np.median(mine), -1.0, 1.0)) if len(mine) else 1.0
        width = max(MIN_ANCHOR_PX / 2, size / math.sqrt(aspect))
        height = max(MIN_ANCHOR_PX / 2, size * math.sqrt(aspect))
        shapes.append((max(2, round(width)), max(2, round(height))))
    return tuple(shapes)
