"""The built-in multimodal suggestion model (see :mod:`active_learning.ml.builtin.network`).

Training streams cases from a :data:`~active_learning.ml.interface.CaseSource` in batches of
``config.batch_size``, shuffled within a buffer of ``config.shuffle_buffer`` cases and passing
over the source as often as needed for ``config.train_steps`` optimisation steps (AdamW, linear
warm-up then cosine decay), with augmentation (:mod:`active_learning.ml.builtin.augment`); the
first pass of a fresh model trains the tokenizer and learns the lab codes from the same stream.
Cases whose ``sha256(case_id)`` falls in bucket 0 of 10 are held out of the gradient steps and
used to fit the findings' temperature (:func:`~active_learning.ml.calibration.is_calibration_case`,
the same cases for every model kind), so the calibration split is the same in every run and
every version. :meth:`BuiltinModel.fit_operating_points` then chooses on validation labels what
the version may show (:mod:`active_learning.ml.builtin.operating_points`); the points are saved
with the weights and applied by :meth:`BuiltinModel.predict`. It runs on a GPU when torch sees
one.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.visualize import GradCAM
from safetensors.torch import load_file, save_file
from safetensors.torch import load_model as load_weights
from safetensors.torch import save_model as save_weights
from torch import nn
from transformers import PreTrainedTokenizerFast

from active_learning.ml import evaluate as ev
from active_learning.ml import paired_bootstrap as bootstrap
from active_learning.ml.builtin import operating_points as op
from active_learning.ml.builtin.augment import flip_case, jitter_batch
from active_learning.ml.builtin.batch import Batch, collate, memory_box_rows
from active_learning.ml.builtin.config import BuiltinConfig
from active_learning.ml.builtin.inference import (
    finding_detector_logits,
    fuse_box_scores,
    fuse_finding_probabilities,
    predict_batch,
    top_detector_scores,
)
from active_learning.ml.builtin.network import GRADCAM_LAYER, MultimodalNetwork, anchor_shapes
from active_learning.ml.builtin.preprocess import LabVocabulary, report_target, train_tokenizer
from active_learning.ml.builtin.sampling import RepeatFactorSampler
from active_learning.ml.calibration import fit_temperature, is_calibration_case
from active_learning.ml.checkpoints import read_manifest, write_version
from active_learning.ml.interface import (
    CaseInput,
    CasePrediction,
    CaseSource,
    CheckpointError,
    LabelledCase,
    ModelInputError,
    ProgressCallback,
    SuggestionModel,
    TrainReport,
    UncertaintyOptions,
    batched,
    register,
)

REPORT_METRIC = "rouge_l_f_beta1.2"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
# The detector's trained weights when the version serves a blend of them with its parent's:
# the next cycle trains on from these (config.detector_lineage).
LINEAGE_FILE = "detector_lineage.safetensors"
TOKENIZER_DIR = "tokenizer"
# What a validation case keeps of its image once predicted: the blend choice reads its labels only.
_NO_IMAGE = np.zeros((1, 1), dtype=np.float32)


def warmup_cosine(step: int, *, total: int, warmup: int, final_fraction: float) -> float:
    """The learning-rate factor at ``step`` (0-based): linear from ``1 / (warmup + 1)`` to 1
    over ``warmup`` steps, then a cosine from 1 down to ``final_fraction`` at ``total``."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    span = max(total - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))


def fitted_fusion(
    truth: Sequence[ev.GroundTruthBox],
    candidates: Sequence[ev.PredictedBox],
    probabilities: Mapping[str, Mapping[str, float]],
    classes: Sequence[str],
    choices: Sequence[float],
) -> tuple[float, list[ev.PredictedBox]]:
    """The fusion weight among ``choices`` whose fused box scores (:func:`fuse_box_scores`
    of the detector's ``candidates`` with their case's finding ``probabilities``) reach the
    highest mAP@0.5 against ``truth`` (ties: the smaller weight), and those candidates. Without
    truth boxes: the smallest weight."""
    index = {name: i for i, name in enumerate(classes)}
    best: tuple[float, float, list[ev.PredictedBox]] | None = None
    for weight in sorted(choices):
        fused = [
            replace(
                box,
                score=float(
                    fuse_box_scores(
                        np.array([box.score]),
                        np.array([index[box.finding]]),
                        np.array([probabilities[box.image_id].get(c, 0.0) for c in classes]),
                        weight,
                    )[0]
                ),
            )
            for box in candidates
        ]
        value = ev.box_map(truth, fused, classes)["map_50"] if truth else None
        score = -1.0 if value is None else float(value)
        if best is None or score > best[1] + 1e-9:
            best = (weight, score, fused)
    assert best is not None
    return best[0], best[2]


