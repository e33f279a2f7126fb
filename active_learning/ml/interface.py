"""The suggestion-model contract: what every model MedLoop can train and serve must do.

In the spirit of MONAI Label's ``InferTask``/``TrainTask``: the retraining cycle, the scoring
task and the benchmarks talk to :class:`SuggestionModel` only; which model a project uses is a
name in :data:`MODEL_KINDS`. Pure Python and torch, never Django.

Coordinates are pixels of the case's first image, top-left origin, ``x, y, width, height``.
Images go in as stored values (``(rows, columns)``, any numeric dtype, grayscale); a model does
its own resizing and intensity normalisation and maps its boxes back to the input's pixels.

A version on disk is a directory written by :meth:`SuggestionModel.save`; writing, verifying
and loading one is :mod:`active_learning.ml.checkpoints` (``write_version``, ``read_manifest``,
``load_model``), which raises :class:`CheckpointError` for a directory that does not match.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


class ModelInputError(ValueError):
    """A case the model cannot read; the message names the case and what is wrong."""


class CheckpointError(RuntimeError):
    """A saved version that is missing, altered or of another format."""


@dataclass(frozen=True)
class LabValue:
    """One laboratory result: LOINC ``code``, ``value`` (None when missing) and its reference
    range (either bound may be missing, e.g. CRP has only an upper bound in practice)."""

    code: str
    value: float | None
    low: float | None = None
    high: float | None = None
    unit: str = ""
    name: str = ""


@dataclass(frozen=True)
class Box:
    """A ground-truth lesion box in pixels."""

    finding: str
    x: float
    y: float
    width: float
    height: float


@dataclass
class CaseInput:
    """What a model sees of one case: the image plus the clinical context."""

    case_id: str
    image: np.ndarray  # (rows, columns), stored values, grayscale
    indication: str = ""
    history: str = ""
    labs: Sequence[LabValue] = ()
    pixel_spacing_mm: float | None = None

    @property
    def clinical_text(self) -> str:
        return " ".join(part.strip() for part in (self.indication, self.history) if part.strip())


@dataclass
class LabelledCase(CaseInput):
    """A case with its accepted labels: boxes, case-level findings (True present, False absent,
    None uncertain or not read) and the report by section (``findings``, ``impression``)."""

    boxes: Sequence[Box] = ()
    findings: dict[str, bool | None] = field(default_factory=dict)
    report: dict[str, str] = field(default_factory=dict)


@dataclass
class PredictedBox:
    """A suggested box: ``score`` in [0, 1], the box's confidence (for the built-in model the
    detector's score fused with the case's finding probability); ``localization_instability`` =
    1 - mean IoU of the boxes matched to it across test-time flips and rescales (0 stable, 1 not
    found again); ``class_entropy`` in nats, of the box's class score (or, with MC dropout, its
    BALD); ``detector_score``: the detector's own score, where it differs from ``score``."""

    finding: str
    x: float
    y: float
    width: float
    height: float
    score: float
    localization_instability: float = 0.0
    class_entropy: float = 0.0
    detector_score: float | None = None


@dataclass
class ReportSentence:
    """One sentence of the draft and what it came from: the findings it states as present and,
    when one of those findings has a predicted box, the index of that box in ``boxes``."""

    section: str
    text: str
    findings: list[str] = field(default_factory=list)
    box_index: int | None = None


