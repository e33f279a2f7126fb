"""Prediction with the built-in networks: candidate boxes (with test-time views for their
stability) and the boxes shown (per-class operating thresholds),
calibrated findings (with MC dropout for BALD), the report draft (greedy decoding with a
key/value cache, per-token entropy and NLL), sentence-to-finding links and the case score."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from active_learning.ml.builtin import uncertainty as u
from active_learning.ml.builtin.batch import Batch, memory_box_rows
from active_learning.ml.builtin.network import MultimodalNetwork
from active_learning.ml.builtin.preprocess import split_report
from active_learning.ml.interface import (
    CasePrediction,
    PredictedBox,
    ReportSentence,
    UncertaintyOptions,
)
from active_learning.ml.report_findings import findings_stated

STRIDE = 32  # the detector's coarsest stride: view sizes stay multiples of it


def view_sizes(size: int, factors: tuple[float, ...]) -> list[int]:
    """Test-time rescale sizes proportional to the input size (``factors`` such as 0.9, 1.1),
    rounded to the detector's stride; a factor that rounds back to ``size`` moves one stride, so
    each view is a real, small perturbation at every input size."""
    sizes = []
    for factor in factors:
        target = max(STRIDE, round(size * factor / STRIDE) * STRIDE)
        if target == size:
            target = size + STRIDE if factor > 1 else max(STRIDE, size - STRIDE)
        if target != size and target not in sizes:
            sizes.append(target)
    return sizes


def shown_mask(
    labels: np.ndarray,
    scores: np.ndarray,
    classes: tuple[str, ...],
    operating: dict | None,
    fallback_threshold: float,
) -> np.ndarray:
    """Which candidates are shown: with fitted operating points, those of reliable classes at or
    above the class threshold; before any fit (a version never evaluated on validation labels),
    those at or above ``fallback_threshold``."""
    if operating is None:
        return scores >= fallback_threshold
    points = operating.get("boxes", {})
    keep = np.zeros(len(scores), dtype=bool)
    for j, (label, score) in enumerate(zip(labels, scores, strict=True)):
        point = points.get(classes[int(label)]) or {}
        threshold = point.get("threshold")
        keep[j] = bool(point.get("reliable")) and threshold is not None and score >= threshold
    return keep


def decoder_reads(
    labels: np.ndarray,
    scores: np.ndarray,
    classes: tuple[str, ...],
    operating: dict | None,
    fallback_threshold: float,
) -> np.ndarray:
    """Which candidates the report decoder reads: those at or above their class's fitted
    threshold whether or not the class is reliable enough to show (the draft still describes
    what the detector found), else at or above ``fallback_threshold``."""
    if operating is None:
        return scores >= fallback_threshold
    points = operating.get("boxes", {})
    keep = np.zeros(len(scores), dtype=bool)
    for j, (label, score) in enumerate(zip(labels, scores, strict=True)):
        threshold = (points.get(classes[int(label)]) or {}).get("threshold")
        keep[j] = score >= (fallback_threshold if threshold is None else threshold)
    return keep


@dataclass
class Detections:
    boxes: list[np.ndarray]  # per case (N, 4) x1 y1 x2 y2 in model pixels
    labels: list[np.ndarray]
    scores: list[np.ndarray]
    # The detector's own scores when ``scores`` hold the fused box confidences (see
    # :func:`fuse_box_scores`); None while they are one and the same.
    detector_scores: list[np.ndarray] | None = None


def fuse_box_scores(
    scores: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, weight: float
) -> np.ndarray:
    """Box confidence from two views of the case: ``score ** (1 - weight) * p ** weight``, with
    ``p`` the case's calibrated probability of the box's finding (the multimodal head: image,
    clinical text and labs). A box is confident only when the detector and the case-level model
    agree: a lesion-like patch on a case whose text and labs say nothing of that finding ranks
    below the same patch on a case that does. ``weight`` 0 keeps the detector's scores."""
    scores = np.asarray(scores, dtype=np.float64)
    if weight <= 0 or scores.size == 0:
        return scores
    p = np.clip(np.asarray(probabilities, dtype=np.float64)[np.asarray(labels, dtype=int)], 0, 1)
    return scores ** (1.0 - weight) * p**weight


