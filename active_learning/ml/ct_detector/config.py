"""The 3D CT detector's configuration: everything needed to rebuild its network from scratch (no
hub, no pretrained weights), saved beside the weights as ``config.json``.

Sizes are voxels of the resampled volume (``spacing_mm`` on every axis) in MONAI's axis order
``(x, y, z)`` = (columns, rows, slices)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from active_learning.ml.checkpoints import json_lists, json_tuples


@dataclass
class CTDetectorConfig:
    """Sizes and training settings of :class:`~active_learning.ml.ct_detector.model.CTDetector`.
    The names it shares with the built-in model's configuration (the operating points, the
    training steps and learning-rate schedule, focal loss, augmentation strengths) mean the same,
    so a project's model settings apply to either kind."""

    finding_classes: tuple[str, ...] = ("nodule",)
    # Resampling: every volume is resampled to isotropic voxels of this size (MONAI Spacing) and
    # windowed to [0, 1] over hu_window (MONAI ScaleIntensityRange; lung to bone).
    spacing_mm: float = 2.0
    hu_window: tuple[float, float] = (-1000.0, 500.0)
    min_volume_voxels: int = 8
    # Training patches (MONAI RandCropBoxByPosNegLabeld: half hold a lesion) and the sliding
    # window of inference; both divisible by the network's stride (8). Sized for CPU work:
    # a step of two 32^3 patches takes about 2 s on two busy CPU cores.
    patch_size: tuple[int, int, int] = (32, 32, 32)
    inference_roi: tuple[int, int, int] = (48, 48, 40)
    inference_overlap: float = 0.25
    # Network: MONAI's 3D ResNet (basic blocks) under MONAI's RetinaNet with an FPN on layers 1
    # and 2 (strides 2, 4 and 8 with the extra pooled level).
    backbone_channels: tuple[int, ...] = (8, 16, 32, 64)
    backbone_layers: tuple[int, ...] = (1, 1, 1, 1)
    returned_layers: tuple[int, ...] = (1, 2)
    # The FPN's and heads' width (a multiple of 8: the heads' GroupNorm has 8 groups).
    fpn_channels: int = 16
    # Anchor shapes (x, y, z voxels) at the finest level, doubled at each coarser one (MONAI's
    # AnchorGeneratorWithAnchorShape): 3-28 voxels, 6-56 mm at 2 mm, LIDC's 3-30 mm nodules.
    anchor_shapes: tuple[tuple[int, int, int], ...] = ((3, 3, 3), (5, 5, 5), (7, 7, 7))
    # ATSS matching (MONAI's ATSSMatcher): the candidates per level closest to a box's centre.
    atss_candidates: int = 4
    # Candidates: every box after NMS at or above this score (low scores included: they feed
    # the metrics, FROC and the acquisition signal, never the display).
    detection_score_threshold: float = 0.02
    nms_threshold: float = 0.22
    detections_per_volume: int = 32
    # Only used before operating points are fitted.
    suggestion_score_threshold: float = 0.25
    # Operating points, fitted on the validation labels by the built-in model's rule with
    # candidates matched by 3D IoU at froc_iou; min_class_ap is the floor of AP at that IoU
    # (active_learning.ml.ct_detector.operating_points).
    box_precision_target: float = 0.7
    min_validation_positives: int = 5
    min_class_ap: float = 0.1
    # FROC and AP matching: 3D IoU at least this (MONAI's LUNA16 detection evaluates at 0.1).
    froc_iou: float = 0.1
    # Detector recipe: sigmoid focal loss over all anchors, normalised by positive anchors;
    # GIoU on decoded boxes.
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    # Training in optimisation steps, linear warm-up then cosine decay to final_lr_fraction
    # of the peak; cases reshuffled in a buffer each pass (the built-in model's schedule).
    batch_size: int = 2
    train_steps: int = 200
    warmup_steps: int = 20
    final_lr_fraction: float = 0.02
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    shuffle_buffer: int = 16
    # Augmentation (training only): flips along each axis, +-scale (MONAI RandZoomBoxd), the
    # random crop as shift, contrast/brightness and gamma jitter.
    augment: bool = True
    flip_probability: float = 0.5
    scale_jitter: float = 0.1
    contrast_jitter: float = 0.2
    brightness_jitter: float = 0.08
    gamma_range: tuple[float, float] = (0.7, 1.4)
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {key: json_lists(value) for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CTDetectorConfig:
        """The configuration from ``to_dict``'s JSON; ValueError names an unknown or invalid
        setting."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown CT detector settings: {', '.join(sorted(unknown))}")
        config = cls(**{key: json_tuples(value) for key, value in data.items()})
        stride = 2 ** (max(config.returned_layers) + 1)
        for name in ("patch_size", "inference_roi"):
            size = getattr(config, name)
            if len(size) != 3 or any(s % stride or s <= 0 for s in size):
                raise ValueError(f"{name} must be three positive multiples of {stride}")
        if config.fpn_channels <= 0 or config.fpn_channels % 8:
            raise ValueError("fpn_channels must be a positive multiple of 8")
        if len(config.backbone_channels) != 4 or len(config.backbone_layers) != 4:
            raise ValueError("backbone_channels and backbone_layers take four stages each")
        if not 0.5 <= config.spacing_mm <= 10:
            raise ValueError("spacing_mm must lie in [0.5, 10]")
        if config.hu_window[0] >= config.hu_window[1]:
            raise ValueError("hu_window must go from low to high")
        if config.train_steps < 0 or config.warmup_steps < 0:
            raise ValueError("train_steps and warmup_steps must not be negative")
        if not 0 < config.box_precision_target <= 1:
            raise ValueError("box_precision_target must be in (0, 1]")
        if not 0 <= config.inference_overlap < 1:
            raise ValueError("inference_overlap must be in [0, 1)")
        return config