def _mean_log_loss(p: np.ndarray, y: np.ndarray) -> float:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def fitted_finding_fusion(
    head: np.ndarray,
    top: np.ndarray,
    labels: np.ndarray,
    choices: Sequence[float],
    *,
    min_positives: int,
) -> dict[str, Any]:
    """How much a finding's probability should hear the detector, chosen on validation labels.

    ``head``: ``(N, C)`` calibrated probabilities of the findings head; ``top``: ``(N, C)`` the
    best raw detector score per class (:func:`top_detector_scores`); ``labels``: ``(N, C)`` 0/1,
    NaN where the finding was not labelled. For each weight ``w`` in ``choices`` above 0 the
    mixed logit (:func:`finding_detector_logits`) is recalibrated by a logistic fit (Platt:
    ``scale``, ``bias``, pooled over the classes); the weight with the lowest mean log loss over
    the labelled case-findings wins, 0 (the head alone, as it is) unless another beats it.
    Fewer than ``min_positives`` positives (or no negative) keeps 0. Returns ``{"weight",
    "scale", "bias", "log_loss": {w: loss}}``."""
    from sklearn.linear_model import LogisticRegression

    mask = ~np.isnan(labels)
    y = labels[mask].astype(np.float64)
    losses: dict[float, float] = {}
    best: dict[str, Any] = {"weight": 0.0, "scale": 1.0, "bias": 0.0, "log_loss": losses}
    if y.size == 0 or y.sum() < min_positives or y.sum() == y.size:
        return best
    base = _mean_log_loss(head[mask], y)
    losses[0.0] = base
    lowest = base
    for weight in sorted(float(w) for w in choices):
        if weight <= 0:
            continue
        x = finding_detector_logits(head, top, weight)[mask].reshape(-1, 1)
        fit = LogisticRegression(C=1e4, max_iter=1000).fit(x, y.astype(int))
        scale, bias = float(fit.coef_[0][0]), float(fit.intercept_[0])
        if not (scale > 0 and math.isfinite(scale) and math.isfinite(bias)):
            continue
        loss = _mean_log_loss(1 / (1 + np.exp(-(scale * x[:, 0] + bias))), y)
        losses[weight] = loss
        if loss < lowest - 1e-9:
            lowest = loss
            best.update(weight=weight, scale=scale, bias=bias)
    return best


def choose_detector_blend(
    seen: Mapping[float, Sequence[CasePrediction]],
    labelled: Sequence[LabelledCase],
    classes: Sequence[str],
    *,
    confidence: float,
    resamples: int,
    seed: int = 0,
) -> tuple[float, dict[str, Any]]:
    """Which detector blend to keep, from each blend's predictions ``seen[alpha]`` on the
    validation cases ``labelled`` (``alpha``: the trained weights' share; the smallest alpha is
    the start, e.g. the parent version a cycle builds on).

    Each blend's AP@0.5 is computed from all its candidates
    (:func:`~active_learning.ml.paired_bootstrap.box_map50`). The start is left only for a
    blend that beats it beyond the noise of the validation cases: in a paired bootstrap over
    them, the blend's AP@0.5 must exceed the start's in at least ``confidence`` of the
    resamples. Of the blends that pass, the one with the highest AP@0.5 (ties: the larger
    alpha) is kept. With a few validation positives per class, a single lucky case would
    otherwise move the detector away from what it knew (label-efficiency bench, seed 1: the
    average blend chosen on 200 validation cases lost 0.06 on held-out cases). ``confidence``
    0 keeps the highest AP@0.5 outright. Returns the alpha and the record kept in
    ``config.extra["detector_blend"]``."""
    outcomes = {
        alpha: bootstrap.case_outcomes(list(predictions), list(labelled), classes)
        for alpha, predictions in seen.items()
    }
    ones = np.ones(len(labelled))
    scores = {}
    for alpha, outcome in outcomes.items():
        value = bootstrap.box_map50(outcome, ones) if len(labelled) else None
        scores[alpha] = -1.0 if value is None else float(value)
    start = min(scores)
    chosen, p_not_better = start, None
    for alpha in sorted(scores, key=lambda a: (round(scores[a], 9), a), reverse=True):
        if alpha == start or scores[alpha] <= scores[start]:
            break
        if confidence <= 0:
            chosen = alpha
            break
        result = bootstrap.paired_bootstrap(
            outcomes[alpha], outcomes[start], metric_name="boxes.map_50",
            resamples=resamples, seed=seed,
        )  # fmt: skip
        if result.p_not_better is not None and result.p_not_better <= 1.0 - confidence:
            chosen, p_not_better = alpha, result.p_not_better
            break
        if p_not_better is None and result.p_not_better is not None:
            p_not_better = result.p_not_better
    record = {
        "trained_share": chosen,
        "validation_map50": {str(a): round(v, 4) for a, v in sorted(scores.items())},
        "confidence": confidence,
        "p_not_better": None if p_not_better is None else round(p_not_better, 4),
    }
    return chosen, record


def freeze_batch_norm(module: nn.Module) -> None:
    """Every batch-norm layer of ``module`` in evaluation mode: it normalises with its stored
    statistics and does not update them (its scale and shift still learn)."""
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()