def top_detector_scores(
    candidates: Sequence[Any], classes: Sequence[str], floor: float
) -> np.ndarray:
    """Per class, the best raw detector score among a case's candidate boxes (``detector_score``
    where the box has one, else ``score``); ``floor`` (the detector's own score threshold: no
    candidate is kept below it) for a class with no candidate."""
    top = np.full(len(classes), float(floor), dtype=np.float64)
    index = {name: k for k, name in enumerate(classes)}
    for box in candidates:
        k = index.get(box.finding)
        raw = getattr(box, "detector_score", None)
        value = float(box.score if raw is None else raw)
        if k is not None and value > top[k]:
            top[k] = value
    return top


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def finding_detector_logits(
    probabilities: np.ndarray, top: np.ndarray, weight: float
) -> np.ndarray:
    """``(1 - weight) * logit(p) + weight * logit(top)``: the head's calibrated probabilities
    and the class's best detector score, mixed in logit space (before the Platt step)."""
    return (1.0 - weight) * _logit(probabilities) + weight * _logit(top)


def fuse_finding_probabilities(
    probabilities: np.ndarray, top: np.ndarray, config: Any
) -> np.ndarray:
    """A case's finding probabilities with the detector's evidence (``config.finding_detector_
    weight``, ``_scale``, ``_bias``: see :class:`BuiltinConfig`); weight 0 keeps the head's."""
    weight = float(config.finding_detector_weight)
    if weight <= 0:
        return np.asarray(probabilities, dtype=np.float64)
    z = finding_detector_logits(probabilities, top, weight)
    z = float(config.finding_detector_scale) * z + float(config.finding_detector_bias)
    return 1.0 / (1.0 + np.exp(-z))


def _detect(network: MultimodalNetwork, images: torch.Tensor) -> Detections:
    outputs = network.detector(images)
    return Detections(
        boxes=[o["boxes"].detach().cpu().numpy().astype(np.float64) for o in outputs],
        labels=[o["labels"].detach().cpu().numpy() for o in outputs],
        scores=[o["labels_scores"].detach().cpu().numpy().astype(np.float64) for o in outputs],
    )


def detect_with_views(
    network: MultimodalNetwork,
    images: torch.Tensor,
    *,
    stability: bool,
    rescales: tuple[float, ...] = (0.9, 1.1),
) -> tuple[Detections, dict[str, torch.Tensor], list[list[tuple[np.ndarray, np.ndarray]]]]:
    """Detections on the images, the FPN features of that pass, and per case the detections of
    each test-time view (a flip and the :func:`view_sizes` rescales) mapped back to the original
    model pixels."""
    size = images.shape[-1]
    main = _detect(network, images)
    features = network._features
    assert features is not None
    views: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(images.shape[0])]
    if stability:
        flipped = _detect(network, torch.flip(images, dims=[-1]))
        for i in range(images.shape[0]):
            b = flipped.boxes[i].copy()
            b[:, [0, 2]] = size - flipped.boxes[i][:, [2, 0]]
            views[i].append((b, flipped.labels[i]))
        for rescale in view_sizes(size, rescales):
            resized = F.interpolate(images, size=(rescale, rescale), mode="bilinear")
            scaled = _detect(network, resized)
            for i in range(images.shape[0]):
                views[i].append((scaled.boxes[i] * (size / rescale), scaled.labels[i]))
    return main, features, views


