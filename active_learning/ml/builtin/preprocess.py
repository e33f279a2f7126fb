"""Turning a case into tensors: the image, the clinical text and the labs.

- Image: ``(rows, columns)`` stored values -> ``(1, S, S)`` float32, S = ``input_size``; the
  intensity is scaled by the image's own 0.5th and 99.5th percentiles to [0, 1] (robust to the
  bit depth and to a few extreme pixels), then resized with antialiasing. Boxes scale per axis.
- Labs: each known LOINC code gives two numbers: a presence flag and the value normalised
  against its reference range, ``(v - mid) / half_width`` clipped to [-5, 5] (0 inside the middle
  of the range, +-1 at its bounds). A missing value is 0 with presence 0, so "not measured" is
  explicit and never confused with "normal". A one-sided range (``high`` only, e.g. CRP) uses
  ``[0, high]``. Codes unseen in training are ignored (listed in the prediction's warnings).
- Text: a byte-level BPE tokenizer (Hugging Face ``tokenizers``) trained on the project's own
  clinical text and reports, wrapped as a ``PreTrainedTokenizerFast``; it round-trips text
  exactly, which the report decoder needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from active_learning.ml.interface import CaseInput, LabValue, ModelInputError

SPECIAL_TOKENS = ["<pad>", "<unk>", "<bos>", "<eos>", "<sep>", "<findings>", "<impression>"]
# Hugging Face's token roles (ruff's S106 mistakes "*_token" arguments for passwords).
TOKEN_ROLES = {
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "bos_token": "<bos>",
    "eos_token": "<eos>",
    "sep_token": "<sep>",
}
SECTION_TOKENS = {"findings": "<findings>", "impression": "<impression>"}


def image_tensor(case: CaseInput, *, size: int, min_size: int) -> tuple[torch.Tensor, float, float]:
    """The model's ``(1, size, size)`` image and the per-axis scale (input pixels per model
    pixel) to map boxes back: ``x_input = x_model * sx``."""
    image = np.asarray(case.image)
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim != 2:
        channels = f"{image.shape[-1]} channels" if image.ndim == 3 else f"{image.ndim} dimensions"
        raise ModelInputError(
            f"case {case.case_id}: the image must be one grayscale frame (rows, columns); "
            f"got shape {tuple(image.shape)} ({channels})"
        )
    rows, columns = image.shape
    if rows < min_size or columns < min_size:
        raise ModelInputError(
            f"case {case.case_id}: the image is {rows}x{columns} pixels; "
            f"at least {min_size}x{min_size} is needed"
        )
    if not np.issubdtype(image.dtype, np.number):
        raise ModelInputError(f"case {case.case_id}: the image is not numeric ({image.dtype})")
    pixels = image.astype(np.float32, copy=False)
    if not np.isfinite(pixels).all():
        raise ModelInputError(f"case {case.case_id}: the image holds NaN or infinite values")
    low, high = np.percentile(pixels, (0.5, 99.5))
    scaled = np.clip((pixels - float(low)) / max(float(high - low), 1e-6), 0.0, 1.0)
    scaled = scaled.astype(np.float32, copy=False)
    tensor = torch.from_numpy(np.ascontiguousarray(scaled))[None, None]
    resized = F.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True)
    return resized[0], columns / size, rows / size


@dataclass
class LabVocabulary:
    """The LOINC codes the model knows, in a fixed order, with their reference ranges as
    learnt from training data (used when a value comes without its own range)."""

    codes: list[str]
    low: list[float]
    high: list[float]

    @classmethod
    def learn(cls, cases: Iterable[Sequence[LabValue]], max_labs: int) -> LabVocabulary:
        counts: dict[str, int] = {}
        ranges: dict[str, tuple[float, float]] = {}
        for labs in cases:
            for lab in labs:
                counts[lab.code] = counts.get(lab.code, 0) + 1
                if lab.code not in ranges and lab.high is not None:
                    ranges[lab.code] = (lab.low if lab.low is not None else 0.0, lab.high)
        codes = sorted(counts, key=lambda code: (-counts[code], code))[:max_labs]
        codes = [code for code in codes if code in ranges]
        return cls(codes, [ranges[c][0] for c in codes], [ranges[c][1] for c in codes])

    def vector(self, labs: Sequence[LabValue]) -> tuple[torch.Tensor, list[str]]:
        """``(2 * n_codes,)`` float32: [normalised values..., presence flags...], and the
        codes that were ignored (unknown, or a value that is not a finite number)."""
        values = torch.zeros(len(self.codes))
        present = torch.zeros(len(self.codes))
        ignored = []
        index = {code: i for i, code in enumerate(self.codes)}
        for lab in labs:
            i = index.get(lab.code)
            if i is None:
                ignored.append(lab.code)
                continue
            if lab.value is None:
                continue
            if not math.isfinite(float(lab.value)):
                ignored.append(lab.code)
                continue
            low = lab.low if lab.low is not None else self.low[i]
            high = lab.high if lab.high is not None else self.high[i]
            mid, half = (low + high) / 2, max((high - low) / 2, 1e-6)
            values[i] = max(-5.0, min(5.0, (float(lab.value) - mid) / half))
            present[i] = 1.0
        return torch.cat([values, present]), ignored

    def to_dict(self) -> dict[str, list]:
        return {"codes": self.codes, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, data: dict[str, list]) -> LabVocabulary:
        return cls(list(data["codes"]), list(data["low"]), list(data["high"]))


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on ``texts`` (streamed), with MedLoop's special
    tokens; nothing is downloaded."""
    tokenizer = Tokenizer(models.BPE(unk_token=TOKEN_ROLES["unk_token"]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        **TOKEN_ROLES,
        additional_special_tokens=["<findings>", "<impression>"],
    )


def report_target(report: dict[str, str]) -> str:
    """The decoder's target text: ``<findings> ... <impression> ...`` (sections that exist)."""
    parts = []
    for section, token in SECTION_TOKENS.items():
        text = " ".join((report.get(section) or "").split())
        if text:
            parts.append(f"{token} {text}")
    return " ".join(parts)


def split_report(text: str) -> dict[str, str]:
    """Inverse of :func:`report_target` on decoded text: ``{"findings", "impression"}`` texts."""
    sections: dict[str, str] = {}
    current = "findings"
    buffer: list[str] = []
    tokens = {token: section for section, token in SECTION_TOKENS.items()}
    for piece in text.replace("<", " <").replace(">", "> ").split():
        if piece in tokens:
            if buffer:
                sections[current] = " ".join([sections.get(current, ""), *buffer]).strip()
            current, buffer = tokens[piece], []
        elif piece.startswith("<") and piece.endswith(">") and piece in SPECIAL_TOKENS:
            continue
        else:
            buffer.append(piece)
    if buffer:
        sections[current] = " ".join([sections.get(current, ""), *buffer]).strip()
    return {section: sections.get(section, "") for section in SECTION_TOKENS}
