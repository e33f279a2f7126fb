"""The built-in model's configuration: everything needed to rebuild its networks from scratch
(no hub, no pretrained weights), saved beside the weights as ``config.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

MODALITIES = ("image", "text", "labs")


@dataclass
class BuiltinConfig:
    """Sizes and training settings. ``modalities`` picks what the findings head and the report
    decoder see: ("image",) is the image-only ablation of the evaluation."""

    finding_classes: tuple[str, ...] = (
        "nodule",
        "mass",
        "consolidation",
        "effusion",
        "pneumothorax",
        "cardiomegaly",
    )
    modalities: tuple[str, ...] = MODALITIES
    # Image: every input is resized to input_size x input_size (aspect ratio not kept; boxes are
    # mapped back per axis). Inputs smaller than min_image_size are refused.
    input_size: int = 256
    min_image_size: int = 32
    backbone_channels: tuple[int, ...] = (16, 32, 64, 128)
    fpn_channels: int = 48
    # Anchor sizes at the finest FPN level (stride 4), doubled at each of the 4 levels.
    anchor_sizes: tuple[int, ...] = (6, 12, 24)
    detection_score_threshold: float = 0.05
    detections_per_image: int = 12
    suggestion_score_threshold: float = 0.25  # boxes below this score are not suggested
    # Text: a byte-level BPE tokenizer trained on the project's own text.
    vocab_size: int = 2000
    text_max_tokens: int = 96
    text_hidden: int = 64
    text_layers: int = 2
    # Labs: LOINC codes learnt from the training data, at most max_labs.
    max_labs: int = 16
    lab_hidden: int = 32
    fusion_hidden: int = 128
    dropout: float = 0.2
    # Report decoder (GPT-2 architecture, cross-attending to the fused memory).
    report_hidden: int = 128
    report_layers: int = 2
    report_heads: int = 4
    report_max_tokens: int = 160
    max_memory_boxes: int = 6
    # Training.
    batch_size: int = 8
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    report_loss_weight: float = 1.0
    findings_loss_weight: float = 1.0
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {
            key: list(value) if isinstance(value, tuple) else value for key, value in data.items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuiltinConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown built-in model settings: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value for key, value in data.items()
        }
        config = cls(**values)
        bad = set(config.modalities) - set(MODALITIES)
        if bad or "image" not in config.modalities:
            raise ValueError(f"modalities must include 'image' and be among {MODALITIES}")
        return config
