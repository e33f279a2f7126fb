"""Box overlap and one-to-one matching on it, for boxes in pixels.

numpy and scipy only. Two box layouts occur: ``(x1, y1, x2, y2)`` corners (detector output) and
``(x, y, width, height)`` (what annotators draw and what COCO stores); :func:`corners` converts
the second to the first, and every IoU here is computed by :func:`iou_matrix` on corners.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import linear_sum_assignment

__all__ = [
    "corners",
    "greedy_matches",
    "iou",
    "iou_matrix",
    "iou_matrix_xywh",
    "optimal_match_count",
]

# IoU computed in floating point may fall a hair below a threshold it meets exactly.
IOU_TOLERANCE = 1e-9


def corners(xywh: ArrayLike) -> NDArray[np.float64]:
    """``(n, 4)`` boxes ``(x, y, width, height)`` as ``(x1, y1, x2, y2)``."""
    boxes = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def iou_matrix(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """IoU of every box of ``a`` ``(n, 4)`` with every box of ``b`` ``(m, 4)``, both as corners
    ``(x1, y1, x2, y2)``: float64 ``(n, m)`` in [0, 1]; 0 where the union has no area."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    overlap = np.clip(high - low, 0.0, None)
    intersection = overlap[..., 0] * overlap[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(union), where=union > 0)


def iou_matrix_xywh(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """:func:`iou_matrix` of boxes given as ``(x, y, width, height)``."""
    return iou_matrix(corners(a), corners(b))


def iou(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """IoU of two boxes given as mappings with ``x``, ``y``, ``width``, ``height``."""
    keys = ("x", "y", "width", "height")
    return float(iou_matrix_xywh([[a[k] for k in keys]], [[b[k] for k in keys]])[0, 0])


def greedy_matches(iou: NDArray[np.float64]) -> list[tuple[int, int]]:
    """One-to-one pairs ``(row, column)`` of an IoU matrix taken by decreasing IoU, each row and
    column used once; pairs with IoU 0 are never taken."""
    pairs: list[tuple[int, int]] = []
    if iou.size == 0:
        return pairs
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    for flat in np.argsort(-iou, axis=None):
        row, col = divmod(int(flat), iou.shape[1])
        if iou[row, col] <= 0:
            break
        if row in used_rows or col in used_cols:
            continue
        pairs.append((row, col))
        used_rows.add(row)
        used_cols.add(col)
    return pairs


def optimal_match_count(iou: NDArray[np.float64], threshold: float) -> int:
    """The most one-to-one pairs with IoU >= ``threshold`` (among those, the assignment of the
    largest summed IoU), by optimal assignment (``scipy.optimize.linear_sum_assignment``)."""
    if iou.size == 0:
        return 0
    valid = iou >= threshold - IOU_TOLERANCE
    if not valid.any():
        return 0
    if min(iou.shape) == 1:
        return 1
    # A bonus above any possible IoU sum makes the assignment maximise the number of valid pairs
    # first and their IoU second; invalid pairs weigh 0 and are dropped below.
    weight = np.where(valid, min(iou.shape) + 1.0 + iou, 0.0)
    rows, cols = linear_sum_assignment(weight, maximize=True)
    return int(valid[rows, cols].sum())