@torch.inference_mode()
def greedy_decode(
    network: MultimodalNetwork,
    memory: torch.Tensor,
    memory_mask: torch.Tensor,
    *,
    bos: int,
    eos: int,
    max_tokens: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Greedy drafts for a batch: tokens ``(B, T)``, the logits each was chosen from
    ``(B, T, V)`` and a mask ``(B, T)`` of real tokens (up to and including the end token).
    Equivalent to ``generate(do_sample=False)`` with ``output_scores``; the loop is ours
    because generate's per-step overhead doubled the time of this small decoder."""
    batch = memory.shape[0]
    # A mask of ones masks nothing: without it the decoder skips building one every step.
    cross_mask = None if bool(memory_mask.all()) else memory_mask
    current = torch.full((batch, 1), bos, dtype=torch.long, device=memory.device)
    past = None
    tokens, logits, masks = [], [], []
    alive = torch.ones(batch, dtype=torch.bool, device=memory.device)
    for _ in range(max_tokens):
        output = network.decoder(
            input_ids=current,
            past_key_values=past,
            encoder_hidden_states=memory,
            encoder_attention_mask=cross_mask,
            use_cache=True,
        )
        past = output.past_key_values
        step = output.logits[:, -1]
        choice = step.argmax(-1)
        tokens.append(choice)
        logits.append(step)
        masks.append(alive.clone())
        alive &= choice != eos
        if not alive.any():
            break
        current = choice.unsqueeze(1)
    return torch.stack(tokens, 1), torch.stack(logits, 1), torch.stack(masks, 1)


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


def link_sentences(
    report: dict[str, str], boxes: list[PredictedBox], classes: tuple[str, ...], width: int
) -> list[ReportSentence]:
    """Each sentence with the findings it states as present (the rule set of
    :mod:`active_learning.ml.report_findings`) and the box it came from: the best-scoring box of
    the first such finding, on the stated side when the sentence names one ("right" = the image's
    left half, radiographs being viewed as if facing the patient)."""
    sentences = []
    for section, text in report.items():
        for sentence in filter(None, (s.strip() for s in _SENTENCE.split(text))):
            stated = findings_stated(sentence, classes)
            present = [name for name, state in stated.items() if state == "present"]
            box_index = None
            lowered = sentence.lower()
            for name in present:
                candidates = [i for i, box in enumerate(boxes) if box.finding == name]
                centre = {i: boxes[i].x + boxes[i].width / 2 for i in candidates}
                if "right" in lowered and "left" not in lowered:
                    candidates = [i for i in candidates if centre[i] < width / 2] or candidates
                elif "left" in lowered and "right" not in lowered:
                    candidates = [i for i in candidates if centre[i] >= width / 2] or candidates
                if candidates:
                    box_index = max(candidates, key=lambda i: boxes[i].score)
                    break
            sentences.append(ReportSentence(section, sentence, present, box_index))
    return sentences


def predict_batch(
    network: MultimodalNetwork,
    batch: Batch,
    *,
    temperature: float,
    tokenizer,
    config,
    options: UncertaintyOptions,
    operating: dict | None = None,
) -> list[CasePrediction]:
    """Suggestions for one collated batch (the network in eval mode); ``operating`` are the
    version's fitted operating points (None before any fit)."""
    classes = tuple(config.finding_classes)
    size = config.input_size
    with torch.inference_mode():
        detections, features, views = detect_with_views(
            network,
            batch.images,
            stability=options.box_stability,
            rescales=tuple(config.stability_rescales),
        )
        image_vector = network.image_features(features)
        text_states, text_vector = network.encode_text(batch.text_ids, batch.text_mask)
        fused = network.fuse(image_vector, text_vector, batch.labs)
        logits = network.finding_head(fused)
        probabilities = torch.sigmoid(logits / temperature)
        detections = _fused(detections, probabilities.cpu().numpy(), config.box_finding_weight)
        finding_samples = None
        if options.mc_samples > 0:
            finding_samples = _mc_findings(
                network, image_vector, text_vector, batch.labs, temperature, options.mc_samples
            )
        memory_rows, memory_masks = [], []
        for i in range(len(batch.case_ids)):
            kept = decoder_reads(
                detections.labels[i], detections.scores[i], classes, operating,
                config.suggestion_score_threshold,
            )  # fmt: skip
            rows = [
                (
                    int(label),
                    float(box[0]),
                    float(box[1]),
                    float(box[2]),
                    float(box[3]),
                    float(score),
                )
                for box, label, score in zip(
                    detections.boxes[i][kept],
                    detections.labels[i][kept],
                    detections.scores[i][kept],
                    strict=True,
                )
            ]
            r, m = memory_box_rows(rows, size, config.max_memory_boxes)
            memory_rows.append(r)
            memory_masks.append(m)
        device = batch.images.device
        memory, memory_mask = network.memory(
            fused,
            probabilities,
            torch.stack(memory_rows).to(device),
            torch.stack(memory_masks).to(device),
            text_states,
            batch.text_mask,
        )
        special = (tokenizer.bos_token_id, tokenizer.eos_token_id)
        tokens, step_logits, token_mask = greedy_decode(
            network, memory, memory_mask, bos=special[0], eos=special[1],
            max_tokens=config.report_max_tokens,
        )  # fmt: skip
        token_entropy, token_nll = u.token_uncertainty(step_logits, tokens, token_mask)
        disagreement = None
        if options.mc_report_drafts > 1:
            disagreement = _mc_drafts(
                network, memory, memory_mask, tokenizer, config, options.mc_report_drafts
            )
    predictions = []
    uncalibrated = torch.sigmoid(logits).cpu().numpy().astype(np.float64)
    for i, case_id in enumerate(batch.case_ids):
        prediction = _assemble(
            i, case_id, batch, detections, views, probabilities, finding_samples,
            tokens, token_mask, token_entropy, token_nll, disagreement, tokenizer, classes,
            config, fused[i].cpu().numpy().astype(np.float32), operating,
        )  # fmt: skip
        prediction.uncalibrated_findings = {
            name: float(p) for name, p in zip(classes, uncalibrated[i], strict=True)
        }
        predictions.append(prediction)
    return predictions


def _fused(detections: Detections, probabilities: np.ndarray, weight: float) -> Detections:
    """``detections`` with :func:`fuse_box_scores` confidences (the operating points, the
    decoder's box memory and the acquisition signal all read these)."""
    if weight <= 0:
        return detections
    fused = [
        fuse_box_scores(s, labels, probabilities[i], weight)
        for i, (s, labels) in enumerate(zip(detections.scores, detections.labels, strict=True))
    ]
    return Detections(detections.boxes, detections.labels, fused, detections.scores)


def _mc_findings(network, image_vector, text_vector, labs, temperature, samples) -> np.ndarray:
    """``(K, B, C)`` calibrated probabilities with dropout active in the fusion and head only
    (the image and text features are computed once: the cheap MC dropout)."""
    network.fusion.train()
    network.finding_head.train()
    try:
        draws = [
            torch.sigmoid(
                network.finding_head(network.fuse(image_vector, text_vector, labs)) / temperature
            )
            for _ in range(samples)
        ]
    finally:
        network.fusion.eval()
        network.finding_head.eval()
    return torch.stack(draws).cpu().numpy()


def _mc_drafts(network, memory, memory_mask, tokenizer, config, drafts) -> list[float]:
    """Per case, 1 - mean pairwise ROUGE-L of ``drafts`` greedy drafts with decoder dropout."""
    network.decoder.train()
    try:
        texts = []
        for _ in range(drafts):
            tokens, _, mask = greedy_decode(
                network, memory, memory_mask, bos=tokenizer.bos_token_id,
                eos=tokenizer.eos_token_id, max_tokens=config.report_max_tokens,
            )  # fmt: skip
            texts.append(_decode_all(tokens, mask, tokenizer))
    finally:
        network.decoder.eval()
    return [u.draft_disagreement([t[i] for t in texts]) for i in range(memory.shape[0])]


def _decode_all(tokens: torch.Tensor, mask: torch.Tensor, tokenizer) -> list[str]:
    out = []
    for row, keep in zip(tokens.tolist(), mask.tolist(), strict=True):
        ids = [t for t, k in zip(row, keep, strict=True) if k]
        out.append(tokenizer.decode(ids, skip_special_tokens=False))
    return out


def _assemble(
    i, case_id, batch, detections, views, probabilities, finding_samples, tokens, token_mask,
    token_entropy, token_nll, disagreement, tokenizer, classes, config, embedding, operating,
) -> CasePrediction:  # fmt: skip
    sx, sy = batch.scales[i]
    # Every candidate gets its uncertainty (the acquisition signal must see low scores and
    # likely misses); the shown boxes are the candidates that pass their operating point.
    boxes_xyxy = detections.boxes[i]
    labels = detections.labels[i]
    scores = detections.scores[i]
    raw = detections.detector_scores[i] if detections.detector_scores is not None else scores
    instability = u.localization_instability(boxes_xyxy, labels, views[i])
    entropy = u.binary_entropy(scores) if len(scores) else np.zeros(0)
    candidates = [
        PredictedBox(
            finding=classes[int(label)],
            x=float(box[0] * sx),
            y=float(box[1] * sy),
            width=float((box[2] - box[0]) * sx),
            height=float((box[3] - box[1]) * sy),
            score=float(score),
            localization_instability=float(instability[j]),
            class_entropy=float(entropy[j]),
            detector_score=float(raw[j]),
        )
        for j, (box, label, score) in enumerate(zip(boxes_xyxy, labels, scores, strict=True))
    ]
    shown = shown_mask(labels, scores, classes, operating, config.suggestion_score_threshold)
    boxes = [box for box, keep in zip(candidates, shown, strict=True) if keep]
    probs = probabilities[i].cpu().numpy().astype(np.float64)
    # What is served and prefilled hears the detector too; the acquisition score and the
    # decoder's memory keep the head's own probabilities (the signal the label-efficiency bench
    # measured).
    served = fuse_finding_probabilities(
        probs, top_detector_scores(candidates, classes, config.detection_score_threshold), config
    )
    if finding_samples is not None:
        finding_u = u.bald(finding_samples[:, i, :])
    else:
        finding_u = u.binary_entropy(probs)
    text = _decode_all(tokens[i : i + 1], token_mask[i : i + 1], tokenizer)[0]
    report = split_report(text)
    report_u = {"mean_token_entropy": float(token_entropy[i]), "nll": float(token_nll[i])}
    if disagreement is not None:
        report_u["mc_disagreement"] = float(disagreement[i])
    # Every candidate against its class's operating threshold, with the likely-miss term
    # (active_learning.ml.builtin.uncertainty, module docstring).
    score = u.acquisition_parts(
        candidate_findings=[b.finding for b in candidates],
        candidate_scores=[b.score for b in candidates],
        candidate_instability=[b.localization_instability for b in candidates],
        shown_findings=[b.finding for b in boxes],
        thresholds=u.box_thresholds(operating),
        finding_probabilities={name: float(p) for name, p in zip(classes, probs, strict=True)},
        finding_uncertainty=list(finding_u),
        report_token_entropy=report_u["mean_token_entropy"],
        vocab_size=len(tokenizer),
        fallback_threshold=config.suggestion_score_threshold,
    ).combined
    return CasePrediction(
        case_id=case_id,
        boxes=boxes,
        findings={name: float(p) for name, p in zip(classes, served, strict=True)},
        finding_uncertainty={name: float(v) for name, v in zip(classes, finding_u, strict=True)},
        report=report,
        report_sentences=link_sentences(report, boxes, classes, batch.shapes[i][1]),
        report_uncertainty=report_u,
        case_score=score,
        warnings=list(batch.warnings[i]),
        embedding=embedding,
        candidates=candidates,
    )
