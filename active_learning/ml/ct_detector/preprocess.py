"""From a case's volume to the detector's input and back, and the training patches.

- :func:`prepare`: ``(slices, rows, columns)`` HU -> MONAI's ``(1, x, y, z)`` tensor, resampled
  to isotropic ``spacing_mm`` voxels (``monai.transforms.Spacing`` on a MetaTensor whose affine
  carries the voxel spacing) and windowed to [0, 1] (``ScaleIntensityRange``). The volume keeps
  the stack's axes (slices already sorted along the normal by the series stack): boxes go back to
  the stack's voxels, where annotators' 3D boxes live, so no reorientation is needed (or undone).
- :func:`to_model_boxes` / :func:`to_volume_boxes`: boxes between the stack's voxels
  (:mod:`active_learning.ml.volumes`) and the resampled volume's ``(x1, y1, z1, x2, y2, z2)``
  (MONAI's StandardMode). A voxel ``i`` of spacing ``s`` is centred at ``i * s`` mm in both
  grids, so an edge at ``e`` old voxels lies at ``(e - 0.5) * s_old / s_new + 0.5`` new ones.
- :func:`training_patch`: one patch of ``patch_size`` from a prepared volume
  (``RandCropBoxByPosNegLabeld``: a lesion in half of the patches), with MONAI's box-aware flips
  and zoom and intensity jitter, seeded by the caller's generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from monai.apps.detection.transforms.dictionary import (
    ClipBoxToImaged,
    RandCropBoxByPosNegLabeld,
    RandFlipBoxd,
    RandZoomBoxd,
)
from monai.data import MetaTensor
from monai.transforms import (
    Compose,
    RandAdjustContrastd,
    RandScaleIntensityd,
    RandShiftIntensityd,
    ScaleIntensityRange,
    Spacing,
    SpatialPad,
)

from active_learning.ml.ct_detector.config import CTDetectorConfig
from active_learning.ml.interface import ModelInputError
from active_learning.ml.volumes import Box3D, VolumeInput

IMAGE, BOX, LABEL = "image", "box", "label"


@dataclass
class PreparedVolume:
    """A volume as the detector reads it: ``image`` ``(1, x, y, z)`` float32 in [0, 1];
    ``factor`` new voxels per old voxel along x, y, z; ``shape`` the stack's ``(slices, rows,
    columns)``."""

    image: torch.Tensor
    factor: np.ndarray
    shape: tuple[int, int, int]


def prepare(case: VolumeInput, config: CTDetectorConfig) -> PreparedVolume:
    """The case's volume resampled and windowed (module docstring); ModelInputError names a
    case that is not a volume the detector can read."""
    volume = np.asarray(case.image)
    spacing = getattr(case, "voxel_spacing_mm", None)
    if volume.ndim != 3 or spacing is None:
        raise ModelInputError(
            f"case {case.case_id}: the CT detector reads a volume (slices, rows, columns) with "
            f"its voxel spacing, got an image of shape {volume.shape}"
        )
    if min(volume.shape) < 1 or not all(float(s) > 0 for s in spacing):
        raise ModelInputError(f"case {case.case_id}: empty volume or spacing {spacing}")
    slice_mm, row_mm, column_mm = (float(s) for s in spacing)
    old = np.array([column_mm, row_mm, slice_mm])
    image = torch.as_tensor(np.ascontiguousarray(volume.transpose(2, 1, 0)), dtype=torch.float32)
    affine = torch.diag(torch.tensor([*old, 1.0], dtype=torch.float64))
    resampled = Spacing(pixdim=(config.spacing_mm,) * 3, mode="bilinear")(
        MetaTensor(image[None], affine=affine)
    )
    low, high = config.hu_window
    windowed = ScaleIntensityRange(a_min=low, a_max=high, b_min=0.0, b_max=1.0, clip=True)(
        resampled
    )
    tensor = _plain(windowed).float().contiguous()
    if min(tensor.shape[1:]) < config.min_volume_voxels:
        raise ModelInputError(
            f"case {case.case_id}: the volume is {list(tensor.shape[1:])} voxels of "
            f"{config.spacing_mm} mm, under {config.min_volume_voxels} along an axis"
        )
    return PreparedVolume(tensor, old / config.spacing_mm, tuple(volume.shape))  # type: ignore[arg-type]


def _plain(value: object) -> torch.Tensor:
    """A MONAI MetaTensor as a plain tensor (the detector needs no metadata; a MetaTensor
    carries it through every operation)."""
    return value.as_tensor() if isinstance(value, MetaTensor) else torch.as_tensor(value)


def to_model_boxes(boxes: Sequence[Box3D], factor: np.ndarray) -> np.ndarray:
    """Stack voxel boxes as ``(n, 6)`` float32 corners in the resampled volume."""
    if not boxes:
        return np.zeros((0, 6), dtype=np.float32)
    low = np.array([[b.x, b.y, b.z] for b in boxes], dtype=np.float64)
    high = low + np.array([[b.width, b.height, b.depth] for b in boxes], dtype=np.float64)
    scaled = [(edge - 0.5) * factor + 0.5 for edge in (low, high)]
    return np.concatenate(scaled, axis=1).astype(np.float32)


def to_volume_boxes(corners: np.ndarray, factor: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Resampled corners ``(n, 6)`` back to the stack's voxels, clipped to the volume:
    ``(n, 6)`` as ``x, y, z, width, height, depth``."""
    corners = np.asarray(corners, dtype=np.float64).reshape(-1, 6)
    low = (corners[:, :3] - 0.5) / factor + 0.5
    high = (corners[:, 3:] - 0.5) / factor + 0.5
    extent = np.array([shape[2], shape[1], shape[0]], dtype=np.float64)  # x, y, z
    low, high = np.clip(low, 0, extent), np.clip(high, 0, extent)
    return np.concatenate([low, high - low], axis=1)


