"""The built-in model's configuration: everything needed to rebuild its networks from scratch
(no hub, no pretrained weights), saved beside the weights as ``config.json``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from active_learning.ml.checkpoints import json_lists, json_tuples

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
    # Anchor shapes (width, height in model pixels) at the finest FPN level (stride 4), doubled
    # at each of the 4 levels. Empty: fitted to the box priors at ``input_size`` when the
    # network is built (:func:`active_learning.ml.builtin.anchors.fit_anchor_shapes`), then
    # stored in the saved config so a version always rebuilds the same anchors.
    anchor_shapes: tuple[tuple[int, int], ...] = ()
    anchors_per_level: int = 3
    # How MONAI's anchor generator lays its anchors over the feature maps. "xy": box x along
    # the image's columns, as every box in MedLoop is given (x, y, width, height from the top
    # left). MONAI's default "ij" puts box x along the first spatial axis (the rows), so with it
    # every training box was transposed against the image: a network with local receptive
    # fields cannot learn to fire at (col, row) for a lesion at (row, col), and small lesions
    # away from the diagonal were never learnt (stored start, 6,500 steps: nodule AP@0.5 0.01;
    # 8 nodule images could not be overfitted in 200 steps). Versions saved before this setting
    # read "ij", the anchors their weights learnt.
    anchor_indexing: str = "xy"
    # Candidates: every box after NMS at or above this score (low scores included: they feed
    # the metrics and the acquisition signal, never the display).
    detection_score_threshold: float = 0.02
    detections_per_image: int = 24
    # Only used before operating points are fitted (a model never evaluated on validation
    # labels shows boxes at this score, as older versions did).
    suggestion_score_threshold: float = 0.25
    # Operating points, fitted on the validation labels (see operating_points.py): the lowest
    # score whose precision at IoU 0.5 reaches box_precision_target; a class needs
    # min_validation_positives boxes and AP@0.5 >= min_class_ap to show anything.
    box_precision_target: float = 0.7
    # ... reached by the precision's one-sided Wilson lower bound at this confidence (0: the
    # plain precision), so that a threshold held up by a few validation boxes does not promise
    # on new cases what it only happened to reach on these (operating_points.py).
    # bench/operating_point_choice.py, 5 seeds, 500 held-out cases, 0 -> 0.75: shown precision
    # 0.674 -> 0.725 (first model) and 0.679 -> 0.764 (after 120 lesion-rich labels), recall
    # over the classes with enough validation boxes 0.493 -> 0.493 and 0.512 -> 0.507; at 0.9
    # precision 0.766 / 0.791 but recall 0.491 / 0.494 (rare classes drop out).
    box_precision_confidence: float = 0.75
    min_validation_positives: int = 5
    min_class_ap: float = 0.1
    # Box confidence = detector score ** (1 - w) * the case's calibrated finding probability ** w
    # (inference.fuse_box_scores): the detector and the multimodal case-level head must agree.
    # Quick bench, seed 0, 400 test cases, w 0 -> 0.3: precision of the shown boxes 0.71 -> 0.76,
    # recall 0.41 -> 0.45. w chosen on another synthetic data seed (15, 300 cases; mean of two
    # models), at w 0 / 0.2 / 0.3 / 0.4: recall 0.43 / 0.46 / 0.44 / 0.40, mAP@0.5 0.53 / 0.54 /
    # 0.52 / 0.50. Versions saved before it read 0 (their thresholds were fitted on detector
    # scores).
    box_finding_weight: float = 0.2
    # fit_operating_points chooses the weight among these by AP@0.5 on the validation labels
    # (ties: the smaller); empty keeps box_finding_weight. A finding head trained on a few dozen
    # labels can be confidently wrong, and fusing it would then reorder good detector scores
    # (label-efficiency bench, seed 1, 30 labels: the start's detector fused at 0.2 with such a
    # head fell from AP@0.5 0.610 to 0.217 on held-out cases; chosen on validation, 0.610).
    box_finding_weight_choices: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3)
    # Findings are prefilled only above the calibrated probability whose PPV reaches this.
    finding_precision_target: float = 0.7
    min_finding_positives: int = 5
    # The prefill's predictive values must be reached by their one-sided Wilson lower bound at
    # this confidence (0: the plain values), as box_precision_confidence does for boxes. At 0, a
    # demo version with 15 validation labels (6 with an effusion) prefilled "effusion: present"
    # on 7 of 13 open cases, 2 of them true (2026-12-07).
    finding_prefill_confidence: float = 0.75
    # A finding's probability also hears the detector: its logit is mixed with the logit of the
    # class's best raw detector score on the case, (1 - w) * head + w * detector, then scaled
    # and shifted (Platt: finding_detector_scale, finding_detector_bias) to the validation
    # labels. fit_operating_points chooses w among finding_detector_weight_choices by the
    # validation log loss (0: the multimodal head alone, calibrated by its temperature; empty
    # keeps the weight). The head reads pooled image features, in which an 8 px nodule that the
    # detector finds is lost (quick bench, 2026-12-07: nodule finding AUROC 0.75-0.78 beside a
    # nodule box AP@0.5 of 0.94). Versions saved before read 0.
    finding_detector_weight: float = 0.0
    finding_detector_scale: float = 1.0
    finding_detector_bias: float = 0.0
    finding_detector_weight_choices: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    # No report draft unless the report metric (ROUGE-L, pycocoevalcap) reaches this floor.
    report_metric_floor: float = 0.3
    # ... and the findings the drafts state (report_findings.py) must match the validation
    # reports' at this micro F1: overlap of boilerplate words alone passes wrong drafts.
    report_finding_f1_floor: float = 0.6
    # ... both judged on at least this many validation reports (as the promotion guard's 20
    # validation labels): a demo version judged on 3 reports (ROUGE-L 0.88, finding F1 0.89)
    # drafted "normal chest" on a nodule case (2026-12-07).
    report_min_validation_reports: int = 20
    # Detector recipe: sigmoid focal loss over all anchors, normalised by positive anchors.
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    box_loss: str = "giou"  # "giou" (on decoded boxes) or "smooth_l1" (on encoded deltas)
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
    # Training: counted in optimisation steps, linear warm-up then cosine decay to
    # ``final_lr_fraction`` of the peak; cases are reshuffled in a buffer each pass.
    # 300 steps of 8 cases at 256 px take about 8 minutes on 2 CPU cores (what a cycle can
    # spend and still score 2,000 cases within 10 minutes); cycles build on the latest trained
    # version, so steps accumulate across cycles.
    batch_size: int = 8
    train_steps: int = 300
    warmup_steps: int = 30
    final_lr_fraction: float = 0.02
    learning_rate: float = 2e-3
    # The detector's peak rate, as a fraction of ``learning_rate``, when its weights were learnt
    # before (a stored starting point or the version a cycle builds on): a few hundred labels
    # at the full rate wash out what many thousands taught it (quick bench: AP@0.5 of
    # consolidation 0.61 -> 0.53 and effusion 0.55 -> 0.46 after 260 steps at the full rate;
    # seed 0, mAP@0.5 0.50 at 1.0, 0.58 at 0.3 and at 0.1; 0.3 leaves a detector that started
    # from nothing, or a class the starting point lacks, room to go on learning in later cycles).
    pretrained_detector_lr_scale: float = 0.3
    # Keep the batch-norm statistics of learnt detector weights (a starting point or the
    # version a cycle builds on) instead of re-estimating them from a few labelled batches:
    # the usual practice when fine-tuning a pretrained detector (torchvision's and detectron2's
    # frozen batch norm).
    freeze_pretrained_norm: bool = False
    # When training started from learnt detector weights, fit_operating_points chooses among
    # blends ``alpha * trained + (1 - alpha) * start`` of the detector (weight-space ensembling,
    # WiSE-FT: Wortsman et al., CVPR 2022) the one with the highest AP@0.5 on the validation
    # labels (ties: the larger alpha), so a cycle's few labels cannot wear down what the start
    # knew unseen. 1.0 must be among them for the trained weights to be kept; empty: no blend.
    detector_interpolation_choices: tuple[float, ...] = (0.0, 0.5, 1.0)
    # A blend other than the start is kept only when its AP@0.5 beats the start's in at least
    # this share of paired bootstrap resamples of the validation cases (0: the highest AP@0.5
    # outright); see ``model.choose_detector_blend``.
    detector_blend_confidence: float = 0.8
    detector_blend_resamples: int = 200
    # When the served blend is not the trained weights (the test above kept the parent, or a
    # half-way blend), the version keeps the trained weights beside it and the next cycle
    # trains on from them, so gains too small to pass the test one cycle at a time still add
    # up; what is served is always tested against what was served before. False: each cycle
    # starts from what its parent serves.
    detector_lineage: bool = True
    # The findings head and the report decoder read the image features without sending their
    # gradients back into learnt detector weights: new, randomly initialised heads would
    # otherwise pull the features a starting point learnt towards a few dozen labels.
    detach_pretrained_features: bool = False
    weight_decay: float = 1e-4
    shuffle_buffer: int = 64
    # Repeat-factor sampling (sampling.py; LVIS): after a first uniform pass, a case holding a
    # finding seen in a share f of the training cases is repeated sqrt(t / f) times per pass
    # (at least once), so rare findings are not drowned by normal images; 0 turns it off.
    repeat_factor_threshold: float = 0.0
    # Augmentation (training only): horizontal flip with laterality words swapped, +-scale,
    # shifts as a fraction of the input size, contrast/brightness and gamma jitter.
    augment: bool = True
    flip_probability: float = 0.5
    scale_jitter: float = 0.1
    shift_fraction: float = 0.06
    contrast_jitter: float = 0.2
    brightness_jitter: float = 0.08
    gamma_range: tuple[float, float] = (0.7, 1.4)
    # Test-time views for box stability (Celery scoring only): flip and rescales relative to
    # the input size, rounded to the detector's stride.
    stability_rescales: tuple[float, ...] = (0.9, 1.1)
    report_loss_weight: float = 1.0
    findings_loss_weight: float = 1.0
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {key: json_lists(value) for key, value in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuiltinConfig:
        known = {f.name for f in fields(cls)} | {"anchor_sizes"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown built-in model settings: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {key: json_tuples(value) for key, value in data.items()}
        # Versions saved before box scores were fused kept the detector's scores (and their
        # operating points were fitted on those).
        values.setdefault("box_finding_weight", 0.0)
        # ... and before anchor_indexing, MONAI's default (transposed) anchor layout.
        values.setdefault("anchor_indexing", "ij")
        if "anchor_sizes" in values:  # versions saved before anchor shapes were fitted
            sizes = values.pop("anchor_sizes")
            values.setdefault("anchor_shapes", tuple((int(v), int(v)) for v in sizes))
        config = cls(**values)
        bad = set(config.modalities) - set(MODALITIES)
        if bad or "image" not in config.modalities:
            raise ValueError(f"modalities must include 'image' and be among {MODALITIES}")
        if config.input_size % 32 or config.input_size < 64:
            raise ValueError("input_size must be a multiple of 32, at least 64")
        if config.train_steps < 0 or config.warmup_steps < 0:
            raise ValueError("train_steps and warmup_steps must not be negative")
        if not 0 < config.box_precision_target <= 1:
            raise ValueError("box_precision_target must be in (0, 1]")
        if not (config.box_precision_confidence == 0 or 0.5 <= config.box_precision_confidence < 1):
            raise ValueError("box_precision_confidence must be 0 or in [0.5, 1)")
        if not (
            config.finding_prefill_confidence == 0 or 0.5 <= config.finding_prefill_confidence < 1
        ):
            raise ValueError("finding_prefill_confidence must be 0 or in [0.5, 1)")
        if not 0 < config.pretrained_detector_lr_scale <= 1:
            raise ValueError("pretrained_detector_lr_scale must be in (0, 1]")
        if config.report_min_validation_reports < 0:
            raise ValueError("report_min_validation_reports must not be negative")
        if config.repeat_factor_threshold < 0:
            raise ValueError("repeat_factor_threshold must not be negative")
        if not 0 <= config.box_finding_weight < 1:
            raise ValueError("box_finding_weight must be in [0, 1)")
        weights = (config.finding_detector_weight, *config.finding_detector_weight_choices)
        if not all(isinstance(w, int | float) and 0 <= w <= 1 for w in weights):
            raise ValueError("finding_detector_weight and its choices must be in [0, 1]")
        if not (
            math.isfinite(config.finding_detector_scale)
            and config.finding_detector_scale > 0
            and math.isfinite(config.finding_detector_bias)
        ):
            raise ValueError(
                "finding_detector_scale must be a positive number, finding_detector_bias finite"
            )
        if config.anchor_indexing not in ("xy", "ij"):
            raise ValueError("anchor_indexing must be 'xy' or 'ij'")
        if config.box_loss not in ("giou", "smooth_l1"):
            raise ValueError("box_loss must be 'giou' or 'smooth_l1'")
        return config
