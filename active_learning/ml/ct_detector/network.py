"""The 3D detector's network: MONAI's RetinaNet (``monai.apps.detection``) on a small 3D ResNet
with an FPN, anchors by shape (``AnchorGeneratorWithAnchorShape``), the ATSS matcher, sigmoid
focal loss normalised by the positive anchors, GIoU box loss on decoded boxes, and MONAI's
sliding-window inferer.

The FPN is MONAI's ``BackboneWithFPN``, what ``resnet_fpn_feature_extractor`` builds, with its
width a setting: that helper fixes 256 channels, and RetinaNet's heads (four 3x3x3 convolutions
each for classes and boxes at every level) at 256 channels cost about 130 GMAC per 48x48x32
patch, hours per cycle on two CPU cores; the default is 16 (about 0.5)."""

from __future__ import annotations

import torch
from monai.apps.detection.networks.retinanet_detector import RetinaNetDetector
from monai.apps.detection.networks.retinanet_network import RetinaNet
from monai.apps.detection.utils.anchor_utils import AnchorGeneratorWithAnchorShape
from monai.losses.giou_loss import BoxGIoULoss
from monai.networks.blocks.backbone_fpn_utils import BackboneWithFPN
from monai.networks.blocks.feature_pyramid_network import LastLevelMaxPool
from monai.networks.nets import resnet
from torch import nn
from torchvision.ops import sigmoid_focal_loss

from active_learning.ml.ct_detector.config import CTDetectorConfig

BOX_KEY, LABEL_KEY = "box", "label"
SCORE_KEY = LABEL_KEY + "_scores"


class FocalLossPerPositive(nn.Module):
    """torchvision's sigmoid focal loss summed over the anchors MONAI samples and divided by
    the positive ones (RetinaNet's normalisation; MONAI's default BCE takes the mean over all
    anchors, which drowns the few positives of a nodule in background). In: logits and one-hot
    targets, both ``(anchors, classes)``."""

    def __init__(self, alpha: float, gamma: float) -> None:
        super().__init__()
        self.alpha, self.gamma = alpha, gamma

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = sigmoid_focal_loss(
            logits, targets.to(logits.dtype), alpha=self.alpha, gamma=self.gamma, reduction="sum"
        )
        return loss / targets.sum().clamp(min=1.0)


def build_detector(config: CTDetectorConfig) -> RetinaNetDetector:
    """A new, randomly initialised detector (seeded by ``config.seed``) set up for training
    and for sliding-window inference on ``config.inference_roi`` windows."""
    torch.manual_seed(config.seed)
    backbone = resnet.ResNet(
        block="basic",
        layers=list(config.backbone_layers),
        block_inplanes=list(config.backbone_channels),
        spatial_dims=3,
        n_input_channels=1,
        conv1_t_stride=1,
        conv1_t_size=5,
    )
    returned = list(config.returned_layers)
    extractor = BackboneWithFPN(
        backbone,
        return_layers={f"layer{layer}": str(n) for n, layer in enumerate(returned)},
        in_channels_list=[config.backbone_channels[layer - 1] for layer in returned],
        out_channels=config.fpn_channels,
        spatial_dims=3,
        extra_blocks=LastLevelMaxPool(3),
    )
    anchors = AnchorGeneratorWithAnchorShape(
        feature_map_scales=[2**level for level in range(len(returned) + 1)],
        base_anchor_shapes=[list(shape) for shape in config.anchor_shapes],
    )
    # The input must divide by the stride of the coarsest level: conv1 (1) x max-pool (2) x
    # 2 per returned layer after the first x the extra pooled level (2).
    divisible = 2 ** (max(returned) + 1)
    network = RetinaNet(
        spatial_dims=3,
        num_classes=len(config.finding_classes),
        num_anchors=anchors.num_anchors_per_location()[0],
        feature_extractor=extractor,
        size_divisible=divisible,
    )
    detector = RetinaNetDetector(network=network, anchor_generator=anchors, debug=False)
    detector.set_target_keys(box_key=BOX_KEY, label_key=LABEL_KEY)
    detector.set_atss_matcher(num_candidates=config.atss_candidates, center_in_gt=False)
    detector.set_cls_loss(FocalLossPerPositive(config.focal_alpha, config.focal_gamma))
    detector.set_box_regression_loss(BoxGIoULoss(reduction="mean"), encode_gt=False,
                                     decode_pred=True)  # fmt: skip
    detector.set_box_selector_parameters(
        score_thresh=config.detection_score_threshold,
        topk_candidates_per_level=1000,
        nms_thresh=config.nms_threshold,
        detections_per_img=config.detections_per_volume,
    )
    detector.set_sliding_window_inferer(
        roi_size=list(config.inference_roi),
        sw_batch_size=1,
        overlap=config.inference_overlap,
        mode="constant",
    )
    return detector