def _augmentation(config: CTDetectorConfig) -> Compose:
    keys: dict[str, Any] = {"image_keys": IMAGE, "box_keys": BOX, "box_ref_image_keys": IMAGE}
    flips = [
        RandFlipBoxd(**keys, prob=config.flip_probability, spatial_axis=axis) for axis in range(3)
    ]
    low_gamma, high_gamma = config.gamma_range
    return Compose(
        [
            *flips,
            RandZoomBoxd(
                **keys,
                prob=0.5,
                min_zoom=1 - config.scale_jitter,
                max_zoom=1 + config.scale_jitter,
                keep_size=True,
                padding_mode="constant",
            ),
            ClipBoxToImaged(box_keys=BOX, label_keys=LABEL, box_ref_image_keys=IMAGE,
                            remove_empty=True),
            RandScaleIntensityd(keys=IMAGE, factors=config.contrast_jitter, prob=1.0),
            RandShiftIntensityd(keys=IMAGE, offsets=config.brightness_jitter, prob=1.0),
            RandAdjustContrastd(keys=IMAGE, gamma=(low_gamma, high_gamma), prob=1.0),
        ]
    )  # fmt: skip


class PatchSampler:
    """Training patches from prepared volumes: pad to the patch size (at the far end, so box
    coordinates stay), crop (a lesion in half of the patches when the volume has one), augment.
    MONAI's random transforms draw from generators seeded by ``seed``."""

    def __init__(self, config: CTDetectorConfig, seed: int) -> None:
        self.config = config
        self.rng = np.random.default_rng(seed)
        self.crop = RandCropBoxByPosNegLabeld(
            image_keys=IMAGE,
            box_keys=BOX,
            label_keys=LABEL,
            spatial_size=list(config.patch_size),
            whole_box=True,
            num_samples=1,
            pos=1,
            neg=1,
        )
        self.crop.set_random_state(seed=seed)
        self.augment = _augmentation(config).set_random_state(seed=seed + 1)
        self.pad = SpatialPad(spatial_size=list(config.patch_size), method="end")

    def patch(
        self, volume: PreparedVolume, boxes: np.ndarray, labels: np.ndarray
    ) -> dict[str, torch.Tensor]:
        """One patch ``{"image": (1, *patch_size), "box": (n, 6), "label": (n,)}``."""
        image = _plain(self.pad(volume.image))
        item: Any = {
            IMAGE: image,
            BOX: torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 6),
            LABEL: torch.as_tensor(labels, dtype=torch.long),
        }
        if len(boxes):
            item = self.crop(item)[0]
        else:  # nothing to centre on: a random window
            size = np.array(self.config.patch_size)
            start = [int(self.rng.integers(0, n - s + 1)) for n, s in zip(image.shape[1:], size,
                                                                          strict=True)]  # fmt: skip
            window = tuple(slice(a, a + s) for a, s in zip(start, size, strict=True))
            item[IMAGE] = image[(slice(None), *window)]
        if self.config.augment:
            item = self.augment(item)
        return {
            IMAGE: _plain(item[IMAGE]).float().clamp(0.0, 1.0),
            BOX: _plain(item[BOX]).float().reshape(-1, 6),
            LABEL: _plain(item[LABEL]).long().reshape(-1),
        }
