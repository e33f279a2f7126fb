"""The 3D CT lesion detector behind the suggestion-model contract: MONAI's RetinaNet in 3D
(:mod:`active_learning.ml.ct_detector.network`) on volumes resampled to isotropic voxels and
windowed (:mod:`active_learning.ml.ct_detector.preprocess`).

Cases are :class:`~active_learning.ml.volumes.VolumeInput` (labelled:
:class:`~active_learning.ml.volumes.LabelledVolume`); boxes in and out are the stack's voxels
with a slice range (:class:`~active_learning.ml.volumes.PredictedBox3D`).

- Training: the built-in model's recipe in 3D. Counted in optimisation steps (AdamW, linear
  warm-up then cosine decay, :func:`~active_learning.ml.builtin.model.warmup_cosine`), batches of
  ``batch_size`` patches, one per volume drawn from a shuffle buffer passing over the source as
  often as needed; flips, scale, shift (the crop) and intensity jitter; focal loss and GIoU.
- Inference: MONAI's sliding-window inferer over the whole resampled volume; every candidate
  after NMS is kept (metrics, FROC, acquisition), the boxes shown are those at or above their
  class's operating threshold, for classes whose operating point is reliable.
- Uncertainty for the queue as in 2D (:mod:`active_learning.ml.acquisition`): every candidate's
  score re-centred on its class's threshold; localization instability from a left-right flipped
  pass (1 - the best same-class 3D IoU of the candidate in it); the likely-miss term is the best
  candidate score of a class nothing is shown for (the detector's case-level evidence: there is
  no findings head).
- Operating points: the built-in model's rule on 3D boxes, matched by 3D IoU at ``froc_iou``
  (0.1, :mod:`active_learning.ml.ct_detector.operating_points`); AP by MONAI's detection COCO
  metric; FROC at LUNA16's rates; AP at ``froc_iou`` as the promotion guard recomputes it
  (:mod:`active_learning.ml.paired_bootstrap`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from monai.apps.detection.metrics.coco import COCOMetric
from monai.apps.detection.metrics.matching import matching_batch
from monai.data.box_utils import box_iou
from safetensors.torch import load_model as load_weights
from safetensors.torch import save_model as save_weights

from active_learning.ml import paired_bootstrap
from active_learning.ml.acquisition import box_thresholds, prediction_score
from active_learning.ml.builtin import operating_points as op
from active_learning.ml.builtin.model import shuffled, warmup_cosine
from active_learning.ml.checkpoints import write_version
from active_learning.ml.ct_detector.config import CTDetectorConfig
from active_learning.ml.ct_detector.explain import grad_cam_volume, to_stack_grid
from active_learning.ml.ct_detector.network import BOX_KEY, LABEL_KEY, SCORE_KEY, build_detector
from active_learning.ml.ct_detector.operating_points import fit_box_operating_points_3d
from active_learning.ml.ct_detector.preprocess import (
    PatchSampler,
    PreparedVolume,
    prepare,
    to_model_boxes,
    to_volume_boxes,
)
from active_learning.ml.interface import (
    CaseInput,
    CasePrediction,
    CaseSource,
    CheckpointError,
    LabelledCase,
    ModelInputError,
    PredictedBox,
    ProgressCallback,
    SuggestionModel,
    TrainReport,
    UncertaintyOptions,
    register,
)
from active_learning.ml.metrics.boxes import LUNA16_FROC_RATES, froc, match_candidates
from active_learning.ml.uncertainty import binary_entropy
from active_learning.ml.volumes import PredictedBox3D
from medloop.metrics.boxes import iou_matrix_3d

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
KIND = "ct_retinanet3d"
# Training progress is logged once per this many steps (a "block").
PROGRESS_BLOCK = 25


def _truth_rows(case: LabelledCase, classes: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {"image_id": case.case_id, "finding": b.finding, "x": b.x, "y": b.y, "width": b.width,
         "height": b.height, "z": getattr(b, "z", 0.0), "depth": getattr(b, "depth", 1.0)}
        for b in case.boxes
        if b.finding in classes
    ]  # fmt: skip


def _candidate_rows(case_id: str, prediction: CasePrediction) -> list[dict[str, Any]]:
    return [
        {"image_id": case_id, "finding": b.finding, "x": b.x, "y": b.y, "width": b.width,
         "height": b.height, "z": getattr(b, "z", 0.0), "depth": getattr(b, "depth", 1.0),
         "score": b.score}
        for b in prediction.candidates
    ]  # fmt: skip


def average_precision_3d(
    truth: Sequence[Mapping[str, Any]],
    candidates: Sequence[Mapping[str, Any]],
    classes: Sequence[str],
    *,
    images: Sequence[str],
    iou_thresholds: Sequence[float] = (0.1, 0.5),
) -> dict[str, Any]:
    """AP per class and mean over classes with truth at each 3D IoU of ``iou_thresholds``, by
    MONAI's detection COCO metric (``matching_batch`` + ``COCOMetric``, at most 100 candidates
    per volume). Boxes as :func:`active_learning.ml.metrics.boxes.froc` takes them. Returns
    ``{"ap_10": {cls: AP or None}, "map_10": ..., ...}`` keyed by IoU x 100."""
    index = {name: k for k, name in enumerate(classes)}

    def arrays(rows: list[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        corners = np.array(
            [[r["x"], r["y"], r["z"], r["x"] + r["width"], r["y"] + r["height"],
              r["z"] + r["depth"]] for r in rows], dtype=np.float32,
        ).reshape(-1, 6)  # fmt: skip
        labels = np.array([index[r["finding"]] for r in rows], dtype=np.int64)
        scores = np.array([r.get("score", 1.0) for r in rows], dtype=np.float32)
        return corners, labels, scores

    per_truth = {i: arrays([r for r in truth if r["image_id"] == i]) for i in images}
    per_pred = {i: arrays([r for r in candidates if r["image_id"] == i]) for i in images}
    metric = COCOMetric(
        classes=list(classes), iou_list=list(iou_thresholds), max_detection=[100], verbose=False
    )
    matched = matching_batch(
        iou_fn=box_iou,  # type: ignore[arg-type]  # numpy in, numpy out
        iou_thresholds=list(metric.iou_thresholds),
        pred_boxes=[per_pred[i][0] for i in images],
        pred_classes=[per_pred[i][1] for i in images],
        pred_scores=[per_pred[i][2] for i in images],
        gt_boxes=[per_truth[i][0] for i in images],
        gt_classes=[per_truth[i][1] for i in images],
    )
    values = metric(matched)[0] if images else {}
    has_truth = {r["finding"] for r in truth}
    out: dict[str, Any] = {}
    for threshold in iou_thresholds:
        suffix = f"AP_IoU_{threshold:.2f}_MaxDet_100"
        per_class: dict[str, float | None] = {}
        for name in classes:
            value = values.get(f"{name}_{suffix}")
            valid = value is not None and bool(np.isfinite(value)) and value >= 0
            per_class[name] = (
                float(value) if value is not None and valid and name in has_truth else None
            )
        defined = [v for v in per_class.values() if v is not None]
        key = f"{round(threshold * 100):d}"
        out[f"ap_{key}_per_class"] = per_class
        out[f"map_{key}"] = float(np.mean(defined)) if defined else None
    return out


@register
class CTDetector(SuggestionModel):
    """3D boxes on CT volumes (module docstring). ``CTDetector(config)`` is untrained until
    :meth:`train`."""

    kind = KIND
    # Cases come as the first regular series' volume (active_learning.services.case_inputs).
    reads_volumes: ClassVar[bool] = True

    def __init__(self, config: CTDetectorConfig | None = None) -> None:
        self.config = config or CTDetectorConfig()
        self.finding_classes = tuple(self.config.finding_classes)
        self.detector = build_detector(self.config)
        self.trained = False
        self._operating: dict[str, Any] | None = None
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.detector.to(self.device)

    @classmethod
    def from_settings(
        cls, finding_classes: Sequence[str], settings: Mapping[str, Any]
    ) -> CTDetector:
        """A new model for ``finding_classes`` with a project's model settings overriding the
        defaults (checked against this kind's configuration when they are set:
        ``active_learning.services.loop_settings``); a setting this kind does not have (one
        stored while the project trained the built-in model) is left out."""
        known = set(CTDetectorConfig().to_dict())
        values = {key: value for key, value in settings.items() if key in known}
        values["finding_classes"] = list(finding_classes)
        return cls(CTDetectorConfig.from_dict(values))

    @property
    def training_steps(self) -> int | None:
        return self.config.train_steps

    # ------------------------------------------------------------------ training
    def _class_ids(self, boxes: Iterable[Any]) -> tuple[list[Any], np.ndarray]:
        kept = [b for b in boxes if b.finding in self.finding_classes]
        labels = np.array([self.finding_classes.index(b.finding) for b in kept], dtype=np.int64)
        return kept, labels

    def _patches(self, cases: CaseSource, rng: np.random.Generator) -> Iterator[dict[str, Any]]:
        sampler = PatchSampler(self.config, seed=int(rng.integers(2**31)))
        while True:
            seen = 0
            for case in shuffled(cases(), self.config.shuffle_buffer, rng):
                volume = prepare(case, self.config)  # type: ignore[arg-type]
                boxes, labels = self._class_ids(case.boxes)
                corners = to_model_boxes(boxes, volume.factor)
                seen += 1
                yield sampler.patch(volume, corners, labels)
            if not seen:
                raise ValueError("no labelled volumes to train the CT detector on")

    def train(
        self,
        cases: CaseSource,
        *,
        epochs: int = 1,
        max_steps: int | None = None,
        warm_start: Path | str | None = None,
        progress: ProgressCallback | None = None,
    ) -> TrainReport:
        """Fit on ``cases`` for ``max_steps`` optimisation steps (``config.train_steps`` when
        None), starting from the version in ``warm_start`` when given."""
        config = self.config
        if warm_start is not None:
            self._load_weights(Path(warm_start))
        total = config.train_steps if max_steps is None else max_steps
        rng = np.random.default_rng(config.seed)
        torch.manual_seed(config.seed)
        optimiser = torch.optim.AdamW(
            self.detector.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser,
            lambda step: warmup_cosine(step, total=total, warmup=config.warmup_steps,
                                       final_fraction=config.final_lr_fraction),
        )  # fmt: skip
        report = TrainReport()
        started = time.perf_counter()
        patches = self._patches(cases, rng)
        self.detector.train()
        for step in range(total):
            batch = [next(patches) for _ in range(config.batch_size)]
            images = torch.stack([p["image"] for p in batch]).to(self.device)
            targets = [
                {BOX_KEY: p["box"].to(self.device), LABEL_KEY: p["label"].to(self.device)}
                for p in batch
            ]
            losses = self.detector(images, targets)
            classification = losses[self.detector.cls_key]
            regression = losses[self.detector.box_reg_key]
            loss = classification + regression
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.detector.parameters(), 5.0)
            optimiser.step()
            schedule.step()
            report.losses.append(float(loss.detach()))
            report.loss_parts.append(
                {
                    "box_classification": float(classification.detach()),
                    "box_regression": float(regression.detach()),
                }
            )
            report.cases_seen += len(batch)
            if progress is not None:  # as the built-in model reports: a block, the step, the loss
                progress(f"block {step // PROGRESS_BLOCK + 1}, step {step + 1}", report.losses[-1])
        report.steps = total
        report.seconds = time.perf_counter() - started
        self.trained = self.trained or total > 0
        return report

    # ------------------------------------------------------------------ inference
    def _require_trained(self) -> None:
        if not self.trained:
            raise RuntimeError("the model has not been trained or loaded yet")

    def _detect(self, image: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Corners ``(n, 6)``, class indices and scores of the candidates in a prepared image,
        by MONAI's sliding-window inferer."""
        with torch.no_grad():
            found = self.detector([image.to(self.device)], use_inferer=True)[0]
        return (
            found[BOX_KEY].detach().cpu().numpy().reshape(-1, 6),
            found[LABEL_KEY].detach().cpu().numpy().astype(np.int64),
            found[SCORE_KEY].detach().cpu().numpy().astype(np.float64),
        )

    def _instability(
        self, volume: PreparedVolume, corners: np.ndarray, labels: np.ndarray
    ) -> np.ndarray:
        """Per candidate, 1 - its best same-class 3D IoU among the candidates of the volume
        flipped left-right (mapped back); 1 for one the flipped pass does not find again."""
        if not len(corners):
            return np.zeros(0)
        flipped, flipped_labels, _ = self._detect(torch.flip(volume.image, dims=[1]))
        width = float(volume.image.shape[1])
        back = flipped.copy()
        back[:, 0], back[:, 3] = width - flipped[:, 3], width - flipped[:, 0]
        iou = iou_matrix_3d(corners, back)
        iou = np.where(labels[:, None] == flipped_labels[None, :], iou, 0.0)
        return 1.0 - (iou.max(axis=1) if iou.shape[1] else np.zeros(len(corners)))

    def _shown(self, finding: str, score: float) -> bool:
        if self._operating is None:
            return score >= self.config.suggestion_score_threshold
        point = (self._operating.get("boxes") or {}).get(finding) or {}
        threshold = point.get("threshold")
        return bool(point.get("reliable")) and threshold is not None and score >= threshold

    def predict(
        self, cases: Iterable[CaseInput], *, uncertainty: UncertaintyOptions | None = None
    ) -> list[CasePrediction]:
        self._require_trained()
        options = uncertainty or UncertaintyOptions()
        self.detector.eval()
        predictions = []
        for case in cases:
            volume = prepare(case, self.config)  # type: ignore[arg-type]
            corners, labels, scores = self._detect(volume.image)
            instability = (
                self._instability(volume, corners, labels)
                if options.box_stability
                else np.zeros(len(corners))
            )
            boxes = to_volume_boxes(corners, volume.factor, volume.shape)
            candidates: list[PredictedBox] = [
                _predicted_box(self.finding_classes[int(label)], box, float(score), float(v))
                for box, label, score, v in zip(boxes, labels, scores, instability, strict=True)
            ]
            candidates.sort(key=lambda b: -b.score)
            shown = [b for b in candidates if self._shown(b.finding, b.score)]
            evidence = {
                name: max((b.score for b in candidates if b.finding == name), default=0.0)
                for name in self.finding_classes
            }
            prediction = CasePrediction(
                case_id=case.case_id,
                boxes=shown,
                findings=evidence,
                finding_uncertainty={
                    name: float(binary_entropy(np.array([p]))[0]) for name, p in evidence.items()
                },
                report={},
                report_sentences=[],
                report_uncertainty={},
                case_score=0.0,
                candidates=candidates,
            )
            prediction.case_score = prediction_score(
                prediction,
                thresholds=box_thresholds(self._operating),
                vocab_size=2,
                fallback_threshold=self.config.suggestion_score_threshold,
            )
            predictions.append(prediction)
        return predictions

    def embed(self, cases: Iterable[CaseInput]) -> np.ndarray:
        """The coarsest FPN level averaged over the volume, one vector per case."""
        self._require_trained()
        self.detector.eval()
        vectors = []
        with torch.no_grad():
            for case in cases:
                volume = prepare(case, self.config)  # type: ignore[arg-type]
                divisible = 2 ** (max(self.config.returned_layers) + 1)
                pad = [(-n) % divisible for n in volume.image.shape[1:]]
                image = torch.nn.functional.pad(
                    volume.image[None], (0, pad[2], 0, pad[1], 0, pad[0])
                ).to(self.device)
                extractor: Any = self.detector.network.feature_extractor
                features = extractor(image)
                coarsest = list(features.values())[-1]
                vectors.append(coarsest.mean(dim=(2, 3, 4))[0].cpu().numpy())
        if not vectors:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack(vectors).astype(np.float32)

    def explain(self, case: CaseInput, finding: str) -> np.ndarray:
        """3D Grad-CAM of ``finding`` (:mod:`~active_learning.ml.ct_detector.explain`): a heat
        volume float32 ``(slices, rows, columns)`` in [0, 1] on the case's stack (the slices in
        the stack's order), zero everywhere when no region raises the finding's score."""
        self._require_trained()
        if finding not in self.finding_classes:
            raise ModelInputError(
                f"unknown finding {finding!r}; this model knows {', '.join(self.finding_classes)}"
            )
        volume = prepare(case, self.config)  # type: ignore[arg-type]
        heat = grad_cam_volume(
            self.detector.network,
            volume.image.to(self.device),
            class_index=self.finding_classes.index(finding),
            num_classes=len(self.finding_classes),
            returned_layers=self.config.returned_layers,
        )
        return to_stack_grid(heat, volume.factor, volume.shape)

    # ------------------------------------------------------------------ evaluation
    def _candidates_and_truth(
        self, cases: Iterable[LabelledCase]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str], list[CasePrediction]]:
        truth: list[dict[str, Any]] = []
        candidates: list[dict[str, Any]] = []
        images: list[str] = []
        predictions: list[CasePrediction] = []
        options = UncertaintyOptions(box_stability=False)
        for case in cases:
            prediction = self.predict([case], uncertainty=options)[0]
            truth += _truth_rows(case, self.finding_classes)
            candidates += _candidate_rows(case.case_id, prediction)
            images.append(case.case_id)
            predictions.append(prediction)
        return truth, candidates, images, predictions

    def evaluate(self, cases: Iterable[LabelledCase]) -> dict[str, Any]:
        """On labelled volumes, from every candidate: FROC at LUNA16's rates (3D IoU at least
        ``config.froc_iou``), AP at 3D IoU 0.1 and 0.5 per class (MONAI's COCO metric), and
        what the shown boxes are worth (precision, recall); the operating points under
        ``operating_points``. ``boxes.map_at_match_iou`` (with ``boxes.match_iou``): mean AP at
        3D IoU ``froc_iou`` by the promotion guard's rule (all-point interpolated, every
        candidate: :func:`~active_learning.ml.paired_bootstrap.box_map_at_match_iou`), so that
        the figure a version stores is the one the guard's paired bootstrap recomputes."""
        labelled: list[LabelledCase] = []

        def kept(source: Iterable[LabelledCase]) -> Iterator[LabelledCase]:
            for case in source:
                # The boxes only: the volume is not kept past its prediction.
                labelled.append(
                    LabelledCase(case_id=case.case_id, image=np.zeros((1, 1)), boxes=case.boxes)
                )
                yield case

        truth, candidates, images, predictions = self._candidates_and_truth(kept(cases))
        classes = self.finding_classes
        outcomes = paired_bootstrap.case_outcomes(
            predictions, labelled, classes, match_iou=self.config.froc_iou
        )
        map_at_match = paired_bootstrap.box_map_at_match_iou(outcomes, np.ones(len(labelled)))
        curve = froc(truth, candidates, images=images, rates=LUNA16_FROC_RATES,
                     iou_threshold=self.config.froc_iou)  # fmt: skip
        ap = average_precision_3d(truth, candidates, classes, images=images)
        shown_rows = [
            row for row, shown in zip(candidates, _flat_shown(predictions), strict=True) if shown
        ]
        matched = match_candidates(truth, shown_rows, iou_threshold=self.config.froc_iou)
        shown = len(matched.candidates)
        shown_true = sum(hit for _, _, hit in matched.candidates)
        results: dict[str, Any] = {
            "kind": self.kind,
            "volumes": len(images),
            "froc": {**curve, "iou_threshold": self.config.froc_iou},
            "boxes": {
                **ap,
                "map_at_match_iou": map_at_match,
                "match_iou": self.config.froc_iou,
                "precision_shown": shown_true / shown if shown else None,
                "recall_shown": shown_true / len(truth) if truth else None,
                "shown_boxes": shown,
            },
            "n_ground_truth": len(truth),
            "n_candidates": len(candidates),
        }
        points = self.operating_points()
        if points is not None:
            results["operating_points"] = points
        return results

    # ------------------------------------------------------------------ operating points
    def operating_points(self) -> dict[str, Any] | None:
        return self._operating

    def fit_operating_points(self, cases: Iterable[LabelledCase]) -> dict[str, Any]:
        """Per class, the lowest score whose precision reaches ``box_precision_target`` on the
        validation volumes, candidates matched to truth by 3D IoU at ``froc_iou`` (0.1, as
        LUNA16's evaluation); a class with fewer than ``min_validation_positives`` boxes or AP
        at that IoU under ``min_class_ap`` shows nothing
        (:func:`~active_learning.ml.ct_detector.operating_points.fit_box_operating_points_3d`).
        No findings are prefilled and no report is drafted: the CT detector has neither head."""
        self._require_trained()
        config, classes = self.config, list(self.finding_classes)
        self._operating = None  # predict with the raw candidates, nothing cut yet
        truth, candidates, images, _ = self._candidates_and_truth(cases)
        if not images:
            self._operating = op.unfitted(classes, "no validation labels yet")
            return self._operating
        at = list(dict.fromkeys([config.froc_iou, 0.5]))
        ap = average_precision_3d(truth, candidates, classes, images=images, iou_thresholds=at)
        no_head = op.unfitted(classes, "the CT detector has no findings or report head")
        self._operating = {
            "boxes": fit_box_operating_points_3d(
                truth,
                candidates,
                classes,
                ap_per_class=ap[f"ap_{round(config.froc_iou * 100):d}_per_class"],
                ap50_per_class=ap["ap_50_per_class"],
                iou_threshold=config.froc_iou,
                target=config.box_precision_target,
                min_positives=config.min_validation_positives,
                min_ap=config.min_class_ap,
            ),
            "findings": no_head["findings"],
            "report": no_head["report"],
            "validation_cases": len(images),
            "box_precision_target": config.box_precision_target,
        }
        return self._operating

    # ------------------------------------------------------------------ versions
    def save(self, directory: Path | str) -> dict[str, Any]:
        self._require_trained()

        def write(folder: Path) -> None:
            save_weights(self.detector, str(folder / WEIGHTS_FILE))
            state = {"config": self.config.to_dict(), "operating_points": self._operating}
            (folder / CONFIG_FILE).write_text(json.dumps(state, indent=2, sort_keys=True))

        return write_version(
            directory,
            kind=self.kind,
            finding_classes=self.finding_classes,
            write_files=write,
            extra={"parameters": sum(p.numel() for p in self.detector.parameters())},
        )

    def _load_weights(self, directory: Path) -> None:
        missing, unexpected = load_weights(
            self.detector, str(directory / WEIGHTS_FILE), device=str(self.device)
        )
        if missing or unexpected:
            raise CheckpointError(
                f"{directory}: weights do not fit the configured network "
                f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
            )
        self.trained = True

    @classmethod
    def _load(cls, directory: Path, manifest: dict[str, Any]) -> CTDetector:
        if manifest.get("kind") != cls.kind:
            raise CheckpointError(f"{directory} holds a {manifest.get('kind')!r} model")
        state = json.loads((directory / CONFIG_FILE).read_text())
        model = cls(CTDetectorConfig.from_dict(state["config"]))
        model._load_weights(directory)
        model._operating = state.get("operating_points")
        return model


def _predicted_box(
    finding: str, box: np.ndarray, score: float, instability: float
) -> PredictedBox3D:
    x, y, z, width, height, depth = (float(v) for v in box)
    return PredictedBox3D(
        finding=finding,
        x=x,
        y=y,
        width=width,
        height=height,
        score=score,
        localization_instability=float(np.clip(instability, 0.0, 1.0)),
        class_entropy=float(binary_entropy(np.array([score]))[0]),
        z=z,
        depth=depth,
    )


def _flat_shown(predictions: Sequence[CasePrediction]) -> list[bool]:
    """For every candidate of ``predictions`` in order, whether it is shown."""
    flags = []
    for prediction in predictions:
        shown = {id(b) for b in prediction.boxes}
        flags += [id(b) in shown for b in prediction.candidates]
    return flags
