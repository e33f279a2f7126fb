"""Training augmentation of the built-in model, with the boxes kept consistent.

Two stages, both seeded by the caller's generator:

- :func:`flip_case` (on a :class:`LabelledCase`, before collating): mirror the image left-right,
  mirror its boxes, and swap the laterality words ("left" <-> "right", "L" <-> "R" in "L base"
  style abbreviations are left alone: too ambiguous) in the indication, history and report, so a
  "right pleural effusion" stays on the side the image shows.
- :func:`jitter_batch` (on the collated model images, ``(B, 1, S, S)`` in [0, 1], and their
  detector targets in model pixels): a random scale of ``1 +- scale_jitter`` about the centre and a
  shift of up to ``shift_fraction * S`` pixels (one affine warp, zero padding), boxes transformed
  the same way and clipped to the image (a box left with under 40 % of its area, or under 2 px a
  side, is dropped); then contrast, brightness and gamma jitter of the intensities.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import torch
import torch.nn.functional as F

from active_learning.ml.interface import Box, LabelledCase

_LATERALITY = re.compile(r"\b(left|right|Left|Right|LEFT|RIGHT)\b")
_SWAP = {
    "left": "right",
    "right": "left",
    "Left": "Right",
    "Right": "Left",
    "LEFT": "RIGHT",
    "RIGHT": "LEFT",
}
MIN_KEPT_AREA = 0.4


def swap_laterality(text: str) -> str:
    """``text`` with every whole word left/right (any of three casings) swapped."""
    return _LATERALITY.sub(lambda m: _SWAP[m.group(1)], text)


def flip_case(case: LabelledCase) -> LabelledCase:
    """The case mirrored left-right: image columns reversed, boxes mirrored
    (``x -> columns - x - width``), laterality words swapped in the text and the report."""
    image = np.ascontiguousarray(np.asarray(case.image)[..., ::-1])
    columns = float(image.shape[-1])
    boxes = tuple(
        Box(b.finding, columns - b.x - b.width, b.y, b.width, b.height) for b in case.boxes
    )
    return dataclasses.replace(
        case,
        image=image,
        indication=swap_laterality(case.indication),
        history=swap_laterality(case.history),
        boxes=boxes,
        report={k: swap_laterality(v) for k, v in case.report.items()},
    )


def transform_boxes(
    boxes: torch.Tensor, scale: float, shift_x: float, shift_y: float, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes ``(N, 4)`` x1 y1 x2 y2 (model pixels) under ``p -> c + scale * (p - c) + shift``
    (``c`` the image centre), clipped to ``[0, size]``; returns the boxes kept and their mask
    (at least :data:`MIN_KEPT_AREA` of the area and 2 px a side left inside the image)."""
    if boxes.numel() == 0:
        return boxes.reshape(-1, 4), torch.zeros(0, dtype=torch.bool)
    centre = size / 2.0
    moved = boxes.clone()
    moved[:, [0, 2]] = centre + scale * (boxes[:, [0, 2]] - centre) + shift_x
    moved[:, [1, 3]] = centre + scale * (boxes[:, [1, 3]] - centre) + shift_y
    area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
    clipped = moved.clamp(0.0, float(size))
    inside = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = (
        (inside >= MIN_KEPT_AREA * area)
        & (clipped[:, 2] - clipped[:, 0] >= 2)
        & (clipped[:, 3] - clipped[:, 1] >= 2)
    )
    return clipped[keep], keep


def jitter_batch(
    images: torch.Tensor,
    targets: list[dict[str, torch.Tensor]],
    rng: np.random.Generator,
    *,
    scale_jitter: float,
    shift_fraction: float,
    contrast_jitter: float,
    brightness_jitter: float,
    gamma_range: tuple[float, float],
) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """Images and targets of a batch with the geometric and intensity jitter of the module
    docstring (new tensors; the inputs are not changed)."""
    batch, _, size, _ = images.shape
    out_images = []
    out_targets = []
    for i in range(batch):
        scale = float(rng.uniform(1 - scale_jitter, 1 + scale_jitter))
        shift_x, shift_y = (float(v) for v in rng.uniform(-1, 1, 2) * shift_fraction * size)
        # affine_grid maps output coordinates (normalised to [-1, 1]) to input ones, so the
        # inverse of the box transform: p_in = (p_out - shift) / scale about the centre.
        theta = torch.tensor(
            [[1 / scale, 0.0, -2 * shift_x / size / scale],
             [0.0, 1 / scale, -2 * shift_y / size / scale]],
            dtype=images.dtype, device=images.device,
        )  # fmt: skip
        grid = F.affine_grid(theta[None], [1, 1, size, size], align_corners=False)
        warped = F.grid_sample(images[i : i + 1], grid, align_corners=False, padding_mode="zeros")
        contrast = float(rng.uniform(1 - contrast_jitter, 1 + contrast_jitter))
        brightness = float(rng.uniform(-brightness_jitter, brightness_jitter))
        gamma = float(np.exp(rng.uniform(np.log(gamma_range[0]), np.log(gamma_range[1]))))
        mean = warped.mean()
        adjusted = ((warped - mean) * contrast + mean + brightness).clamp(0.0, 1.0) ** gamma
        out_images.append(adjusted)
        boxes, keep = transform_boxes(targets[i]["boxes"], scale, shift_x, shift_y, size)
        out_targets.append({"boxes": boxes, "labels": targets[i]["labels"][keep]})
    return torch.cat(out_images), out_targets
