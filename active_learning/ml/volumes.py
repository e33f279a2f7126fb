"""What a volumetric model sees of a case, in the contract's terms
(:mod:`active_learning.ml.interface`): a CT or MR series as one volume, and boxes with a depth.

Pure Python and numpy, never Django (``active_learning.services.case_inputs`` builds these from a
case's series). Coordinates are the series' voxels in the stack's order
(``annotations.series_stacks``: slices sorted along the slice normal, slice 0 first):

- ``x``, ``width``: columns; ``y``, ``height``: rows, as a 2D box on every slice it covers
  (the top-left corner of pixel ``(c, r)`` is ``(c, r)``);
- ``z``, ``depth``: slices, 0-based: a box with ``z = 3, depth = 4`` covers slices 3, 4, 5 and 6,
  that is the annotators' ``slice_first = 4 .. slice_last = 7`` (1-based, inclusive).
"""

from __future__ import annotations

from dataclasses import dataclass

from active_learning.ml.interface import Box, CaseInput, LabelledCase, PredictedBox


@dataclass(frozen=True)
class Box3D(Box):
    """A ground-truth box over slices ``z .. z + depth - 1`` (module docstring)."""

    z: float = 0.0
    depth: float = 1.0


@dataclass
class PredictedBox3D(PredictedBox):
    """A suggested box with its slice range: ``z`` the first slice (0-based, may be fractional
    before rounding to slices), ``depth`` in slices."""

    z: float = 0.0
    depth: float = 1.0


@dataclass
class VolumeInput(CaseInput):
    """A case as a volume: ``image`` ``(slices, rows, columns)`` in Hounsfield units (CT) or
    stored values after rescale, ``voxel_spacing_mm`` = (between slices, between rows, between
    columns)."""

    voxel_spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
    series_id: str = ""


@dataclass
class LabelledVolume(LabelledCase):
    """:class:`VolumeInput` with its accepted labels; ``boxes`` are :class:`Box3D`."""

    voxel_spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
    series_id: str = ""
