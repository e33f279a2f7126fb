"""A hospital's own pretrained text model as a suggestion model (kind ``local-checkpoint``).

The hospital brings a Hugging Face checkpoint directory (``config.json``, weights, tokenizer files)
of a text encoder, e.g. a clinical BERT. :meth:`LocalCheckpointModel.from_directory` puts a
multi-label findings head on it (a fresh head when the checkpoint has none, or one of another size)
and :meth:`LocalCheckpointModel.train` fine-tunes it on the project's labelled cases.

**Nothing is ever downloaded.** Every ``from_pretrained`` call gets an existing local directory,
``local_files_only=True`` and ``trust_remote_code=False`` (no code from a checkpoint is run), so
the model works the same with ``HF_HUB_OFFLINE=1`` and on a machine without network. A missing
directory or missing files raise :class:`~active_learning.ml.interface.CheckpointError` naming the
path and what is missing.

What the model reads: **text only**. The case's image is ignored (this kind suggests no boxes and
does not explain its findings); the input is the clinical text (indication and history) followed
by the labs written out, e.g. ``"Labs: C reactive protein 266.6 mg/L high (0-5); Body
temperature not measured."`` (:func:`case_text`). Text longer than the token limit is cut at the
end and the prediction's ``warnings`` say so. The token limit is ``max_length``, lowered to what
the tokenizer and the checkpoint's position embeddings allow.

Optional report drafts: when the checkpoint directory holds ``report/`` with a causal language
model (``AutoModelForCausalLM`` plus its tokenizer), it drafts the report greedily from a prompt
of the clinical text and the findings predicted present (:func:`report_prompt`). Without it the
report is empty and every prediction's ``warnings`` say so.

Uncertainty (see :meth:`LocalCheckpointModel.predict`): per finding, BALD under MC dropout or the
binary entropy of the calibrated probability; for the report, mean token entropy and NLL per
token of the greedy draft; ``case_score`` = mean finding uncertainty / ln 2, in [0, 1].

A saved version (:meth:`LocalCheckpointModel.save`) holds ``classifier/`` (weights, config and
tokenizer), ``report/`` when there is a report model, and this wrapper's ``config.json``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
)

from active_learning.ml.calibration import (  # noqa: F401 (re-exported: the kind's hold-out)
    CALIBRATION_BUCKETS,
    fit_temperature,
    is_calibration_case,
)
from active_learning.ml.checkpoints import read_manifest, write_version
from active_learning.ml.interface import (
    CaseInput,
    CasePrediction,
    CaseSource,
    CheckpointError,
    LabelledCase,
    LabValue,
    ModelInputError,
    ProgressCallback,
    ReportSentence,
    SuggestionModel,
    TrainReport,
    UncertaintyOptions,
    batched,
    register,
)
from active_learning.ml.report_findings import findings_stated
from active_learning.ml.uncertainty import bald, binary_entropy, draft_disagreement

logger = logging.getLogger(__name__)

KIND = "local-checkpoint"
WRAPPER_CONFIG = "config.json"
CLASSIFIER_DIR = "classifier"
REPORT_DIR = "report"
# A finding at or above this calibrated probability is named in the report prompt.
REPORT_FINDING_THRESHOLD = 0.5
# Models whose position ids start after the padding index (pad_token_id + 1 positions are unused).
_OFFSET_POSITION_MODELS = frozenset(
    {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "roberta-prelayernorm"}
)
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)
_LOAD_OPTIONS: dict[str, Any] = {"local_files_only": True, "trust_remote_code": False}


@dataclass
class LocalCheckpointConfig:
    """The wrapper's settings, saved as ``config.json`` beside ``classifier/``.

    ``max_length`` is the requested token limit (the effective one may be lower, see the module
    docstring); ``temperature`` divides the logits before the sigmoid; ``source`` is the directory
    the hospital's checkpoint was read from (for the record only)."""

    finding_classes: tuple[str, ...]
    max_length: int = 256
    temperature: float = 1.0
    batch_size: int = 8
    learning_rate: float = 2e-5
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    report_max_new_tokens: int = 64
    seed: int = 0
    has_report: bool = False
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = KIND
        data["finding_classes"] = list(self.finding_classes)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LocalCheckpointConfig:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        known["finding_classes"] = tuple(known.get("finding_classes", ()))
        return cls(**known)