@dataclass
class CasePrediction:
    """A model's suggestion for one case, with its uncertainty.

    ``boxes``: the boxes shown to annotators (score at or above the class's operating threshold,
    for classes whose operating point is reliable; see :meth:`SuggestionModel.
    fit_operating_points`). ``candidates``: every detector candidate after NMS, low scores
    included (for metrics and acquisition, never for display); ``boxes`` is a subset of it.
    ``findings``: calibrated probability per class. ``finding_uncertainty``: per class, BALD
    (mutual information, nats) under MC dropout when it ran, else the binary entropy of the
    calibrated probability. ``report_uncertainty``: ``mean_token_entropy`` and ``nll`` (nats per
    token) of the greedy draft, ``mc_disagreement`` (1 - mean pairwise ROUGE-L of MC-dropout
    drafts) when it ran. ``case_score`` in [0, 1] combines them (higher = more worth labelling).
    """

    case_id: str
    boxes: list[PredictedBox]
    findings: dict[str, float]
    finding_uncertainty: dict[str, float]
    report: dict[str, str]
    report_sentences: list[ReportSentence]
    report_uncertainty: dict[str, float]
    case_score: float
    warnings: list[str] = field(default_factory=list)
    # The case's vector as :meth:`SuggestionModel.embed` gives it, when predicting computed it
    # on the way (saves a second pass for diversity sampling); None otherwise.
    embedding: np.ndarray | None = None
    candidates: list[PredictedBox] = field(default_factory=list)
    # The model's own probability per class before any calibration (its temperature, a mix
    # with the detector's evidence), when it has one: evaluation's "ECE before". None: the
    # served ``findings`` with the model's temperature undone.
    uncalibrated_findings: dict[str, float] | None = None

    def as_suggestion(self, max_candidates: int = 100) -> dict[str, Any]:
        """The JSON of ``active_learning.Suggestion``: boxes (shown), findings, draft,
        uncertainty (with ``candidates``: every candidate box, best first, at most
        ``max_candidates``)."""

        def entry(box: PredictedBox, box_id: str) -> dict[str, Any]:
            data = asdict(box)
            data["id"] = box_id
            data["uncertainty"] = {
                "localization_instability": box.localization_instability,
                "class_entropy": box.class_entropy,
            }
            return data

        boxes = [entry(box, f"s{index}") for index, box in enumerate(self.boxes)]
        ranked = sorted(self.candidates, key=lambda box: -box.score)[:max_candidates]
        candidates = [entry(box, f"c{index}") for index, box in enumerate(ranked)]
        return {
            "boxes": boxes,
            "finding_probabilities": dict(self.findings),
            "report_draft": dict(self.report),
            "uncertainty": {
                "case_score": self.case_score,
                "findings": dict(self.finding_uncertainty),
                "report": dict(self.report_uncertainty),
                "report_links": [asdict(s) for s in self.report_sentences],
                "warnings": list(self.warnings),
                "candidates": candidates,
            },
        }


@dataclass(frozen=True)
class UncertaintyOptions:
    """Which uncertainty estimates :meth:`SuggestionModel.predict` computes. ``box_stability``
    runs test-time views (a flip and rescales of the input) and so costs several detector
    passes: Celery scoring asks for it, an interactive suggestion should not. MC dropout
    (``mc_samples`` > 0) costs that many extra passes of the heads and, with
    ``mc_report_drafts`` > 0, that many extra report generations."""

    box_stability: bool = True
    mc_samples: int = 0
    mc_report_drafts: int = 0


@dataclass
class TrainReport:
    """What one :meth:`SuggestionModel.train` call did: loss per step (and its parts), the cases
    seen, seconds, and the calibration temperature fitted on the held-out cases."""

    steps: int = 0
    cases_seen: int = 0
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    loss_parts: list[dict[str, float]] = field(default_factory=list)
    temperature: float = 1.0
    calibration_cases: int = 0


# A re-iterable source of labelled cases: each call starts a new pass (one epoch). Training
# streams from it and never holds the whole set in memory.
CaseSource = Callable[[], Iterable[LabelledCase]]
ProgressCallback = Callable[[str, float], None]


