"""Grad-CAM for the 3D CT detector: which voxels raise a finding's score, as a heat volume on the
stack's voxel grid (the slices as the viewer orders them).

- The score explained: for each class, the mean logit of the ``top_anchors`` highest-scoring
  anchors of that class over every FPN level of the whole resampled volume (the anchors of the
  top-scoring candidates: RetinaNet scores each anchor, and the best candidates after NMS come
  from the best anchors). The mean over a few anchors, not the single best, keeps the map from
  hanging on one anchor's receptive field.
- The layer: the deepest backbone layer the FPN reads (``feature_extractor.body.layer{n}``,
  stride 4 with the default two returned layers). It feeds every pyramid level, unlike an FPN
  output or a head layer (the heads are shared across levels, so a hook there sees only the
  last level).
- The map: MONAI's :class:`~monai.visualize.GradCAM` (its hooks and trilinear upsampling to the
  padded input) with the gradient kept per voxel, ReLU(sum_c grad_c * A_c) (HiResCAM, Draelos
  and Carin 2020), not averaged over the volume first: on a detector the averaged weights
  describe every nodule-like or bright region at once, and on the tests' synthetic CT classic
  Grad-CAM put less heat inside the nodule than far from it, the per-voxel form far more.
  MONAI's default post-processing maps (min, max) to (1, 0), so it is replaced by the identity
  and the map is scaled here.
- Back to the stack: the map on the isotropic ``(x, y, z)`` grid is cropped of its padding and
  interpolated linearly at each stack voxel's place in it (voxel ``i`` of spacing ``s`` lies at
  ``i * s`` mm in both grids, :mod:`~active_learning.ml.ct_detector.preprocess`), then scaled to
  [0, 1] by its maximum; zero everywhere when nothing raises the score.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from monai.visualize import GradCAM
from torch import nn

TOP_ANCHORS = 16


class ClassScores(nn.Module):
    """The network as a classifier for Grad-CAM: image ``(1, 1, x, y, z)`` -> ``(1, classes)``,
    per class the mean logit of its ``top_anchors`` best anchors over all levels."""

    def __init__(self, network: nn.Module, num_classes: int, top_anchors: int) -> None:
        super().__init__()
        self.network = network
        self.num_classes = num_classes
        self.top_anchors = top_anchors

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        maps = self.network(image)[self.network.cls_key]  # MONAI's RetinaNet
        batch = image.shape[0]
        # MONAI's head writes channel a * classes + c for anchor a and class c.
        per_class = torch.cat(
            [m.reshape(batch, -1, self.num_classes, *m.shape[2:]).transpose(1, 2).reshape(
                batch, self.num_classes, -1) for m in maps],
            dim=2,
        )  # fmt: skip
        k = min(self.top_anchors, per_class.shape[2])
        return per_class.topk(k, dim=2).values.mean(dim=2)


class ElementwiseGradCAM(GradCAM):
    """HiResCAM (Draelos and Carin, 2020): ReLU(sum_c grad_c * A_c) per voxel, the gradient not
    averaged over the volume first."""

    def compute_map(self, x, class_idx=None, retain_graph=False, layer_idx=-1, **kwargs):  # type: ignore[no-untyped-def, override]
        _, acti, grad = self.nn_module(x, class_idx=class_idx, retain_graph=retain_graph, **kwargs)
        return torch.relu((grad[layer_idx] * acti[layer_idx]).sum(1, keepdim=True))


def target_layer(returned_layers: Sequence[int]) -> str:
    """The deepest backbone layer the FPN reads (module docstring)."""
    return f"feature_extractor.body.layer{max(returned_layers)}"


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def grad_cam_volume(
    network: nn.Module,
    image: torch.Tensor,
    *,
    class_index: int,
    num_classes: int,
    returned_layers: Sequence[int],
    top_anchors: int = TOP_ANCHORS,
) -> np.ndarray:
    """Grad-CAM (per voxel, :class:`ElementwiseGradCAM`) of class ``class_index`` on a prepared
    image ``(1, x, y, z)`` (the isotropic grid), as float32 ``(x, y, z)`` >= 0, not yet
    scaled."""
    divisible = 2 ** (max(returned_layers) + 1)
    pad = [(-n) % divisible for n in image.shape[1:]]
    padded = torch.nn.functional.pad(image[None], (0, pad[2], 0, pad[1], 0, pad[0]))
    # A copy: MONAI's hooks stay on the module they are put on, and the version's network is
    # shared by every prediction of a loaded version.
    scores = ClassScores(copy.deepcopy(network), num_classes, top_anchors)
    cam = ElementwiseGradCAM(
        nn_module=scores,
        target_layers="network." + target_layer(returned_layers),
        postprocessing=_identity,
    )
    heat = cam(padded.requires_grad_(False), class_idx=class_index)
    x, y, z = image.shape[1:]
    return heat[0, 0, :x, :y, :z].detach().cpu().numpy().astype(np.float32)


def _linear_along(values: np.ndarray, axis: int, places: np.ndarray) -> np.ndarray:
    """``values`` interpolated linearly along ``axis`` at fractional indices ``places``
    (clamped to the axis)."""
    size = values.shape[axis]
    places = np.clip(places, 0.0, size - 1.0)
    low = np.floor(places).astype(np.int64)
    high = np.minimum(low + 1, size - 1)
    weight = (places - low).astype(np.float32)
    shape = [1] * values.ndim
    shape[axis] = len(places)
    weight = weight.reshape(shape)
    return (
        np.take(values, low, axis=axis) * (1 - weight) + np.take(values, high, axis=axis) * weight
    )


def to_stack_grid(
    heat_xyz: np.ndarray, factor: np.ndarray, shape: tuple[int, int, int]
) -> np.ndarray:
    """A map on the isotropic grid ``(x, y, z)`` at the stack's voxels: float32 ``(slices, rows,
    columns)`` = ``shape``, scaled to [0, 1] by its maximum (zeros when it has none)."""
    heat = np.ascontiguousarray(np.asarray(heat_xyz, dtype=np.float32).transpose(2, 1, 0))
    for axis, scale in ((0, factor[2]), (1, factor[1]), (2, factor[0])):
        heat = _linear_along(heat, axis, np.arange(shape[axis], dtype=np.float64) * float(scale))
    heat = np.nan_to_num(np.maximum(heat, 0.0))
    top = float(heat.max()) if heat.size else 0.0
    return (heat / top).astype(np.float32) if top > 0 else np.zeros(shape, dtype=np.float32)