# ------------------------------------------------------------------------------------ input text
def _number(value: float) -> str:
    return f"{value:g}"


def lab_text(lab: LabValue) -> str:
    """One lab as text: ``"<name> <value> <unit> <flag> (<range>)"``, e.g. ``"C reactive protein
    266.6 mg/L high (0-5)"``; the flag is ``low``/``high``/``normal`` against the bounds present,
    a one-sided range is written ``(<5)`` or ``(>12)``. A missing (None or non-finite) value is
    written ``"<name> not measured"``. The name is ``lab.name`` up to its first ``[`` (LOINC long
    names), else the LOINC code."""
    name = (lab.name.split("[", 1)[0].strip() if lab.name else "") or lab.code
    if lab.value is None or not math.isfinite(lab.value):
        return f"{name} not measured"
    parts = [name, _number(lab.value)]
    if lab.unit:
        parts.append(lab.unit)
    if lab.low is not None and lab.value < lab.low:
        parts.append("low")
    elif lab.high is not None and lab.value > lab.high:
        parts.append("high")
    elif lab.low is not None or lab.high is not None:
        parts.append("normal")
    if lab.low is not None and lab.high is not None:
        parts.append(f"({_number(lab.low)}-{_number(lab.high)})")
    elif lab.high is not None:
        parts.append(f"(<{_number(lab.high)})")
    elif lab.low is not None:
        parts.append(f"(>{_number(lab.low)})")
    return " ".join(parts)


def case_text(case: CaseInput) -> str:
    """The text the model reads for a case: its clinical text, then ``"Labs: a; b; c."`` when it
    has labs (:func:`lab_text`). The image is not used."""
    parts = [case.clinical_text]
    if case.labs:
        parts.append("Labs: " + "; ".join(lab_text(lab) for lab in case.labs) + ".")
    return " ".join(part for part in parts if part)


def report_prompt(text: str, findings: dict[str, float]) -> str:
    """The report model's prompt: the case text and the findings predicted present (calibrated
    probability >= :data:`REPORT_FINDING_THRESHOLD`, most likely first)."""
    present = sorted(
        (item for item in findings.items() if item[1] >= REPORT_FINDING_THRESHOLD),
        key=lambda item: -item[1],
    )
    named = ", ".join(name.replace("_", " ") for name, _ in present) or "none"
    return f"Clinical information: {text or 'none'}\nSuggested findings: {named}\nReport:"


# ---------------------------------------------------------------------------------------- loading
def _check_checkpoint_dir(path: Path, what: str) -> None:
    """Raise :class:`CheckpointError` naming ``path`` unless it holds a config, weights and
    tokenizer files."""
    if not path.exists():
        raise CheckpointError(f"{what} {path} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"{what} {path} is not a directory")
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any((path / name).is_file() for name in _WEIGHT_FILES):
        missing.append("weights (one of " + ", ".join(_WEIGHT_FILES) + ")")
    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        missing.append("tokenizer files (one of " + ", ".join(_TOKENIZER_FILES) + ")")
    if missing:
        raise CheckpointError(f"{what} {path} lacks " + "; ".join(missing))


def _load_tokenizer(path: Path) -> Any:
    try:
        return AutoTokenizer.from_pretrained(str(path), **_LOAD_OPTIONS)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"cannot read the tokenizer in {path}: {exc}") from exc


def _load_classifier(path: Path, **kwargs: Any) -> PreTrainedModel:
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(path), **_LOAD_OPTIONS, **kwargs
        )
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"cannot read a text classifier from {path}: {exc}") from exc
    model.eval()
    return model