class SuggestionModel(abc.ABC):
    """A model that learns from labelled cases and suggests boxes, findings and a report."""

    kind: ClassVar[str]
    finding_classes: tuple[str, ...]

    @abc.abstractmethod
    def train(
        self,
        cases: CaseSource,
        *,
        epochs: int = 1,
        max_steps: int | None = None,
        warm_start: Path | str | None = None,
        progress: ProgressCallback | None = None,
    ) -> TrainReport:
        """Fit on ``cases`` (optionally starting from the version saved in ``warm_start``)."""

    @abc.abstractmethod
    def predict(
        self, cases: Iterable[CaseInput], *, uncertainty: UncertaintyOptions | None = None
    ) -> list[CasePrediction]:
        """Suggestions with uncertainty for a batch of cases, in input order."""

    @abc.abstractmethod
    def embed(self, cases: Iterable[CaseInput]) -> np.ndarray:
        """One float32 vector per case, ``(n_cases, dim)``, for diversity sampling."""

    @abc.abstractmethod
    def save(self, directory: Path | str) -> dict[str, Any]:
        """Write this version to ``directory`` (created; must not exist); returns the manifest."""

    @classmethod
    @abc.abstractmethod
    def _load(cls, directory: Path, manifest: dict[str, Any]) -> SuggestionModel:
        """Read a version whose checksums :func:`load_model` has verified."""

    def explain(self, case: CaseInput, finding: str) -> np.ndarray:
        """A heatmap ``(rows, columns)`` in [0, 1] over the case's image for ``finding``."""
        raise NotImplementedError(f"{self.kind} models do not explain their findings")

    def evaluate(self, cases: Iterable[LabelledCase]) -> dict[str, Any]:
        """Box mAP, finding AUROC/calibration and report metrics on labelled cases; with the
        version's operating points under ``operating_points`` when it has fitted them."""
        from active_learning.ml.evaluate import evaluate_model  # evaluate imports this module

        results = evaluate_model(self, cases)
        points = self.operating_points()
        if points is not None:
            results["operating_points"] = points
        return results

    def fit_operating_points(self, cases: Iterable[LabelledCase]) -> dict[str, Any]:
        """Choose, on validation labels, what this version may show (per class box thresholds
        for a precision target, finding prefill thresholds, whether report drafts may be shown)
        and keep them so that :meth:`save` stores them and :meth:`predict` applies them.

        Returns ``{"boxes": {cls: {"threshold", "validation_positives", "ap50", "precision",
        "recall", "reliable", "reason"}}, "findings": {cls: {"prefill_threshold", "reliable",
        "positives", ...}}, "report": {"metric", "value", "floor", "reliable"}}``. With no
        validation case nothing is reliable. Models without operating points return ``{}``."""
        return {}

    def operating_points(self) -> dict[str, Any] | None:
        """The fitted operating points (see :meth:`fit_operating_points`), None if never fitted."""
        return None

    @classmethod
    def from_settings(
        cls, finding_classes: Sequence[str], settings: Mapping[str, Any]
    ) -> SuggestionModel:
        """A new, untrained model of this kind for ``finding_classes``, ``settings`` (a
        project's model settings) overriding the kind's defaults; TypeError or ValueError names
        a setting it does not take. A kind that needs more than settings to be built (a
        hospital's checkpoint files) keeps this default, which refuses."""
        raise NotImplementedError(f"{cls.kind} models are not built from a project's settings")

    def refuses_to_build_on(self, directory: Path | str) -> str | None:
        """Why this (untrained, configured) model should not warm-start from the version saved
        in ``directory``, in words, or None when it may. A cycle then starts over from its cold
        start. The default accepts every version of its own kind."""
        return None

    @property
    def training_steps(self) -> int | None:
        """The optimisation steps :meth:`train` takes by this model's settings when given
        neither ``epochs`` nor ``max_steps``; None when the kind trains by epochs."""
        return None


MODEL_KINDS: dict[str, type[SuggestionModel]] = {}


def register(cls: type[SuggestionModel]) -> type[SuggestionModel]:
    """Class decorator: make a model kind loadable by name."""
    MODEL_KINDS[cls.kind] = cls
    return cls


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of at most ``size`` items, in order (streaming)."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
