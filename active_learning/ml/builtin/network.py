"""The built-in model's networks, built from its config (no pretrained weights, no hub).

- Detector: MONAI's RetinaNet (``monai.apps.detection``) on a small MONAI ResNet with an FPN
  (levels at strides 4, 8, 16 and a max-pooled 32), anchors fitted to the box priors
  (:mod:`active_learning.ml.builtin.anchors`) laid out with box x along the image's columns
  (``config.anchor_indexing``; MONAI's default puts it along the rows), ATSS matching, sigmoid
  focal loss over every anchor normalised by the number of positive anchors (no sampling of
  negatives: with a few dozen sampled anchors the rest stay uncalibrated and scores bunch
  together), and a GIoU loss on the decoded boxes of the positive anchors.
- Image features for the findings: the FPN's stride-16 and stride-32 maps, average- and
  max-pooled (the same backbone the detector trains, so the boxes and findings share features).
- Clinical text: a small BERT encoder (``transformers.BertModel`` from a ``BertConfig``) on the
  project's own tokenizer, mean-pooled over tokens.
- Labs: a two-layer MLP on the normalised values and presence flags.
- Fusion: concatenation of the modalities in ``config.modalities`` -> MLP with dropout -> one
  logit per finding class; the hidden layer is the case embedding.
- Report: a GPT-2 decoder (``transformers.GPT2LMHeadModel``) that cross-attends to a memory of
  the fused embedding, one token per finding class (its probability times a "present" vector),
  one token per box (class, position, size, score) and the clinical text's token states.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from monai.apps.detection.networks.retinanet_detector import RetinaNetDetector
from monai.apps.detection.networks.retinanet_network import RetinaNet
from monai.apps.detection.utils.anchor_utils import AnchorGeneratorWithAnchorShape
from monai.apps.detection.utils.box_selector import BoxSelector
from monai.data.box_utils import clip_boxes_to_image
from monai.networks.blocks.backbone_fpn_utils import BackboneWithFPN
from monai.networks.blocks.feature_pyramid_network import LastLevelMaxPool
from monai.networks.nets import resnet
from torch import nn
from torchvision.ops import batched_nms, generalized_box_iou_loss, sigmoid_focal_loss
from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel

from active_learning.ml.builtin.anchors import fit_anchor_shapes
from active_learning.ml.builtin.config import BuiltinConfig

GRADCAM_LAYER = "network.detector.network.feature_extractor.body.layer3"


class FocalLossPerPositive(nn.Module):
    """Sigmoid focal loss (torchvision's) summed over every anchor and class, divided by the
    number of positive anchors (at least 1): RetinaNet's normalisation, so an image full of easy
    negatives does not drown its few lesions. ``targets`` are one-hot ``(anchors, classes)``."""

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0) -> None:
        super().__init__()
        self.alpha, self.gamma = alpha, gamma

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        positives = (targets.amax(dim=1) > 0).sum().clamp(min=1).to(logits.dtype)
        total = sigmoid_focal_loss(
            logits.float(), targets.float(), alpha=self.alpha, gamma=self.gamma, reduction="sum"
        )
        return total / positives


class GIoULoss(nn.Module):
    """Mean generalized-IoU loss of decoded boxes ``(N, 4)`` x1 y1 x2 y2 against their targets."""

    def forward(self, boxes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if boxes.numel() == 0:
            return boxes.sum() * 0.0
        return generalized_box_iou_loss(boxes.float(), targets.float(), reduction="mean")


class FastBoxSelector(BoxSelector):
    """MONAI's box selection (per level: score threshold, top-k; per image: class-wise NMS, the
    best ``detections_per_img``) with torchvision's compiled ``batched_nms`` in place of MONAI's
    loop in Python, which took about 80 ms of a 2D image's postprocessing on 2 CPU cores."""

    def select_boxes_per_image(
        self,
        boxes_list: list[torch.Tensor],
        logits_list: list[torch.Tensor],
        spatial_size: list[int] | tuple[int],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if len(boxes_list) != len(logits_list) or len(spatial_size) != 2:
            return super().select_boxes_per_image(boxes_list, logits_list, spatial_size)
        boxes, scores, labels = [], [], []
        for level_boxes, level_logits in zip(boxes_list, logits_list, strict=True):
            index, level_scores, level_labels = self.select_top_score_idx_per_level(level_logits)
            kept_boxes, keep = clip_boxes_to_image(
                level_boxes[index], spatial_size, remove_empty=True
            )
            boxes.append(torch.as_tensor(kept_boxes))
            scores.append(level_scores[keep])
            labels.append(level_labels[keep])
        all_boxes, all_scores = torch.cat(boxes), torch.cat(scores)
        all_labels = torch.cat(labels)
        keep = batched_nms(all_boxes.float(), all_scores.float(), all_labels, self.nms_thresh)
        keep = keep[: self.detections_per_img]
        box_dtype, score_dtype = boxes_list[0].dtype, logits_list[0].dtype
        return all_boxes[keep].to(box_dtype), all_scores[keep].to(score_dtype), all_labels[keep]


def anchor_shapes(config: BuiltinConfig) -> tuple[tuple[int, int], ...]:
    """The config's anchor shapes, or ones fitted to the box priors at its input size."""
    if config.anchor_shapes:
        return tuple((int(w), int(h)) for w, h in config.anchor_shapes)
    return fit_anchor_shapes(
        config.input_size, per_level=config.anchors_per_level, classes=config.finding_classes
    )


def build_detector(config: BuiltinConfig) -> RetinaNetDetector:
    """MONAI RetinaNet with the recipe of the module docstring; ``config.anchor_shapes`` must
    be set (see :func:`anchor_shapes`)."""
    shapes = anchor_shapes(config)
    channels = list(config.backbone_channels)
    backbone = resnet.ResNet(
        block="basic",
        layers=[1, 1, 1, 1],
        block_inplanes=channels,
        spatial_dims=2,
        n_input_channels=1,
        conv1_t_stride=2,
        conv1_t_size=7,
    )
    extractor = BackboneWithFPN(
        backbone,
        return_layers={"layer1": "0", "layer2": "1", "layer3": "2"},
        in_channels_list=channels[:3],
        out_channels=config.fpn_channels,
        spatial_dims=2,
        extra_blocks=LastLevelMaxPool(2),
    )
    anchors = AnchorGeneratorWithAnchorShape(
        feature_map_scales=(1, 2, 4, 8),
        base_anchor_shapes=shapes,
        # Box x along the columns, as MedLoop's boxes are given (config.anchor_indexing).
        indexing=config.anchor_indexing,
    )
    classes = len(config.finding_classes)
    retina = RetinaNet(
        spatial_dims=2,
        num_classes=classes,
        num_anchors=len(shapes),
        feature_extractor=extractor,
        size_divisible=32,
    )
    detector = RetinaNetDetector(
        retina, anchors, spatial_dims=2, num_classes=classes, size_divisible=32
    )
    detector.set_atss_matcher(num_candidates=4, center_in_gt=False)
    # fg_bg_sampler stays None: every anchor (but those the matcher leaves between thresholds)
    # enters the focal loss.
    detector.set_cls_loss(FocalLossPerPositive(config.focal_alpha, config.focal_gamma))
    if config.box_loss == "giou":
        detector.set_box_regression_loss(GIoULoss(), encode_gt=False, decode_pred=True)
    else:
        detector.set_box_regression_loss(
            nn.SmoothL1Loss(beta=1.0 / 9, reduction="mean"), encode_gt=True, decode_pred=False
        )
    detector.set_target_keys(box_key="boxes", label_key="labels")
    detector.set_box_selector_parameters(
        score_thresh=config.detection_score_threshold,
        topk_candidates_per_level=300,
        nms_thresh=0.3,
        detections_per_img=config.detections_per_image,
    )
    selector = detector.box_selector
    detector.box_selector = FastBoxSelector(
        apply_sigmoid=selector.apply_sigmoid,
        score_thresh=selector.score_thresh,
        topk_candidates_per_level=selector.topk_candidates_per_level,
        nms_thresh=selector.nms_thresh,
        detections_per_img=selector.detections_per_img,
    )
    return detector


class MultimodalNetwork(nn.Module):
    """All trainable parts of the built-in model."""

    def __init__(
        self, config: BuiltinConfig, *, vocab_size: int, n_labs: int, special: dict[str, int]
    ) -> None:
        super().__init__()
        self.config = config
        self.n_labs = n_labs
        classes = len(config.finding_classes)
        self.detector = build_detector(config)
        self._features: dict[str, torch.Tensor] | None = None
        self.feature_extractor.register_forward_hook(self._keep_features)
        image_dim = 4 * config.fpn_channels
        self.image_proj = nn.Sequential(nn.Linear(image_dim, config.fusion_hidden), nn.ReLU())
        fused_in = config.fusion_hidden
        self.text_encoder: BertModel | None = None
        if "text" in config.modalities:
            self.text_encoder = BertModel(
                BertConfig(
                    vocab_size=vocab_size,
                    hidden_size=config.text_hidden,
                    num_hidden_layers=config.text_layers,
                    num_attention_heads=2,
                    intermediate_size=2 * config.text_hidden,
                    max_position_embeddings=config.text_max_tokens + 2,
                    type_vocab_size=1,
                    pad_token_id=special["pad"],
                    hidden_dropout_prob=0.1,
                    attention_probs_dropout_prob=0.1,
                ),
                add_pooling_layer=False,
            )
            fused_in += config.text_hidden
        self.lab_mlp: nn.Module | None = None
        if "labs" in config.modalities and n_labs:
            self.lab_mlp = nn.Sequential(
                nn.Linear(2 * n_labs, config.lab_hidden),
                nn.ReLU(),
                nn.Linear(config.lab_hidden, config.lab_hidden),
                nn.ReLU(),
            )
            fused_in += config.lab_hidden
        self.fusion = nn.Sequential(
            nn.Dropout(config.dropout),
            nn.Linear(fused_in, config.fusion_hidden),
            nn.ReLU(),
        )
        self.finding_head = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(config.fusion_hidden, classes)
        )
        d = config.report_hidden
        self.memory_fused = nn.Linear(config.fusion_hidden, d)
        self.class_embedding = nn.Embedding(classes, d)
        self.present = nn.Parameter(torch.randn(d) * 0.02)
        self.box_mlp = nn.Sequential(nn.Linear(5, d), nn.ReLU(), nn.Linear(d, d))
        self.memory_text = nn.Linear(config.text_hidden, d) if self.text_encoder else None
        self.decoder = GPT2LMHeadModel(
            GPT2Config(
                vocab_size=vocab_size,
                n_positions=config.report_max_tokens + 2,
                n_embd=d,
                n_layer=config.report_layers,
                n_head=config.report_heads,
                add_cross_attention=True,
                bos_token_id=special["bos"],
                eos_token_id=special["eos"],
                pad_token_id=special["pad"],
                resid_pdrop=0.1,
                embd_pdrop=0.1,
                attn_pdrop=0.1,
            )
        )

    @property
    def feature_extractor(self) -> nn.Module:
        """The ResNet + FPN the detector runs (its output dict is kept by a forward hook)."""
        return cast(nn.Module, self.detector.network.feature_extractor)

    def _keep_features(self, _module: nn.Module, _inputs: Any, output: Any) -> None:
        self._features = output

    # ------------------------------------------------------------------ parts
    def image_features(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(B, 4 * fpn_channels)``: avg- and max-pooled stride-16 and stride-32 maps."""
        pooled = []
        for key in ("2", "pool"):
            level = features[key]
            pooled += [level.mean(dim=(2, 3)), level.amax(dim=(2, 3))]
        return torch.cat(pooled, dim=1)

    def encode_text(
        self, text_ids: torch.Tensor | None, text_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Token states ``(B, T, H)`` and the mask-averaged text vector ``(B, H)``; both None
        when the model does not read text."""
        if self.text_encoder is None or text_ids is None or text_mask is None:
            return None, None
        states = self.text_encoder(input_ids=text_ids, attention_mask=text_mask).last_hidden_state
        weights = text_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return states, pooled

    def fuse(
        self,
        image_vector: torch.Tensor,
        text_vector: torch.Tensor | None,
        labs: torch.Tensor | None,
    ) -> torch.Tensor:
        """The case embedding ``(B, fusion_hidden)`` from the modalities in the config."""
        parts = [self.image_proj(image_vector)]
        if self.text_encoder is not None and text_vector is not None:
            parts.append(text_vector)
        if self.lab_mlp is not None and labs is not None:
            parts.append(self.lab_mlp(labs))
        return self.fusion(torch.cat(parts, dim=1))

    def memory(
        self,
        fused: torch.Tensor,
        probabilities: torch.Tensor,
        boxes: torch.Tensor,
        box_mask: torch.Tensor,
        text_states: torch.Tensor | None,
        text_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder's cross-attention memory ``(B, M, d)`` and its mask ``(B, M)``.

        ``boxes`` is ``(B, K, 6)``: class index, cx, cy, w, h (fractions of the image), score.
        """
        batch = fused.shape[0]
        classes = self.class_embedding.weight.unsqueeze(0).expand(batch, -1, -1)
        finding_tokens = classes + probabilities.unsqueeze(-1) * self.present
        box_tokens = self.class_embedding(boxes[..., 0].long()) + self.box_mlp(boxes[..., 1:])
        tokens = [self.memory_fused(fused).unsqueeze(1), finding_tokens, box_tokens]
        ones = torch.ones(batch, 1 + finding_tokens.shape[1], device=fused.device)
        masks = [ones, box_mask.to(ones.dtype)]
        if self.memory_text is not None and text_states is not None and text_mask is not None:
            tokens.append(self.memory_text(text_states))
            masks.append(text_mask.to(ones.dtype))
        return torch.cat(tokens, dim=1), torch.cat(masks, dim=1)