def shuffled(
    items: Iterable[LabelledCase], buffer: int, rng: np.random.Generator
) -> Iterator[LabelledCase]:
    """``items`` in a random order within a sliding buffer of ``buffer`` (streaming: at most
    that many cases are held)."""
    pool: list[LabelledCase] = []
    for item in items:
        pool.append(item)
        if len(pool) >= max(buffer, 1):
            yield pool.pop(int(rng.integers(len(pool))))
    while pool:
        yield pool.pop(int(rng.integers(len(pool))))


@register
class BuiltinModel(SuggestionModel):
    """RetinaNet boxes, fused image/text/lab findings, a GPT-2 report draft; uncertainty and
    Grad-CAM explanations. ``BuiltinModel(config)`` is untrained until :meth:`train`."""

    kind = "builtin"

    def __init__(self, config: BuiltinConfig | None = None) -> None:
        self.config = config or BuiltinConfig()
        self.finding_classes = tuple(self.config.finding_classes)
        self.tokenizer: PreTrainedTokenizerFast | None = None
        self.labs: LabVocabulary | None = None
        self.network: MultimodalNetwork | None = None
        self.temperature = 1.0
        self._operating: dict[str, Any] | None = None
        self._detach_features = False  # set by train() (config.detach_pretrained_features)
        # The detector's weights when training started from learnt ones, until
        # fit_operating_points has chosen a blend (config.detector_interpolation_choices).
        self._start_detector: dict[str, torch.Tensor] | None = None
        # The trained detector weights a served blend with a smaller trained share left aside;
        # the next train() goes on from them (config.detector_lineage).
        self._lineage_detector: dict[str, torch.Tensor] | None = None
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    @classmethod
    def from_settings(
        cls, finding_classes: Sequence[str], settings: Mapping[str, Any]
    ) -> BuiltinModel:
        """:class:`BuiltinConfig`'s defaults, ``settings`` overriding them."""
        return cls(BuiltinConfig(finding_classes=tuple(finding_classes), **settings))

    @property
    def training_steps(self) -> int:
        """``config.train_steps`` (warm-up + cosine), what a cycle trains for."""
        return int(self.config.train_steps)

    # ------------------------------------------------------------------ building
    def _build(self, tokenizer: PreTrainedTokenizerFast, labs: LabVocabulary) -> None:
        torch.manual_seed(self.config.seed)
        # Fitted once, then saved in the config: a version always rebuilds the same anchors.
        self.config.anchor_shapes = anchor_shapes(self.config)
        self.tokenizer, self.labs = tokenizer, labs
        special = {
            "pad": tokenizer.pad_token_id,
            "bos": tokenizer.bos_token_id,
            "eos": tokenizer.eos_token_id,
        }
        self.network = MultimodalNetwork(
            self.config, vocab_size=len(tokenizer), n_labs=len(labs.codes), special=special
        ).to(self.device)

    def _build_from_data(self, cases: CaseSource) -> None:
        lab_lists: list[Any] = []

        def texts() -> Iterator[str]:
            for case in cases():
                lab_lists.append(case.labs)
                yield case.clinical_text
                if isinstance(case, LabelledCase):
                    yield report_target(case.report)

        tokenizer = train_tokenizer(texts(), self.config.vocab_size)
        self._build(tokenizer, LabVocabulary.learn(lab_lists, self.config.max_labs))

    def _require_trained(self) -> MultimodalNetwork:
        if self.network is None:
            raise RuntimeError("the model has not been trained or loaded yet")
        return self.network

    def _collate(self, cases: list[CaseInput], *, labelled: bool) -> Batch:
        assert self.tokenizer is not None and self.labs is not None
        return collate(
            cases, config=self.config, tokenizer=self.tokenizer, labs=self.labs, labelled=labelled
        ).to(self.device)

    # ------------------------------------------------------------------ training
    def train(
        self,
        cases: CaseSource,
        *,
        epochs: int | None = None,
        max_steps: int | None = None,
        warm_start: Path | str | None = None,
        progress: ProgressCallback | None = None,
        backbone_init: Path | str | None = None,
        starting_point: str | None = None,
    ) -> TrainReport:
        """Train for ``max_steps`` optimisation steps if given, else ``epochs`` passes over the
        training cases if given, else ``config.train_steps`` steps (module docstring).
        Operating points fitted before are dropped: they belong to the old weights.
        ``backbone_init``: a saved self-supervised backbone (:mod:`active_learning.ml.pretraining`)
        whose weights the image feature extractor of a freshly built network starts from
        (ignored with ``warm_start`` or an already built network).
        ``starting_point``: the name of a stored detector starting point
        (:mod:`active_learning.ml.builtin.starting_point`) whose weights the detector of a freshly
        built network starts from (same conditions; exclusive with ``backbone_init``)."""
        started = time.perf_counter()
        pretrained_detector = warm_start is not None or self.network is not None
        if backbone_init is not None and starting_point is not None:
            raise ValueError("start from a pretrained backbone or a starting point, not both")
        if warm_start is not None:
            self._load_into(Path(warm_start), read_manifest(warm_start))
        elif self.network is None:
            point = None
            if starting_point is not None:
                from active_learning.ml.builtin import starting_point as stored

                point = stored.load(starting_point)
                problem = stored.fits(self.config, point)
                if problem:
                    raise stored.StartingPointError(
                        f"starting point {starting_point!r} does not fit: {problem}"
                    )
                # The anchors the stored weights learnt (fitted to the same priors).
                self.config.anchor_shapes = tuple(
                    (int(w), int(h)) for w, h in point.card["network"]["anchor_shapes"]
                )
            self._build_from_data(cases)
            if point is not None:
                stored.apply(self._require_trained(), self.config, point)
                pretrained_detector = True
                self.config.extra["starting_point"] = {
                    "name": point.name,
                    "sha256": point.card["sha256"],
                }
            if backbone_init is not None:
                from active_learning.ml.pretraining import apply_backbone, load_backbone

                state = load_backbone(backbone_init).state
                apply_backbone(self._require_trained().feature_extractor, state)
        network = self._require_trained()
        self._operating = None
        config = self.config
        self._detach_features = pretrained_detector and config.detach_pretrained_features
        self._start_detector = None
        if pretrained_detector and config.detector_interpolation_choices:
            self._start_detector = {
                key: value.detach().clone() for key, value in network.detector.state_dict().items()
            }
        lineage, self._lineage_detector = self._lineage_detector, None
        config.extra.pop("detector_trained_from", None)
        if pretrained_detector and lineage is not None and config.detector_lineage:
            # Train on from the weights the last cycle learnt, not from the blend it served:
            # otherwise every cycle whose gain is not yet beyond noise is thrown away and the
            # next one starts from the same weights again. The blends are still tested
            # against what is served now (self._start_detector).
            network.detector.load_state_dict(lineage)
            config.extra["detector_trained_from"] = "lineage"

        def training_cases() -> Iterator[LabelledCase]:
            return (c for c in cases() if not is_calibration_case(c.case_id))

        if max_steps is not None:
            total = max(int(max_steps), 0)
        elif epochs is not None:
            count = sum(1 for _ in training_cases())
            total = max(epochs, 0) * math.ceil(count / config.batch_size)
        else:
            total = config.train_steps
        warmup = min(config.warmup_steps, total // 5)
        detector = {id(p) for p in network.detector.parameters()}
        scale = config.pretrained_detector_lr_scale if pretrained_detector else 1.0
        groups: list[dict[str, Any]] = [
            {"params": [p for p in network.parameters() if id(p) in detector],
             "lr": config.learning_rate * scale},
            {"params": [p for p in network.parameters() if id(p) not in detector]},
        ]  # fmt: skip
        optimizer = torch.optim.AdamW(
            groups, lr=config.learning_rate, weight_decay=config.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: warmup_cosine(
                step, total=total, warmup=warmup, final_fraction=config.final_lr_fraction
            ),
        )
        rng = np.random.default_rng(config.seed)
        sampler = RepeatFactorSampler(config.repeat_factor_threshold, rng)
        report = TrainReport()
        while report.steps < total:
            stream = shuffled(sampler.one_pass(training_cases()), config.shuffle_buffer, rng)
            stepped = False
            for chunk in batched(stream, config.batch_size):
                if report.steps >= total:
                    break
                stepped = True
                network.train()
                if pretrained_detector and config.freeze_pretrained_norm:
                    freeze_batch_norm(network.detector)
                parts = self._loss(self._training_batch(chunk, rng))
                loss = torch.stack(list(parts.values())).sum()
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(network.parameters(), 5.0)
                optimizer.step()
                scheduler.step()
                report.steps += 1
                report.cases_seen += len(chunk)
                report.losses.append(float(loss.detach()))
                report.loss_parts.append({k: float(v.detach()) for k, v in parts.items()})
                if progress:
                    # A block of 50 steps plays the part of an epoch for the log (a cycle logs
                    # a line per block); passes over a few labels would be hundreds.
                    block = (report.steps - 1) // 50 + 1
                    progress(f"block {block}, step {report.steps}", report.losses[-1])
            if not stepped:  # no training case at all (every case held out for calibration)
                break
        if sampler.factors:
            config.extra["repeat_factors"] = {
                name: round(value, 2) for name, value in sorted(sampler.factors.items())
            }
        report.temperature, report.calibration_cases = self._calibrate(cases)
        report.seconds = time.perf_counter() - started
        return report

    def _training_batch(self, chunk: list[LabelledCase], rng: np.random.Generator) -> Batch:
        """A labelled batch with the augmentation of :mod:`active_learning.ml.builtin.augment`
        (flip before collating, so the text and report swap sides with the image)."""
        config = self.config
        if config.augment:
            chunk = [flip_case(c) if rng.random() < config.flip_probability else c for c in chunk]
        batch = self._collate(list(chunk), labelled=True)
        if not config.augment:
            return batch
        batch.images, batch.targets = jitter_batch(
            batch.images,
            batch.targets,
            rng,
            scale_jitter=config.scale_jitter,
            shift_fraction=config.shift_fraction,
            contrast_jitter=config.contrast_jitter,
            brightness_jitter=config.brightness_jitter,
            gamma_range=(float(config.gamma_range[0]), float(config.gamma_range[1])),
        )
        # The report decoder's box memory follows the moved boxes.
        rows, masks = [], []
        for target in batch.targets:
            boxes = [
                (int(label), float(box[0]), float(box[1]), float(box[2]), float(box[3]), 1.0)
                for box, label in zip(target["boxes"].tolist(), target["labels"].tolist(),
                                      strict=True)
            ]  # fmt: skip
            r, m = memory_box_rows(boxes, config.input_size, config.max_memory_boxes)
            rows.append(r)
            masks.append(m)
        batch.memory_boxes = torch.stack(rows).to(self.device)
        batch.memory_box_mask = torch.stack(masks).to(self.device)
        return batch

    def _loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        network = self._require_trained()
        detector_losses = network.detector(batch.images, batch.targets)
        features = network._features
        if features is not None and self._detach_features:
            features = {name: value.detach() for name, value in features.items()}
        targets, mask = batch.finding_targets, batch.finding_mask
        report_ids, report_mask = batch.report_ids, batch.report_mask
        assert features is not None and targets is not None and mask is not None
        assert batch.memory_boxes is not None and batch.memory_box_mask is not None
        assert report_ids is not None and report_mask is not None
        image_vector = network.image_features(features)
        text_states, text_vector = network.encode_text(batch.text_ids, batch.text_mask)
        fused = network.fuse(image_vector, text_vector, batch.labs)
        logits = network.finding_head(fused)
        bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        findings = (bce * mask).sum() / mask.sum().clamp(min=1.0)
        # Teacher forcing: the decoder learns from the true findings and boxes; at inference it
        # reads the predicted ones.
        memory, memory_mask = network.memory(
            fused,
            targets * mask,
            batch.memory_boxes,
            batch.memory_box_mask,
            text_states,
            batch.text_mask,
        )
        labels = report_ids.masked_fill(report_mask == 0, -100)
        report = network.decoder(
            input_ids=report_ids,
            attention_mask=report_mask,
            encoder_hidden_states=memory,
            encoder_attention_mask=memory_mask,
            labels=labels,
        ).loss
        return {
            "box_classification": detector_losses["classification"],
            "box_regression": detector_losses["box_regression"],
            "findings": self.config.findings_loss_weight * findings,
            "report": self.config.report_loss_weight * report,
        }

    def _calibrate(self, cases: CaseSource) -> tuple[float, int]:
        """Fit the findings' temperature on the held-out cases' logits (1.0 without any)."""
        network = self._require_trained()
        network.eval()
        logits, labels, count = [], [], 0
        held_out = (c for c in cases() if is_calibration_case(c.case_id))
        with torch.no_grad():
            for chunk in batched(held_out, self.config.batch_size):
                batch = self._collate(chunk, labelled=True)
                network.detector(batch.images)
                known_mask, known_labels = batch.finding_mask, batch.finding_targets
                assert network._features is not None
                assert known_mask is not None and known_labels is not None
                _, text_vector = network.encode_text(batch.text_ids, batch.text_mask)
                fused = network.fuse(
                    network.image_features(network._features), text_vector, batch.labs
                )
                z = network.finding_head(fused)
                known = known_mask.bool()
                logits.append(z[known].cpu().numpy())
                labels.append(known_labels[known].cpu().numpy())
                count += len(chunk)
        if not logits or sum(len(z) for z in logits) == 0:
            self.temperature = 1.0
        else:
            self.temperature = fit_temperature(
                np.concatenate(logits), np.concatenate(labels), from_logits=True
            )
        return self.temperature, count

    # ------------------------------------------------------------------ inference
    def predict(
        self, cases: Iterable[CaseInput], *, uncertainty: UncertaintyOptions | None = None
    ) -> list[CasePrediction]:
        network = self._require_trained()
        network.eval()
        options = uncertainty or UncertaintyOptions()
        predictions: list[CasePrediction] = []
        for chunk in batched(cases, self.config.batch_size):
            batch = self._collate(chunk, labelled=False)
            predictions += predict_batch(
                network,
                batch,
                temperature=self.temperature,
                tokenizer=self.tokenizer,
                config=self.config,
                options=options,
                operating=self._operating,
            )
        return predictions

    def _detector_blends(self) -> dict[float, dict[str, torch.Tensor] | None]:
        """The detector weights :meth:`fit_operating_points` chooses from, by the trained
        weights' share ``alpha``: ``{1.0: None}`` (the weights as they are) unless training
        started from learnt detector weights and ``config.detector_interpolation_choices``
        names blends, each ``alpha * trained + (1 - alpha) * start``."""
        start, choices = self._start_detector, self.config.detector_interpolation_choices
        if start is None or not choices:
            return {1.0: None}
        trained = {
            k: v.detach().clone() for k, v in self._require_trained().detector.state_dict().items()
        }
        blends: dict[float, dict[str, torch.Tensor] | None] = {}
        for alpha in sorted({float(a) for a in choices}, reverse=True):
            blends[alpha] = {
                key: (alpha * value + (1 - alpha) * start[key])
                if value.is_floating_point()
                else value
                for key, value in trained.items()
            }
        return blends

    def _choose_blend(
        self,
        blends: dict[float, dict[str, torch.Tensor] | None],
        seen: dict[float, list[CasePrediction]],
        labelled: list[LabelledCase],
        classes: list[str],
    ) -> float:
        """The blend :func:`choose_detector_blend` picks on the validation cases, loaded into
        the detector and recorded in ``config.extra["detector_blend"]``; the start's weights
        are let go."""
        if len(blends) == 1:
            return next(iter(blends))
        config = self.config
        best, record = choose_detector_blend(
            seen,
            labelled,
            classes,
            confidence=config.detector_blend_confidence,
            resamples=config.detector_blend_resamples,
            seed=config.seed,
        )
        state = blends[best]
        top = max(blends)
        trained = blends[top]
        if best != top and trained is not None:
            self._lineage_detector = trained
        if state is not None:
            self._require_trained().detector.load_state_dict(state)
        self.config.extra["detector_blend"] = record
        self._start_detector = None
        return best

    # ------------------------------------------------------------------ operating points
    def operating_points(self) -> dict[str, Any] | None:
        return self._operating

    def fit_operating_points(self, cases: Iterable[LabelledCase]) -> dict[str, Any]:
        """See :meth:`SuggestionModel.fit_operating_points`; the rules are in
        :mod:`active_learning.ml.builtin.operating_points`. Candidates, calibrated finding
        probabilities and drafts come from one pass without test-time views."""
        self._require_trained()
        config = self.config
        classes = list(self.finding_classes)
        truth: list[ev.GroundTruthBox] = []
        candidates: list[ev.PredictedBox] = []
        probabilities: dict[str, list[float]] = {c: [] for c in classes}
        labels: dict[str, list[int]] = {c: [] for c in classes}
        references, drafts = [], []
        case_probabilities: dict[str, dict[str, float]] = {}
        self._operating = None  # predict with the raw candidates, nothing cut yet
        choices = tuple(float(w) for w in config.box_finding_weight_choices)
        if choices:  # the detector's own scores; fused below with each weight
            config.box_finding_weight = 0.0
        detector_choices = tuple(float(w) for w in config.finding_detector_weight_choices)
        if detector_choices:  # the findings head's own probabilities; mixed below
            config.finding_detector_weight = 0.0
        # Detector weights to choose from (WiSE-FT): the newly trained ones blended with those
        # training started from, by ``config.detector_interpolation_choices``.
        blends = self._detector_blends()
        seen: dict[float, list[CasePrediction]] = {alpha: [] for alpha in blends}
        kept: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        labelled: list[LabelledCase] = []
        for chunk in batched(cases, config.batch_size):
            labelled += [replace(case, image=_NO_IMAGE) for case in chunk]
            for alpha, state in blends.items():
                if state is not None:
                    self._require_trained().detector.load_state_dict(state)
                seen[alpha] += self.predict(
                    chunk, uncertainty=UncertaintyOptions(box_stability=False)
                )
            for case in chunk:
                truth += [
                    ev.GroundTruthBox(case.case_id, b.finding, b.x, b.y, b.width, b.height)
                    for b in case.boxes
                ]
                kept.append((case.case_id, dict(case.findings), dict(case.report or {})))
        alpha = self._choose_blend(blends, seen, labelled, classes)
        head = np.zeros((len(kept), len(classes)))
        top = np.zeros((len(kept), len(classes)))
        known = np.full((len(kept), len(classes)), np.nan)
        for i, ((case_id, findings, report), prediction) in enumerate(
            zip(kept, seen[alpha], strict=True)
        ):
            candidates += [
                ev.PredictedBox(case_id, b.finding, b.x, b.y, b.width, b.height, b.score)
                for b in prediction.candidates
            ]
            case_probabilities[case_id] = dict(prediction.findings)
            head[i] = [prediction.findings[c] for c in classes]
            top[i] = top_detector_scores(
                prediction.candidates, classes, config.detection_score_threshold
            )
            for k, c in enumerate(classes):
                if findings.get(c) is not None:
                    known[i, k] = float(bool(findings[c]))
            if any(report.values()):
                references.append(_report_text(report))
                drafts.append(_report_text(prediction.report))
        n_cases = len(set(b.image_id for b in truth)) if truth else 0
        n_cases = max(n_cases, len(references), int((~np.isnan(known)).any(axis=1).sum()))
        if not n_cases:
            self._operating = op.unfitted(classes, "no validation labels yet")
            return self._operating
        if choices:
            weight, candidates = fitted_fusion(
                truth, candidates, case_probabilities, classes, choices
            )
            config.box_finding_weight = weight
        if detector_choices:
            mixed = fitted_finding_fusion(
                head, top, known, detector_choices, min_positives=config.min_finding_positives
            )
            config.finding_detector_weight = mixed["weight"]
            config.finding_detector_scale = mixed["scale"]
            config.finding_detector_bias = mixed["bias"]
            config.extra["finding_detector_log_loss"] = {
                f"{w:g}": round(v, 5) for w, v in mixed["log_loss"].items()
            }
        served = fuse_finding_probabilities(head, top, config)
        for k, c in enumerate(classes):
            rows = ~np.isnan(known[:, k])
            labels[c] = [int(v) for v in known[rows, k]]
            probabilities[c] = [float(v) for v in served[rows, k]]
        ap50 = ev.box_map(truth, candidates, classes)["ap_50_per_class"] if truth else {}
        boxes = op.fit_box_operating_points(
            truth,
            candidates,
            classes,
            ap50_per_class=ap50,
            target=config.box_precision_target,
            min_positives=config.min_validation_positives,
            min_ap=config.min_class_ap,
            confidence=config.box_precision_confidence,
        )
        findings = op.fit_finding_operating_points(
            probabilities,
            labels,
            classes,
            target=config.finding_precision_target,
            min_positives=config.min_finding_positives,
            confidence=config.finding_prefill_confidence,
        )
        value, finding_f1 = None, None
        if references:
            metrics = ev.report_metrics(references, drafts, classes)
            value, finding_f1 = metrics[REPORT_METRIC], metrics["finding_f1_micro"]
        report = op.report_operating_point(
            value,
            metric=REPORT_METRIC,
            floor=config.report_metric_floor,
            finding_f1=finding_f1,
            finding_f1_floor=config.report_finding_f1_floor,
            reports=len(references),
            min_reports=config.report_min_validation_reports,
        )
        self._operating = {
            "boxes": boxes,
            "findings": findings,
            "report": report,
            "validation_cases": n_cases,
            "box_precision_target": config.box_precision_target,
        }
        return self._operating

    def embed(self, cases: Iterable[CaseInput]) -> np.ndarray:
        network = self._require_trained()
        network.eval()
        vectors = []
        with torch.no_grad():
            for chunk in batched(cases, self.config.batch_size):
                batch = self._collate(chunk, labelled=False)
                network.feature_extractor(batch.images)
                assert network._features is not None
                _, text_vector = network.encode_text(batch.text_ids, batch.text_mask)
                fused = network.fuse(
                    network.image_features(network._features), text_vector, batch.labs
                )
                vectors.append(fused.cpu().numpy().astype(np.float32))
        if not vectors:
            return np.zeros((0, self.config.fusion_hidden), dtype=np.float32)
        return np.concatenate(vectors)

    def explain(self, case: CaseInput, finding: str) -> np.ndarray:
        """Grad-CAM (``monai.visualize.GradCAM``) of ``finding``'s logit at the backbone's
        stride-16 layer, upsampled to the input image: ``(rows, columns)`` float32 in [0, 1]."""
        network = self._require_trained()
        if finding not in self.finding_classes:
            raise ModelInputError(
                f"unknown finding {finding!r}; this model knows {', '.join(self.finding_classes)}"
            )
        batch = self._collate([case], labelled=False)
        # On a copy: MONAI's CAM leaves its hooks on the network for good (and turns in-place
        # activations off), which would pile up on a version kept in memory between requests.
        # (Without the features the last pass cached: they may hang on an autograd graph.)
        network = copy.deepcopy(network, memo={id(network._features): None}).eval()
        with torch.no_grad():
            _, text_vector = network.encode_text(batch.text_ids, batch.text_mask)
        # In evaluation mode, which MONAI restores after the pass (a new module is in training
        # mode: batch statistics and dropout would otherwise shape the map).
        wrapper = _ImageToFindings(network, text_vector, batch.labs).eval()
        # MONAI's default post-processing maps (min, max) to (1, 0), which would show the
        # least activated regions as the hottest: the map is kept as computed and scaled here.
        cam = GradCAM(nn_module=wrapper, target_layers=GRADCAM_LAYER, postprocessing=_unchanged)
        heatmap = cam(batch.images, class_idx=self.finding_classes.index(finding))
        rows, columns = batch.shapes[0]
        resized = F.interpolate(heatmap.detach(), size=(rows, columns), mode="bilinear")
        result = resized[0, 0].cpu().numpy().astype(np.float32)
        span = float(result.max() - result.min())
        return (result - result.min()) / span if span > 0 else np.zeros_like(result)

    # ------------------------------------------------------------------ versions
    def save(self, directory: Path | str) -> dict[str, Any]:
        network = self._require_trained()
        assert self.tokenizer is not None and self.labs is not None
        tokenizer, labs = self.tokenizer, self.labs

        lineage = self._lineage_detector

        def write(folder: Path) -> None:
            save_weights(network, str(folder / WEIGHTS_FILE))
            if lineage is not None:
                save_file(
                    {k: v.detach().cpu().contiguous() for k, v in lineage.items()},
                    str(folder / LINEAGE_FILE),
                )
            tokenizer.save_pretrained(str(folder / TOKENIZER_DIR))
            state = {
                "config": self.config.to_dict(),
                "labs": labs.to_dict(),
                "temperature": self.temperature,
                "operating_points": self._operating,
            }
            (folder / CONFIG_FILE).write_text(json.dumps(state, indent=2, sort_keys=True))

        return write_version(
            directory,
            kind=self.kind,
            finding_classes=self.finding_classes,
            write_files=write,
            extra={"parameters": sum(p.numel() for p in network.parameters())},
        )

    @classmethod
    def _load(cls, directory: Path, manifest: dict[str, Any]) -> BuiltinModel:
        state = json.loads((directory / CONFIG_FILE).read_text())
        model = cls(BuiltinConfig.from_dict(state["config"]))
        model._load_into(directory, manifest)
        return model

    def refuses_to_build_on(self, directory: Path | str) -> str | None:
        """A version whose anchors were laid out otherwise than this model's
        (``anchor_indexing``): its box weights learnt each box at a place the other layout
        reads elsewhere. Versions saved before the setting existed read MONAI's transposed
        ``"ij"``, with which small lesions away from the image diagonal were never learnt, so a
        project on the default ``"xy"`` starts its lineage over rather than carry them on."""
        state = json.loads((Path(directory) / CONFIG_FILE).read_text())
        saved = BuiltinConfig.from_dict(state["config"]).anchor_indexing
        if saved == self.config.anchor_indexing:
            return None
        why = (
            " (MONAI's default, used before MedLoop laid box x along the image columns: "
            "each training box was taught at its transposed place)"
            if saved == "ij"
            else ""
        )
        return (
            f"its anchors are laid out {saved!r}{why}, this model's {self.config.anchor_indexing!r}"
        )

    def _load_into(self, directory: Path, manifest: dict[str, Any]) -> None:
        if manifest.get("kind") != self.kind:
            raise CheckpointError(f"{directory} holds a {manifest.get('kind')!r} model")
        state = json.loads((directory / CONFIG_FILE).read_text())
        saved = BuiltinConfig.from_dict(state["config"])
        if saved.finding_classes != self.config.finding_classes:
            raise CheckpointError(
                f"{directory} was trained on findings {list(saved.finding_classes)}, "
                f"not {list(self.config.finding_classes)}"
            )
        if not self.config.anchor_shapes:  # warm start: keep the anchors the weights learnt
            self.config.anchor_shapes = saved.anchor_shapes
        # ... laid out as they were when the weights learnt them (versions saved before
        # anchor_indexing keep MONAI's transposed "ij" layout, and a cycle building on them too).
        self.config.anchor_indexing = saved.anchor_indexing
        tokenizer = PreTrainedTokenizerFast.from_pretrained(
            str(directory / TOKENIZER_DIR), local_files_only=True
        )
        self._build(tokenizer, LabVocabulary.from_dict(state["labs"]))
        missing, unexpected = load_weights(
            self._require_trained(), str(directory / WEIGHTS_FILE), device=str(self.device)
        )
        if missing or unexpected:
            raise CheckpointError(
                f"{directory}: weights do not fit the configured network "
                f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
            )
        self._lineage_detector = None
        if (directory / LINEAGE_FILE).exists():
            lineage = load_file(str(directory / LINEAGE_FILE), device=str(self.device))
            expected = self._require_trained().detector.state_dict()
            if set(lineage) != set(expected) or any(
                lineage[k].shape != expected[k].shape for k in expected
            ):
                raise CheckpointError(
                    f"{directory}: {LINEAGE_FILE} does not fit the configured detector"
                )
            self._lineage_detector = lineage
        self._operating = state.get("operating_points")
        self.temperature = float(state.get("temperature", 1.0))
        if not math.isfinite(self.temperature) or self.temperature <= 0:
            raise CheckpointError(f"{directory}: invalid temperature {self.temperature}")


def _report_text(report: dict[str, str]) -> str:
    """The sections' text only: section labels shared by every draft would lift the score of
    an empty or degenerate draft."""
    return " ".join(v for v in report.values() if v)


def _unchanged(heatmap: torch.Tensor) -> torch.Tensor:
    return heatmap


class _ImageToFindings(nn.Module):
    """Image -> finding logits with the case's text and labs fixed: what Grad-CAM differentiates."""

    def __init__(
        self,
        network: MultimodalNetwork,
        text_vector: torch.Tensor | None,
        labs: torch.Tensor | None,
    ) -> None:
        super().__init__()
        self.network = network
        self.text_vector = text_vector
        self.labs = labs

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.network.feature_extractor(images)
        vector = self.network.image_features(features)
        return self.network.finding_head(self.network.fuse(vector, self.text_vector, self.labs))
