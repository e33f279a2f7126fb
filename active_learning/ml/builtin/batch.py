"""Collating cases into the tensors the built-in networks take."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedTokenizerFast

from active_learning.ml.builtin.config import BuiltinConfig
from active_learning.ml.builtin.preprocess import LabVocabulary, image_tensor, report_target
from active_learning.ml.interface import CaseInput, LabelledCase, ModelInputError


@dataclass
class Batch:
    case_ids: list[str]
    images: torch.Tensor  # (B, 1, S, S) in [0, 1]
    scales: list[tuple[float, float]]  # input pixels per model pixel (x, y)
    shapes: list[tuple[int, int]]  # input (rows, columns)
    text_ids: torch.Tensor | None
    text_mask: torch.Tensor | None
    labs: torch.Tensor | None  # (B, 2 * n_labs)
    warnings: list[list[str]]
    # Labelled batches only.
    targets: list[dict[str, torch.Tensor]] = field(default_factory=list)
    finding_targets: torch.Tensor | None = None  # (B, C) 0/1
    finding_mask: torch.Tensor | None = None  # (B, C) 1 where the label is known
    memory_boxes: torch.Tensor | None = None  # (B, K, 6)
    memory_box_mask: torch.Tensor | None = None  # (B, K)
    report_ids: torch.Tensor | None = None
    report_mask: torch.Tensor | None = None

    def to(self, device: torch.device) -> Batch:
        for name in (
            "images",
            "text_ids",
            "text_mask",
            "labs",
            "finding_targets",
            "finding_mask",
            "memory_boxes",
            "memory_box_mask",
            "report_ids",
            "report_mask",
        ):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.to(device))
        self.targets = [{k: v.to(device) for k, v in t.items()} for t in self.targets]
        return self


def memory_box_rows(
    boxes: Sequence[tuple[int, float, float, float, float, float]], size: int, limit: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(limit, 6)`` rows (class, cx, cy, w, h as fractions of the model image, score) of the
    highest-scoring boxes given in model pixels as (class, x1, y1, x2, y2, score), and a mask."""
    rows = torch.zeros(limit, 6)
    mask = torch.zeros(limit)
    ranked = sorted(boxes, key=lambda box: -box[5])[:limit]
    for i, (label, x1, y1, x2, y2, score) in enumerate(ranked):
        rows[i] = torch.tensor(
            [label, (x1 + x2) / 2 / size, (y1 + y2) / 2 / size, (x2 - x1) / size,
             (y2 - y1) / size, score]
        )  # fmt: skip
        mask[i] = 1.0
    return rows, mask


def collate(
    cases: Sequence[CaseInput],
    *,
    config: BuiltinConfig,
    tokenizer: PreTrainedTokenizerFast,
    labs: LabVocabulary,
    labelled: bool,
) -> Batch:
    """Tensors for ``cases``; with ``labelled`` the detector targets, finding labels and the
    report tokens too. A case the model cannot read raises :class:`ModelInputError`."""
    size = config.input_size
    images: list[torch.Tensor] = []
    scales: list[tuple[float, float]] = []
    shapes: list[tuple[int, int]] = []
    warnings: list[list[str]] = []
    for case in cases:
        image, sx, sy = image_tensor(case, size=size, min_size=config.min_image_size)
        images.append(image)
        scales.append((sx, sy))
        shapes.append((int(case.image.shape[-2]), int(case.image.shape[-1])))
        warnings.append([])
    batch = Batch(
        case_ids=[case.case_id for case in cases],
        images=torch.stack(images),
        scales=scales,
        shapes=shapes,
        text_ids=None,
        text_mask=None,
        labs=None,
        warnings=warnings,
    )
    if "text" in config.modalities:
        texts = [case.clinical_text for case in cases]
        full = tokenizer(texts, add_special_tokens=False)["input_ids"]
        for i, ids in enumerate(full):
            if len(ids) > config.text_max_tokens:
                warnings[i].append(
                    f"clinical text truncated to its first {config.text_max_tokens} tokens "
                    f"(of {len(ids)})"
                )
        encoded = tokenizer(
            [t or " " for t in texts],
            add_special_tokens=False,
            truncation=True,
            max_length=config.text_max_tokens,
            padding=True,
            return_tensors="pt",
        )
        batch.text_ids, batch.text_mask = encoded["input_ids"], encoded["attention_mask"]
    if "labs" in config.modalities and labs.codes:
        vectors = []
        for i, case in enumerate(cases):
            vector, ignored = labs.vector(case.labs)
            vectors.append(vector)
            if ignored:
                warnings[i].append(f"labs not used by this model: {', '.join(sorted(ignored))}")
        batch.labs = torch.stack(vectors)
    if labelled:
        _add_labels(batch, cases, config=config, tokenizer=tokenizer)
    return batch


def _add_labels(
    batch: Batch,
    cases: Sequence[CaseInput],
    *,
    config: BuiltinConfig,
    tokenizer: PreTrainedTokenizerFast,
) -> None:
    classes = {name: i for i, name in enumerate(config.finding_classes)}
    size = config.input_size
    finding_targets = torch.zeros(len(cases), len(classes))
    finding_mask = torch.zeros(len(cases), len(classes))
    memory_rows, memory_masks, texts = [], [], []
    for i, case in enumerate(cases):
        if not isinstance(case, LabelledCase):
            raise ModelInputError(f"case {case.case_id} has no labels to train on")
        sx, sy = batch.scales[i]
        coords, labels, memory = [], [], []
        for box in case.boxes:
            if box.finding not in classes:
                raise ModelInputError(
                    f"case {case.case_id}: box finding {box.finding!r} is not one of "
                    f"{', '.join(classes)}"
                )
            x1, y1 = box.x / sx, box.y / sy
            x2, y2 = (box.x + box.width) / sx, (box.y + box.height) / sy
            x1, y1 = max(0.0, min(x1, size - 1.0)), max(0.0, min(y1, size - 1.0))
            x2, y2 = max(x1 + 1.0, min(x2, float(size))), max(y1 + 1.0, min(y2, float(size)))
            coords.append([x1, y1, x2, y2])
            labels.append(classes[box.finding])
            memory.append((classes[box.finding], x1, y1, x2, y2, 1.0))
        batch.targets.append(
            {
                "boxes": torch.tensor(coords, dtype=torch.float32).reshape(-1, 4),
                "labels": torch.tensor(labels, dtype=torch.long),
            }
        )
        for name, value in case.findings.items():
            if name in classes and value is not None:
                finding_targets[i, classes[name]] = float(bool(value))
                finding_mask[i, classes[name]] = 1.0
        rows, mask = memory_box_rows(memory, size, config.max_memory_boxes)
        memory_rows.append(rows)
        memory_masks.append(mask)
        texts.append(report_target(case.report))
    batch.finding_targets, batch.finding_mask = finding_targets, finding_mask
    batch.memory_boxes, batch.memory_box_mask = torch.stack(memory_rows), torch.stack(memory_masks)
    encoded = tokenizer(
        [f"{tokenizer.bos_token}{t}{tokenizer.eos_token}" for t in texts],
        add_special_tokens=False,
        truncation=True,
        max_length=config.report_max_tokens,
        padding=True,
        return_tensors="pt",
    )
    batch.report_ids, batch.report_mask = encoded["input_ids"], encoded["attention_mask"]