def _load_report_model(path: Path) -> tuple[PreTrainedModel, Any]:
    _check_checkpoint_dir(path, "report model directory")
    tokenizer = _load_tokenizer(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), **_LOAD_OPTIONS)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"cannot read a causal language model from {path}: {exc}") from exc
    model.eval()
    tokenizer.padding_side = "left"  # generation continues the prompt's last token
    tokenizer.truncation_side = "left"  # a long prompt loses its start, never "Report:"
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _ensure_padding(tokenizer: Any, model: PreTrainedModel, path: Path) -> None:
    """Give a tokenizer without a padding token its end-of-sequence token for padding."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise CheckpointError(f"the tokenizer in {path} has no padding or end token")
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id


def _token_limit(requested: int, tokenizer: Any, model: PreTrainedModel) -> int:
    """``requested`` lowered to the tokenizer's ``model_max_length`` (when set) and the number of
    usable position embeddings of the checkpoint."""
    limits = [requested]
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < 1_000_000:
        limits.append(tokenizer_limit)
    config = model.config
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        offset = 0
        if getattr(config, "model_type", "") in _OFFSET_POSITION_MODELS:
            offset = (getattr(config, "pad_token_id", None) or 0) + 1
        limits.append(positions - offset)
    return max(2, min(limits))


def _split_sections(text: str) -> dict[str, str]:
    """A draft by section: text after ``Findings:``/``Impression:`` headings goes to that
    section, text before any heading to ``findings``."""
    pieces = re.split(r"(?i)\b(findings|impression)\s*:", text)
    sections: dict[str, str] = {}
    if pieces[0].strip() or len(pieces) == 1:
        sections["findings"] = pieces[0].strip()
    for heading, body in zip(pieces[1::2], pieces[2::2], strict=True):
        key = heading.lower()
        sections[key] = " ".join(part for part in (sections.get(key, ""), body.strip()) if part)
    return sections


def _sentences(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"(?<=[.!?])\s+|\n+", text) if part.strip()]


# ------------------------------------------------------------------------------------------ model
@register
class LocalCheckpointModel(SuggestionModel):
    """A hospital's pretrained text encoder with a multi-label findings head (kind
    ``local-checkpoint``); see the module docstring. Build one with :meth:`from_directory`, or
    load a saved version with :func:`~active_learning.ml.checkpoints.load_model`."""

    kind = KIND

    def __init__(
        self,
        classifier: PreTrainedModel,
        tokenizer: Any,
        config: LocalCheckpointConfig,
        *,
        report_model: PreTrainedModel | None = None,
        report_tokenizer: Any = None,
        path: Path | None = None,
    ) -> None:
        """Wrap loaded parts (normally called by :meth:`from_directory` and :meth:`_load`):
        ``classifier`` must have one output per class of ``config.finding_classes``."""
        if classifier.config.num_labels != len(config.finding_classes):
            raise CheckpointError(
                f"{path or 'the classifier'} has {classifier.config.num_labels} outputs for "
                f"{len(config.finding_classes)} finding classes"
            )
        self.classifier = classifier
        self.tokenizer = tokenizer
        self.config = config
        self.finding_classes = tuple(config.finding_classes)
        self.report_model = report_model
        self.report_tokenizer = report_tokenizer
        self.config.has_report = report_model is not None
        _ensure_padding(tokenizer, classifier, path or Path("."))
        self.token_limit = _token_limit(config.max_length, tokenizer, classifier)
        self.classifier.eval()

    @property
    def temperature(self) -> float:
        """The calibration temperature (logits are divided by it before the sigmoid)."""
        return float(self.config.temperature)

    # --------------------------------------------------------------------------- construction
    @classmethod
    def from_directory(
        cls,
        path: Path | str,
        finding_classes: Sequence[str],
        *,
        max_length: int = 256,
        **settings: Any,
    ) -> LocalCheckpointModel:
        """A new model from a local checkpoint directory (never downloaded).

        ``path`` holds a Hugging Face text model (``config.json``, weights, tokenizer files); a
        plain encoder gets a freshly initialised multi-label head with one output per class of
        ``finding_classes`` (a head of another size is replaced). ``path/report``, when present,
        must hold a causal language model and its tokenizer for report drafts. ``settings`` sets
        other :class:`LocalCheckpointConfig` fields (``batch_size``, ``learning_rate``, ...).
        Raises :class:`CheckpointError` naming the path and what is missing or unreadable."""
        root = Path(path).expanduser().resolve()
        classes = tuple(finding_classes)
        if not classes:
            raise ValueError("finding_classes is empty")
        if len(set(classes)) != len(classes):
            raise ValueError(f"finding_classes has duplicates: {list(classes)}")
        _check_checkpoint_dir(root, "checkpoint directory")
        tokenizer = _load_tokenizer(root)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(settings.get("seed", 0)))  # a fresh head is reproducible
            classifier = _load_classifier(
                root,
                num_labels=len(classes),
                problem_type="multi_label_classification",
                id2label=dict(enumerate(classes)),
                label2id={name: index for index, name in enumerate(classes)},
                ignore_mismatched_sizes=True,
            )
        report_model = report_tokenizer = None
        if (root / REPORT_DIR).exists():
            report_model, report_tokenizer = _load_report_model(root / REPORT_DIR)
        else:
            logger.warning("%s has no %s/ model: report drafts will be empty", root, REPORT_DIR)
        config = LocalCheckpointConfig(
            finding_classes=classes, max_length=max_length, source=str(root), **settings
        )
        return cls(
            classifier,
            tokenizer,
            config,
            report_model=report_model,
            report_tokenizer=report_tokenizer,
            path=root,
        )

    # ------------------------------------------------------------------------------ encoding
    def _encode(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.token_limit,
            return_tensors="pt",
        )
        return dict(encoded)

    def _token_counts(self, texts: Sequence[str]) -> list[int]:
        """Untruncated token counts (with special tokens), to warn about truncation."""
        ids = self.tokenizer(list(texts), truncation=False, verbose=False)["input_ids"]
        return [len(row) for row in ids]

    def _logits(self, texts: Sequence[str]) -> torch.Tensor:
        output = self.classifier(**self._encode(texts))
        return output.logits.float()

    # ------------------------------------------------------------------------------ predict
    def predict(
        self, cases: Iterable[CaseInput], *, uncertainty: UncertaintyOptions | None = None
    ) -> list[CasePrediction]:
        """Suggestions for ``cases``, in input order, computed in padded batches.

        Per case: ``findings`` = ``sigmoid(logit / T)`` for every finding class; ``boxes`` is
        always empty (this kind reads no image); ``finding_uncertainty`` = BALD in nats over
        ``uncertainty.mc_samples`` MC-dropout passes when that is > 0 (the probabilities
        themselves stay those of the deterministic pass), else the binary entropy of the
        calibrated probability; ``report``/``report_uncertainty`` (``mean_token_entropy`` and
        ``nll`` per token of the greedy draft, plus ``mc_disagreement`` = 1 - mean pairwise
        ROUGE-L over the greedy draft and ``uncertainty.mc_report_drafts`` MC-dropout drafts)
        only with a report model, else empty with a warning; ``case_score`` = mean finding
        uncertainty / ln 2 in [0, 1]. MC dropout is seeded from ``config.seed`` (the global torch
        RNG is left untouched), so a prediction is reproducible."""
        options = uncertainty or UncertaintyOptions()
        predictions: list[CasePrediction] = []
        for batch in batched(cases, max(1, self.config.batch_size)):
            predictions.extend(self._predict_batch(batch, options))
        return predictions

    def _predict_batch(
        self, batch: list[CaseInput], options: UncertaintyOptions
    ) -> list[CasePrediction]:
        texts = [case_text(case) for case in batch]
        warnings: list[list[str]] = [[] for _ in batch]
        for index, count in enumerate(self._token_counts(texts)):
            if count > self.token_limit:
                warnings[index].append(
                    f"clinical text and labs truncated to {self.token_limit} of {count} tokens; "
                    "the rest was not read"
                )
            if not texts[index]:
                warnings[index].append("no clinical text or labs: findings reflect no case data")
        with torch.no_grad():
            logits = self._logits(texts)
            probabilities = torch.sigmoid(logits / self.temperature).double().numpy()
            if options.mc_samples > 0:
                samples = self._mc_probabilities(texts, options.mc_samples)
                finding_uncertainty = bald(samples)
            else:
                finding_uncertainty = binary_entropy(probabilities)
        findings = [
            {name: float(row[k]) for k, name in enumerate(self.finding_classes)}
            for row in probabilities
        ]
        if self.report_model is not None:
            drafts = self._draft_reports(texts, findings, options.mc_report_drafts)
        else:
            drafts = [("", {}, []) for _ in batch]
            for entry in warnings:
                entry.append(f"no report model (no {REPORT_DIR}/ in the checkpoint): no draft")
        predictions = []
        for index, case in enumerate(batch):
            draft, report_uncertainty, draft_warnings = drafts[index]
            report = _split_sections(draft) if self.report_model is not None else {}
            sentences = [
                ReportSentence(
                    section=section,
                    text=sentence,
                    findings=[
                        name
                        for name, state in findings_stated(sentence, self.finding_classes).items()
                        if state == "present"
                    ],
                )
                for section, body in report.items()
                for sentence in _sentences(body)
            ]
            row_uncertainty = finding_uncertainty[index]
            score = float(np.clip(row_uncertainty.mean() / math.log(2), 0.0, 1.0))
            predictions.append(
                CasePrediction(
                    case_id=case.case_id,
                    boxes=[],
                    findings=findings[index],
                    finding_uncertainty={
                        name: float(row_uncertainty[k])
                        for k, name in enumerate(self.finding_classes)
                    },
                    report=report,
                    report_sentences=sentences,
                    report_uncertainty=report_uncertainty,
                    case_score=score,
                    warnings=warnings[index] + draft_warnings,
                )
            )
        return predictions

    def _mc_probabilities(self, texts: Sequence[str], samples: int) -> np.ndarray:
        """``(samples, n, classes)`` calibrated probabilities with dropout on (train mode, which
        for transformer text encoders changes nothing but dropout), under ``no_grad``."""
        encoded = self._encode(texts)
        draws = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            self.classifier.train()
            try:
                for _ in range(samples):
                    logits = self.classifier(**encoded).logits.float()
                    draws.append(torch.sigmoid(logits / self.temperature).double().numpy())
            finally:
                self.classifier.eval()
        return np.stack(draws)

    # ------------------------------------------------------------------------------- report
    def _generate(self, prompts: Sequence[str]) -> list[tuple[str, dict[str, float], list[str]]]:
        """Greedy drafts of ``prompts`` with their token entropy and NLL (nats per token)."""
        assert self.report_model is not None
        model, tokenizer = self.report_model, self.report_tokenizer
        new_tokens = self.config.report_max_new_tokens
        limit = 1_000_000
        positions = getattr(model.config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > new_tokens:
            limit = positions - new_tokens
        counts = [len(ids) for ids in tokenizer(list(prompts), verbose=False)["input_ids"]]
        encoded = tokenizer(
            list(prompts), padding=True, truncation=True, max_length=limit, return_tensors="pt"
        )
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        eos_ids = {eos} if isinstance(eos, int) else set(eos or ())
        output = model.generate(  # type: ignore[operator]
            **encoded,
            max_new_tokens=new_tokens,
            do_sample=False,
            num_beams=1,
            return_dict_in_generate=True,
            output_logits=True,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=eos,
        )
        generated = output.sequences[:, encoded["input_ids"].shape[1] :]
        steps = torch.stack(output.logits, dim=1).float()  # (n, new tokens, vocab)
        log_probs = torch.log_softmax(steps, dim=-1)
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        chosen = model.compute_transition_scores(  # type: ignore[operator]
            output.sequences, output.logits, normalize_logits=True
        ).float()
        results = []
        for row in range(generated.shape[0]):
            tokens = generated[row].tolist()
            length = len(tokens)
            for position, token in enumerate(tokens):
                if token in eos_ids:
                    length = position + 1  # the end token was the model's choice too
                    break
            text = tokenizer.decode(tokens[:length], skip_special_tokens=True).strip()
            stats = {
                "mean_token_entropy": float(entropy[row, :length].mean()),
                "nll": float(-chosen[row, :length].mean()),
            }
            notes = []
            if counts[row] > limit:
                notes.append(f"report prompt cut to its last {limit} of {counts[row]} tokens")
            if not text:
                notes.append("the report model produced an empty draft")
            results.append((text, stats, notes))
        return results

    def _draft_reports(
        self, texts: Sequence[str], findings: Sequence[dict[str, float]], mc_drafts: int
    ) -> list[tuple[str, dict[str, float], list[str]]]:
        assert self.report_model is not None
        prompts = [report_prompt(text, probs) for text, probs in zip(texts, findings, strict=True)]
        drafts = self._generate(prompts)
        if mc_drafts <= 0:
            return drafts
        samples: list[list[str]] = [[text] for text, _, _ in drafts]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            self.report_model.train()
            try:
                for _ in range(mc_drafts):
                    for row, (text, _, _) in enumerate(self._generate(prompts)):
                        samples[row].append(text)
            finally:
                self.report_model.eval()
        for row, texts_of_case in enumerate(samples):
            drafts[row][1]["mc_disagreement"] = draft_disagreement(texts_of_case)
        return drafts

    # -------------------------------------------------------------------------------- embed
    def embed(self, cases: Iterable[CaseInput]) -> np.ndarray:
        """The attention-masked mean of the encoder's last hidden states per case: float32
        ``(n_cases, hidden_size)``, in input order."""
        vectors = [np.zeros((0, int(self.classifier.config.hidden_size)), dtype=np.float32)]
        with torch.no_grad():
            for batch in batched(cases, max(1, self.config.batch_size)):
                encoded = self._encode([case_text(case) for case in batch])
                output = self.classifier(**encoded, output_hidden_states=True)
                hidden = output.hidden_states[-1].float()
                mask = encoded["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                vectors.append(pooled.numpy().astype(np.float32))
        return np.concatenate(vectors, axis=0)

    # -------------------------------------------------------------------------------- train
    def _targets(self, case: LabelledCase) -> tuple[list[float], list[float]]:
        """0/1 targets and a mask per class: a finding marked None or not given is masked out
        (keys that are not finding classes are ignored). Raises :class:`ModelInputError` for a
        case without a ``findings`` dict."""
        if not isinstance(getattr(case, "findings", None), dict):
            raise ModelInputError(f"case {case.case_id!r} has no findings dict to train on")
        targets, mask = [], []
        for name in self.finding_classes:
            value = case.findings.get(name)
            targets.append(1.0 if value else 0.0)
            mask.append(0.0 if value is None else 1.0)
        return targets, mask

    def _training_rows(
        self,
        source: Iterable[LabelledCase],
        held_out: dict[str, tuple[str, list[float], list[float]]],
        record: bool,
    ) -> Iterator[tuple[str, list[float], list[float]]]:
        """(text, targets, mask) of the training cases, streamed; calibration cases go to
        ``held_out`` instead (text and labels only, when ``record`` and they carry a label)."""
        for case in source:
            text = case_text(case)
            targets, mask = self._targets(case)
            if is_calibration_case(case.case_id):
                if record and any(mask) and case.case_id not in held_out:
                    held_out[case.case_id] = (text, targets, mask)
                continue
            yield text, targets, mask

    def _warm_start(self, directory: Path) -> None:
        """Load the classifier weights of a version saved by this kind (checksums verified)."""
        manifest = read_manifest(directory)
        if manifest.get("kind") != self.kind:
            raise CheckpointError(
                f"{directory} is a {manifest.get('kind')!r} version, not {self.kind!r}"
            )
        if tuple(manifest.get("finding_classes", ())) != self.finding_classes:
            raise CheckpointError(
                f"{directory} has finding classes {manifest.get('finding_classes')}, "
                f"this model {list(self.finding_classes)}"
            )
        saved_tokenizer = _load_tokenizer(directory / CLASSIFIER_DIR)
        if saved_tokenizer.get_vocab() != self.tokenizer.get_vocab():
            raise CheckpointError(f"{directory} was trained with another tokenizer vocabulary")
        saved = _load_classifier(directory / CLASSIFIER_DIR)
        try:
            self.classifier.load_state_dict(saved.state_dict())
        except RuntimeError as exc:
            raise CheckpointError(f"{directory} does not fit this model: {exc}") from exc

    def train(
        self,
        cases: CaseSource,
        *,
        epochs: int = 1,
        max_steps: int | None = None,
        warm_start: Path | str | None = None,
        progress: ProgressCallback | None = None,
    ) -> TrainReport:
        """Fine-tune encoder and head on ``cases()`` (one call per epoch, read in batches of
        ``config.batch_size``, never all at once, in the source's order).

        Loss: binary cross-entropy over the labelled findings (``True``/``False``; ``None`` or
        absent classes are masked out; a batch without any label is skipped), AdamW with gradient
        clipping, seeded dropout. Cases with :func:`is_calibration_case` are held out; after
        training the temperature is fitted on their logits (:func:`fit_temperature`) and stays
        1.0 when none of them carries a label. ``warm_start``: a version saved by this kind whose
        classifier weights are loaded first. ``progress(message, fraction)`` is called after
        every step and epoch. Returns the :class:`TrainReport` (one loss per optimiser step)."""
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        started = time.monotonic()
        if warm_start is not None:
            self._warm_start(Path(warm_start))
        report = TrainReport()
        held_out: dict[str, tuple[str, list[float], list[float]]] = {}
        optimizer = torch.optim.AdamW(
            self.classifier.parameters(),
            lr=self.config.learning_rate,
            weight_decay=self.config.weight_decay,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            self.classifier.train()
            try:
                for epoch in range(epochs):
                    rows = self._training_rows(cases(), held_out, record=epoch == 0)
                    for batch in batched(rows, max(1, self.config.batch_size)):
                        if max_steps is not None and report.steps >= max_steps:
                            break
                        report.cases_seen += len(batch)
                        texts = [text for text, _, _ in batch]
                        targets = torch.tensor([row[1] for row in batch])
                        mask = torch.tensor([row[2] for row in batch])
                        if not mask.any():
                            continue
                        logits = self._logits(texts)
                        losses = F.binary_cross_entropy_with_logits(
                            logits, targets, reduction="none"
                        )
                        loss = (losses * mask).sum() / mask.sum()
                        optimizer.zero_grad()
                        loss.backward()
                        torch.nn.utils.clip_grad_norm_(
                            self.classifier.parameters(), self.config.max_grad_norm
                        )
                        optimizer.step()
                        report.steps += 1
                        report.losses.append(float(loss.detach()))
                        report.loss_parts.append({"findings": float(loss.detach())})
                        if progress is not None:
                            fraction = report.steps / max_steps if max_steps else epoch / epochs
                            progress(f"step {report.steps} loss {loss.item():.4f}", fraction)
                    if progress is not None:
                        progress(f"epoch {epoch + 1}/{epochs} done", (epoch + 1) / epochs)
                    if max_steps is not None and report.steps >= max_steps:
                        break
            finally:
                self.classifier.eval()
        report.calibration_cases = len(held_out)
        self.config.temperature = self._calibrate(list(held_out.values()))
        report.temperature = self.temperature
        report.seconds = time.monotonic() - started
        return report

    def _calibrate(self, rows: Sequence[tuple[str, list[float], list[float]]]) -> float:
        """The temperature fitted on the held-out rows' labelled logits (1.0 without labels)."""
        if not rows:
            return 1.0
        logits, targets, masks = [], [], []
        with torch.no_grad():
            for batch in batched(rows, max(1, self.config.batch_size)):
                logits.append(self._logits([text for text, _, _ in batch]))
                targets.append(torch.tensor([row[1] for row in batch]))
                masks.append(torch.tensor([row[2] for row in batch]) > 0)
        mask = torch.cat(masks)
        if not mask.any():
            return 1.0
        return fit_temperature(
            torch.cat(logits)[mask].double().numpy(),
            torch.cat(targets)[mask].double().numpy(),
            from_logits=True,
        )

    # -------------------------------------------------------------------------------- store
    def save(self, directory: Path | str) -> dict[str, Any]:
        """Write this version to ``directory`` (must not exist): ``classifier/`` (weights, config
        and tokenizer), ``report/`` when there is a report model, ``config.json`` (this wrapper's
        :class:`LocalCheckpointConfig`) and the manifest. Returns the manifest."""

        def write_files(staging: Path) -> None:
            self.classifier.save_pretrained(staging / CLASSIFIER_DIR)
            self.tokenizer.save_pretrained(staging / CLASSIFIER_DIR)
            if self.report_model is not None:
                self.report_model.save_pretrained(staging / REPORT_DIR)
                self.report_tokenizer.save_pretrained(staging / REPORT_DIR)
            (staging / WRAPPER_CONFIG).write_text(
                json.dumps(self.config.to_json(), indent=2, sort_keys=True)
            )

        return write_version(
            directory, kind=self.kind, finding_classes=self.finding_classes, write_files=write_files
        )

    @classmethod
    def _load(cls, directory: Path, manifest: dict[str, Any]) -> LocalCheckpointModel:
        """Read a version written by :meth:`save` whose checksums have been verified."""
        path = directory / WRAPPER_CONFIG
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"cannot read {path}: {exc}") from exc
        config = LocalCheckpointConfig.from_json(data)
        if list(config.finding_classes) != list(manifest.get("finding_classes", ())):
            raise CheckpointError(f"{path} and the manifest disagree on the finding classes")
        _check_checkpoint_dir(directory / CLASSIFIER_DIR, "saved classifier")
        tokenizer = _load_tokenizer(directory / CLASSIFIER_DIR)
        classifier = _load_classifier(directory / CLASSIFIER_DIR)
        report_model = report_tokenizer = None
        if config.has_report:
            report_model, report_tokenizer = _load_report_model(directory / REPORT_DIR)
        return cls(
            classifier,
            tokenizer,
            config,
            report_model=report_model,
            report_tokenizer=report_tokenizer,
            path=directory,
        )
