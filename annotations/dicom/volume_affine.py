"""A series' voxel grid as a NIfTI affine (pure numpy; no models).

The volume stays on its acquisition grid: voxel ``(i, j, k)`` is column ``i``, row ``j`` of the
``k``-th slice in position order along the slice normal (0-based), the order ITK, MONAI and
dcm2niix use, so ``data[i, j, k] == slice_k.pixel_array[j, i]``. DICOM places the centre of
pixel (column ``i``, row ``j``) of slice ``k`` at::

    ImagePositionPatient_k + i * PixelSpacing[1] * row_cosines
                           + j * PixelSpacing[0] * column_cosines

in patient coordinates (LPS: x to the patient's left, y to the back, z to the head), with
``row_cosines`` the first three ImageOrientationPatient values (the direction along a row, in
which the column index grows) and ``column_cosines`` the last three. The slices of a regular
series are equally spaced, so ``ImagePositionPatient_k = ImagePositionPatient_0 + k * step``.

NIfTI's world is RAS (x to the right, y to the front), so the affine written is
``diag(-1, -1, 1, 1) @ affine_lps``; 3D Slicer and ITK-SNAP read it and place the volume where
the DICOM series lies."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["LPS_TO_RAS", "affine_lps", "lps_to_ras_points"]

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def affine_lps(
    *,
    first_position: Sequence[float],
    orientation: Sequence[float],
    pixel_spacing: Sequence[float],
    step: Sequence[float],
) -> np.ndarray:
    """The (4, 4) voxel (column, row, slice) -> patient (LPS, mm) affine. In: the first slice's
    ImagePositionPatient, ImageOrientationPatient (6 cosines), PixelSpacing (between rows,
    between columns; mm) and ``step``, the vector (mm) from one slice's position to the next
    one's (for a series of one slice, its normal times the slice thickness)."""
    cosines = np.asarray(orientation, dtype=np.float64)
    row_spacing, column_spacing = (float(v) for v in pixel_spacing)
    affine = np.eye(4)
    affine[:3, 0] = cosines[:3] * column_spacing
    affine[:3, 1] = cosines[3:6] * row_spacing
    affine[:3, 2] = np.asarray(step, dtype=np.float64)
    affine[:3, 3] = np.asarray(first_position, dtype=np.float64)
    return affine


def lps_to_ras_points(points: np.ndarray) -> np.ndarray:
    """(N, 3) patient (LPS) points as RAS: x and y change sign."""
    return np.asarray(points, dtype=np.float64) * np.array([-1.0, -1.0, 1.0])
