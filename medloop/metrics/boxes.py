"""Box overlap and one-to-one matching on it, for boxes in pixels.

numpy and scipy only. Two box layouts occur: ``(x1, y1, x2, y2)`` corners (detector output) and
``(x, y, width, height)`` (what annotators draw and what COCO stores); :func:`corners` converts
the second to the first, and every IoU here is computed by :func:`iou_matrix` on corners. 3D
boxes (a lesion over a range of CT slices) are the same in three axes: ``(x1, y1, z1, x2, y2,
z2)`` corners, ``(x, y, z, width, height, depth)`` and :func:`iou_matrix_3d`.
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
    "iou_matrix_3d",
    "iou_matrix_xywh",
    "iou_matrix_xyzwhd",
    "optimal_match_count",
]

# IoU computed in floating point may fall a hair below a threshold it meets exactly.
IOU_TOLERANCE = 1e-9


def corners(xywh: ArrayLike, dims: int = 2) -> NDArray[np.float64]:
    """``(n, 4)`` boxes ``(x, y, width, height)`` as ``(x1, y1, x2, y2)``; with ``dims=3``,
    ``(n, 6)`` boxes ``(x, y, z, width, height, depth)`` as ``(x1, y1, z1, x2, y2, z2)``."""
    boxes = np.asarray(xywh, dtype=np.float64).reshape(-1, 2 * dims)
    return np.concatenate([boxes[:, :dims], boxes[:, :dims] + boxes[:, dims:]], axis=1)


def _corner_iou(a: ArrayLike, b: ArrayLike, dims: int) -> NDArray[np.float64]:
    a = np.asarray(a, dtype=np.float64).reshape(-1, 2 * dims)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 2 * dims)
    low = np.maximum(a[:, None, :dims], b[None, :, :dims])
    high = np.minimum(a[:, None, dims:], b[None, :, dims:])
    intersection = np.clip(high - low, 0.0, None).prod(axis=-1)
    size_a = (a[:, dims:] - a[:, :dims]).prod(axis=1)
    size_b = (b[:, dims:] - b[:, :dims]).prod(axis=1)
    union = size_a[:, None] + size_b[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(union), where=union > 0)


def iou_matrix(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """IoU of every box of ``a`` ``(n, 4)`` with every box of ``b`` ``(m, 4)``, both as corners
    ``(x1, y1, x2, y2)``: float64 ``(n, m)`` in [0, 1]; 0 where the union has no area."""
    return _corner_iou(a, b, 2)


def iou_matrix_3d(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """3D IoU (intersection volume over union volume) of every box of ``a`` ``(n, 6)`` with
    every box of ``b`` ``(m, 6)``, both as corners ``(x1, y1, z1, x2, y2, z2)``: float64
    ``(n, m)`` in [0, 1]; 0 where the union has no volume."""
    return _corner_iou(a, b, 3)


def iou_matrix_xywh(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """:func:`iou_matrix` of boxes given as ``(x, y, width, height)``."""
    return iou_matrix(corners(a), corners(b))


def iou_matrix_xyzwhd(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """:func:`iou_matrix_3d` of boxes given as ``(x, y, z, width, height, depth)``."""
    return iou_matrix_3d(corners(a, 3), corners(b, 3))


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
