"""Tiny synthetic chest CT volumes and a tiny 3D detector configuration for the CT detector's
tests (issue 21, part 4): 40 x 40 pixels of 2.5 mm over 24 slices 2.5 mm apart (100 x 100 x
60 mm), resampled to 2.5 mm voxels, with one 20 mm nodule (8 voxels across) wholly inside."""

from __future__ import annotations

from active_learning.ml import synthetic_ct
from active_learning.ml.ct_detector import CTDetectorConfig

SIZE, SLICES, FOV, SPACING = 40, 24, 100.0, 2.5
NODULE_MM = 20.0
TINY_CT = CTDetectorConfig(
    spacing_mm=SPACING,
    patch_size=(32, 32, 16),
    inference_roi=(32, 32, 16),
    backbone_channels=(8, 16, 32, 64),
    fpn_channels=16,
    batch_size=2,
    train_steps=70,
    warmup_steps=5,
    learning_rate=3e-3,
)


def series(seed: int) -> synthetic_ct.SyntheticSeries:
    """The tiny series of ``seed`` with one large nodule (it may stick out of the volume)."""
    return synthetic_ct.generate_series(
        seed, SLICES, SIZE, slice_spacing_mm=SPACING, field_of_view_mm=FOV,
        nodule_diameters_mm=(NODULE_MM,),
    )  # fmt: skip


def whole_nodule_series(count: int, start: int) -> list[synthetic_ct.SyntheticSeries]:
    """``count`` tiny series from seed ``start`` on whose nodule lies wholly inside."""
    found, seed = [], start
    while len(found) < count:
        candidate = series(seed)
        (box,) = synthetic_ct.nodule_boxes(candidate)
        inside = (
            min(box.x, box.y, box.z) >= 0
            and max(box.x + box.width, box.y + box.height) <= SIZE
            and box.z + box.depth <= SLICES
        )
        if inside:
            found.append(candidate)
        seed += 1
    return found
