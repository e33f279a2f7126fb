"""A 3D lesion box in a regular series: from voxel coordinates to patient coordinates (mm).

Pure (numpy; no models). A box is drawn in image pixels on one slice and extended over a range
of slices; the series' slices are in position order along the slice normal
(:mod:`annotations.dicom.series_geometry`). Conventions:

- pixels: ``x`` (columns) to the right, ``y`` (rows) down, the image's top-left corner at
  (0, 0), so pixel ``(c, r)`` covers ``[c, c + 1) x [r, r + 1)`` and its centre is at
  ``(c + 0.5, r + 0.5)``;
- slices: 1-based in position order; slice ``k`` covers half a slice spacing either side of
  its ImagePositionPatient along the normal;
- patient coordinates: DICOM's patient system (LPS, mm). ImagePositionPatient is the centre of
  the first pixel; a row runs along the first three ImageOrientationPatient cosines (column
  spacing ``PixelSpacing[1]``), a column along the last three (row spacing ``PixelSpacing[0]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PatientBox", "VolumeGeometry", "patient_box"]


@dataclass(frozen=True)
class VolumeGeometry:
    """A regular series: each slice's ImagePositionPatient in position order (mm), its
    ImageOrientationPatient (six cosines), PixelSpacing (row, column; mm) and slice spacing."""

    positions: Sequence[Sequence[float]]
    orientation: Sequence[float]
    pixel_spacing: tuple[float, float]
    slice_spacing: float


@dataclass(frozen=True)
class PatientBox:
    """The box in patient coordinates (mm, LPS): the smallest axis-aligned box holding its eight
    corners (``minimum``, ``maximum``), its ``center`` and ``size`` (the extent along x, y, z)."""

    minimum: tuple[float, float, float]
    maximum: tuple[float, float, float]

    @property
    def center(self) -> tuple[float, float, float]:
        return tuple(round((a + b) / 2, 3) for a, b in zip(self.minimum, self.maximum, strict=True))  # type: ignore[return-value]

    @property
    def size(self) -> tuple[float, float, float]:
        return tuple(round(b - a, 3) for a, b in zip(self.minimum, self.maximum, strict=True))  # type: ignore[return-value]

    def as_json(self) -> dict[str, list[float]]:
        return {
            "min": list(self.minimum),
            "max": list(self.maximum),
            "center": list(self.center),
            "size": list(self.size),
        }


def patient_box(
    geometry: VolumeGeometry,
    *,
    x: float,
    y: float,
    width: float,
    height: float,
    slice_first: int,
    slice_last: int,
) -> PatientBox:
    """The box ``x, y, width, height`` (pixels) over slices ``slice_first..slice_last`` (1-based,
    inclusive) in patient coordinates. In: a regular series' geometry. Out: :class:`PatientBox`,
    mm rounded to 0.001."""
    cosines = np.asarray(geometry.orientation, dtype=np.float64)
    along_row, along_column = cosines[:3], cosines[3:]
    normal = np.cross(along_row, along_column)
    row_spacing, column_spacing = geometry.pixel_spacing
    first = np.asarray(geometry.positions[slice_first - 1], dtype=np.float64)
    last = np.asarray(geometry.positions[slice_last - 1], dtype=np.float64)
    half = geometry.slice_spacing / 2
    # The box's faces across the slices: half a spacing before the first slice's centre and
    # after the last one's (the positions run along the normal, so this is "before" and "after").
    depth_ends = [first - half * normal, last + half * normal]
    corners = [
        end + (u - 0.5) * column_spacing * along_row + (v - 0.5) * row_spacing * along_column
        for end in depth_ends
        for u in (x, x + width)
        for v in (y, y + height)
    ]
    points = np.stack(corners)
    minimum = tuple(round(float(c), 3) for c in points.min(axis=0))
    maximum = tuple(round(float(c), 3) for c in points.max(axis=0))
    return PatientBox(minimum, maximum)  # type: ignore[arg-type]
