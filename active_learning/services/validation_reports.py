"""Validation reports (issue 16): a model version's figures on a locked test set version.

:func:`request_report` locks the project's test set as it is now (a changed label makes a new
locked version first), registers a report and queues ``active_learning.validation_report``;
:func:`run_report` (the task) computes it with progress; :func:`compute` is the whole
computation from what the report names (the locked test set's frozen labels, the version's
verified weights, the seed, the resamples and the confidence), so :func:`regenerate` gives the
same result from the same provenance.

What a report holds (``result``):
- ``figures``: every figure of :mod:`active_learning.ml.verification.figures` (per finding at
  the version's operating threshold, per box class AP@0.5 and FROC, calibration, report
  finding F1, the drafts' ROUGE-L and CIDEr-D) with its case-level percentile bootstrap
  interval;
- ``subgroups``: the same per sex, age band (18-39, 40-59, 60-79, 80+), view position,
  manufacturer and site, with counts; a subgroup under the plan's ``min_subgroup_cases`` is
  flagged ``small``, never hidden;
- ``calibration``: a reliability diagram per finding;
- ``failures``: per finding the worst false negatives and false positives, by case id;
- ``provenance``: the test set's version and hash, the label snapshot hash and the labels per
  annotator, the code version, the weights' checksum, the training settings and the lineage.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pydicom
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from pycocoevalcap.rouge.rouge import Rouge

from active_learning.ml import paired_bootstrap as pb
from active_learning.ml.interface import Box, LabelledCase, UncertaintyOptions
from active_learning.ml.verification import subgroups as subgroup_values
from active_learning.ml.verification import text as text_figures
from active_learning.ml.verification.figures import (
    CALIBRATION_BINS,
    VersionOutcomes,
    bootstrap_figures,
    subgroup_figures,
)
from active_learning.ml.verification.resampling import MIN_RESAMPLES
from active_learning.ml.verification.weighted import reliability_diagram
from active_learning.models import LockedTestSet, ModelVersion, TestSetPlan, ValidationReport
from active_learning.services import case_inputs, jobs, model_cards, serving, test_sets, versions
from annotations.models import Case, Project
from annotations.services import audit
from annotations.services.errors import InvalidInput
from annotations.services.ingest import storage_path
from medloop.celery import send_after_commit
from medloop.metrics.text import tokenize_report

Actor = User | AnonymousUser
FORMAT_VERSION = 2
PREDICT_CHUNK = 16
FAILURES_PER_KIND = 5
MAX_RESAMPLES = 20_000


def _whole(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}.", field=name)
    return value


def request_report(
    *,
    version: ModelVersion,
    actor: Actor | None,
    resamples: Any = 2000,
    seed: Any = 0,
    confidence: Any = 0.95,
    source: Project | None = None,
) -> ValidationReport:
    """Lock the test set as it is now and queue a report of ``version`` on it. With ``source``
    (another project), the report is an **external** validation on that project's locked test
    set: its labelled cases, never trained on by this version's project."""
    resamples = _whole(resamples, "resamples", MIN_RESAMPLES, MAX_RESAMPLES)
    seed = _whole(seed, "seed", 0, 2**32 - 1)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise InvalidInput("confidence must be a number.", field="confidence")
    if not 0.5 < float(confidence) < 1:
        raise InvalidInput("confidence must lie between 0.5 and 1.", field="confidence")
    if not version.weights_path:
        raise InvalidInput(f"version {version.number} has no weights to evaluate.")
    project = version.project
    if source is not None and source.pk == project.pk:
        source = None
    with transaction.atomic():
        locked, _ = test_sets.lock(project=source or project, actor=actor)
        if locked.labelled_count == 0:
            raise InvalidInput(
                f"the locked test set (version {locked.version}) has no labelled case yet."
            )
        report = ValidationReport.objects.create(
            project=project,
            model_version=version,
            test_set=locked,
            resamples=resamples,
            seed=seed,
            confidence=float(confidence),
            requested_by=actor if actor is not None and actor.is_authenticated else None,
        )
        audit.record(
            action="validation_report.request",
            actor=actor,
            target=report,
            project_id=project.pk,
            detail={
                "version": version.number,
                "test_set_version": locked.version,
                "test_set_hash": locked.content_hash,
                "external_source": source.pk if source else None,
                "resamples": resamples,
                "seed": seed,
            },
        )
        send_after_commit("active_learning.validation_report", report.pk)
    return report


def _labelled_case(entry: dict[str, Any], case: Case) -> LabelledCase:
    """The frozen reference label of a test case on its image and clinical context."""
    label = entry["label"]
    base = case_inputs.case_input(case)
    instance = case_inputs.first_instance(case)
    return LabelledCase(
        case_id=base.case_id,
        image=base.image,
        indication=base.indication,
        history=base.history,
        labs=base.labs,
        boxes=tuple(
            Box(b["finding"], b["x"], b["y"], b["width"], b["height"])
            for b in label["boxes"]
            if b["instance_id"] == instance.pk and b["frame"] == 1
        ),
        findings={k: case_inputs.FINDING_STATES.get(v) for k, v in label["findings"].items()},
        report={k: v for k, v in label["report"].items() if isinstance(v, str)},
    )


def _attributes(case: Case) -> dict[str, str | None]:
    """The subgroup values of a case: sex from the patient record, the rest from the
    de-identified header of its first image (the site as the keyed code de-identification
    writes in Clinical Trial Site ID: ``annotations.dicom.deidentify.site_code``)."""
    values: dict[str, str | None] = {name: None for name in subgroup_values.ATTRIBUTES}
    values["sex"] = subgroup_values.sex(case.study.patient.sex)
    try:
        instance = case_inputs.first_instance(case)
        header = pydicom.dcmread(storage_path(instance.file_path), stop_before_pixels=True)
    except (case_inputs.CaseNotReadable, OSError, pydicom.errors.InvalidDicomError):
        return values
    values["age_band"] = subgroup_values.age_band(header.get("PatientAge"))
    values["view_position"] = str(header.get("ViewPosition") or "").strip() or None
    values["manufacturer"] = str(header.get("Manufacturer") or "").strip() or None
    values["site"] = str(header.get("ClinicalTrialSiteID") or "").strip() or None
    return values


def _hash(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _thresholds(version: ModelVersion, classes: list[str]) -> dict[str, dict[str, Any]]:
    """Per finding the operating threshold of the version (its prefill threshold, chosen on
    validation labels) and where it comes from; 0.5 where it has none."""
    points = serving.operating_points(version) or {}
    per_finding = points.get("findings") if isinstance(points.get("findings"), dict) else {}
    out: dict[str, dict[str, Any]] = {}
    for key in classes:
        point = per_finding.get(key) if isinstance(per_finding, dict) else None
        value = point.get("prefill_threshold") if isinstance(point, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = {"threshold": float(value), "source": "operating point"}
        else:
            out[key] = {"threshold": 0.5, "source": "default (no operating point)"}
    return out


def _failures(
    outcomes: pb.CaseOutcomes, case_ids: list[int], thresholds: dict[str, dict[str, Any]]
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per finding the worst false negatives (present, lowest probability) and false positives
    (absent, highest probability) at the operating threshold."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for k, key in enumerate(outcomes.classes):
        y, p = outcomes.finding_labels[:, k], outcomes.finding_probabilities[:, k]
        t = thresholds[key]["threshold"]
        missed = np.flatnonzero((y == 1) & (p < t))
        false = np.flatnonzero((y == 0) & (p >= t))
        out[key] = {
            "false_negatives": [
                {"case_id": case_ids[i], "probability": float(p[i])}
                for i in missed[np.argsort(p[missed], kind="stable")][:FAILURES_PER_KIND]
            ],
            "false_positives": [
                {"case_id": case_ids[i], "probability": float(p[i])}
                for i in false[np.argsort(-p[false], kind="stable")][:FAILURES_PER_KIND]
            ],
        }
    return out


def _provenance(
    version: ModelVersion, locked: LockedTestSet, labelled: list[dict[str, Any]], **stats: Any
) -> dict[str, Any]:
    labels = [entry["label"] for entry in labelled]
    per_annotator = Counter(str(label["annotator_id"]) for label in labels)
    metrics = version.metrics if isinstance(version.metrics, dict) else {}
    return {
        "format_version": FORMAT_VERSION,
        "test_set": {
            "version": locked.version,
            "content_hash": locked.content_hash,
            "cases": locked.case_count,
            "labelled": locked.labelled_count,
        },
        "label_snapshot_hash": _hash(labels),
        "labels_per_annotator": dict(sorted(per_annotator.items())),
        "adjudicated_labels": sum(1 for label in labels if label["adjudicated"]),
        "model": {
            "number": version.number,
            "kind": version.model_kind,
            "code_version": version.code_version,
            "weights_sha256": version.weights_sha256,
            "training_labels": version.label_count,
            "training_label_snapshot_hash": _hash(version.label_snapshot),
            "strategy": version.strategy,
            "settings": {
                key: metrics[key]
                for key in ("starting_point", "pretrained_backbone", "primary")
                if key in metrics
            },
        },
        "lineage": {
            "parent": version.parent.number if version.parent else None,
            "parent_reason": version.parent_reason,
        },
        "statistics": {
            "method": "case-level percentile bootstrap",
            **stats,
        },
    }


Progress = Callable[[str, float], None]


def compute(
    *,
    version: ModelVersion,
    locked: LockedTestSet,
    resamples: int,
    seed: int,
    confidence: float,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The report of ``version`` on ``locked`` (module docstring); deterministic in its inputs."""
    step = progress or (lambda stage, percent: None)
    # The test set's own project sets the subgroup floor (another project's, for external ones).
    plan = TestSetPlan.objects.filter(project_id=locked.project_id).first()
    min_cases = plan.min_subgroup_cases if plan else 30
    model = versions.load_version(version)  # checksum verified against the database
    classes = list(model.finding_classes)
    labelled = [entry for entry in locked.content["cases"] if entry["label"] is not None]
    cases = {
        c.pk: c
        for c in Case.objects.filter(pk__in=[e["case_id"] for e in labelled]).select_related(
            "study__patient"
        )
    }
    labelled = [entry for entry in labelled if entry["case_id"] in cases]
    case_ids = [entry["case_id"] for entry in labelled]
    options = UncertaintyOptions(box_stability=False)
    predictions: list[Any] = []
    labels: list[LabelledCase] = []
    for start in range(0, len(labelled), PREDICT_CHUNK):
        chunk = [
            _labelled_case(entry, cases[entry["case_id"]])
            for entry in labelled[start : start + PREDICT_CHUNK]
        ]
        predictions.extend(model.predict(chunk, uncertainty=options))
        labels.extend(chunk)
        step("predicting", 60.0 * min(start + PREDICT_CHUNK, len(labelled)) / len(labelled))
    outcomes = pb.case_outcomes(predictions, labels, classes)
    thresholds = _thresholds(version, classes)
    texts = report_texts(predictions, labels)
    report_scores, corpus = report_figures_input(texts)
    version_outcomes = VersionOutcomes(
        outcomes,
        thresholds={k: v["threshold"] for k, v in thresholds.items()},
        report_scores=report_scores,
        report_corpus=corpus,
    )
    stats: dict[str, Any] = {"resamples": resamples, "seed": seed, "confidence": confidence}
    figures = bootstrap_figures(version_outcomes, **stats)
    step("figures", 70.0)
    attributes = [_attributes(cases[i]) for i in case_ids]
    groups = subgroup_figures(
        version_outcomes,
        {name: [a[name] for a in attributes] for name in subgroup_values.ATTRIBUTES},
        min_cases=min_cases,
        **stats,
    )
    step("subgroups", 95.0)
    return {
        "external": locked.project_id != version.project_id,
        "source_project": {"id": locked.project_id, "name": locked.project.name},
        "cases": len(case_ids),
        "classes": classes,
        "thresholds": thresholds,
        "figures": {name: interval.as_dict() for name, interval in figures.items()},
        "subgroups": groups,
        "min_subgroup_cases": min_cases,
        "calibration": {
            key: reliability_diagram(
                outcomes.finding_labels[:, k],
                outcomes.finding_probabilities[:, k],
                CALIBRATION_BINS,
            )
            for k, key in enumerate(classes)
        },
        "failures": _failures(outcomes, case_ids, thresholds),
        "provenance": _provenance(version, locked, labelled, **stats),
        "outcomes": {
            **outcomes_to_json(outcomes, case_ids),
            "report_texts": texts,
        },
    }


def report_texts(predictions: list[Any], labels: list[LabelledCase]) -> dict[str, list[str | None]]:
    """Per case the reference report and the draft as space-joined :func:`tokenize_report`
    tokens; ``None`` for a case without a reference report (it is left out of the text
    figures). Kept in a report's outcomes, so a comparison scores the same texts."""

    def joined(report: dict[str, str]) -> str:
        return " ".join(tokenize_report(" ".join(str(v) for v in report.values() if v)))

    references: list[str | None] = []
    drafts: list[str | None] = []
    for prediction, case in zip(predictions, labels, strict=True):
        has_report = any(str(v).strip() for v in case.report.values())
        references.append(joined(case.report) if has_report else None)
        drafts.append(joined(prediction.report) if has_report else None)
    return {"references": references, "drafts": drafts}


def report_figures_input(
    texts: dict[str, list[str | None]],
) -> tuple[dict[str, np.ndarray], text_figures.ReportCorpus | None]:
    """From :func:`report_texts`: per case the draft's ROUGE-L (pycocoevalcap's LCS F-measure,
    beta 1.2; NaN without a reference report), whose corpus figure is the mean over the cases,
    and the corpus statistics BLEU-4 and CIDEr-D are recomputed from on every resample (CIDEr-D's
    document frequencies included: :mod:`active_learning.ml.verification.text`)."""
    references, drafts = texts["references"], texts["drafts"]
    with_report = [i for i, reference in enumerate(references) if reference is not None]
    if not with_report:
        return {}, None
    rouge = np.full(len(references), np.nan)
    refs = {k: [references[i]] for k, i in enumerate(with_report)}
    cands = {k: [drafts[i] or ""] for k, i in enumerate(with_report)}
    _, per_case = Rouge().compute_score(refs, cands)
    rouge[np.asarray(with_report)] = np.asarray(per_case, dtype=np.float64)
    return {"rouge_l_f_beta1.2": rouge}, text_figures.report_corpus(references, drafts)


def outcomes_to_json(outcomes: pb.CaseOutcomes, case_ids: list[int]) -> dict[str, Any]:
    """The per-case outcomes a report rests on (what a comparison of two versions resamples)."""

    def floats(array: np.ndarray) -> list[Any]:
        return [[None if np.isnan(v) else float(v) for v in row] for row in array]

    return {
        "case_ids": case_ids,
        "classes": list(outcomes.classes),
        "detection_case": outcomes.detection_case.tolist(),
        "detection_class": outcomes.detection_class.tolist(),
        "detection_score": outcomes.detection_score.tolist(),
        "detection_tp": outcomes.detection_tp.tolist(),
        "truth_counts": outcomes.truth_counts.tolist(),
        "finding_labels": floats(outcomes.finding_labels),
        "finding_probabilities": floats(outcomes.finding_probabilities),
        "report_counts": outcomes.report_counts.tolist(),
    }


def outcomes_from_json(data: dict[str, Any]) -> pb.CaseOutcomes:
    n, c = len(data["case_ids"]), len(data["classes"])

    def floats(rows: list[list[Any]]) -> np.ndarray:
        return np.array(
            [[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64
        ).reshape(n, c)

    return pb.CaseOutcomes(
        classes=tuple(data["classes"]),
        n_cases=n,
        detection_case=np.asarray(data["detection_case"], dtype=np.int64),
        detection_class=np.asarray(data["detection_class"], dtype=np.int64),
        detection_score=np.asarray(data["detection_score"], dtype=np.float64),
        detection_tp=np.asarray(data["detection_tp"], dtype=bool),
        truth_counts=np.asarray(data["truth_counts"], dtype=np.int64).reshape(n, c),
        finding_labels=floats(data["finding_labels"]),
        finding_probabilities=floats(data["finding_probabilities"]),
        report_counts=np.asarray(data["report_counts"], dtype=np.int64).reshape(n, 3),
    )


def run_report(report_id: int) -> ValidationReport | None:
    """Compute a queued report (the task); a finished one is left as it is."""
    report = (
        ValidationReport.objects.select_related("model_version__project", "test_set")
        .filter(pk=report_id)
        .first()
    )
    if report is None or report.status == ValidationReport.Status.SUCCEEDED:
        return report

    progress = jobs.progress_writer(report)
    progress("starting", 0.0)
    try:
        result = compute(
            version=report.model_version,
            locked=report.test_set,
            resamples=report.resamples,
            seed=report.seed,
            confidence=report.confidence,
            progress=progress,
        )
    except Exception as exc:
        jobs.fail(report, exc)
        raise
    with transaction.atomic():
        jobs.succeed(report, result)
        # Every case the report read, in one event.
        audit.record(
            action="validation_report.read_cases",
            target=report,
            project_id=report.project_id,
            detail={"cases": [f["case_id"] for f in report.test_set.content["cases"]][:1000]},
        )
    report.refresh_from_db()
    # The card beside the weights now tells what this report measured.
    model_cards.write_card(report.model_version)
    return report


def regenerate(report: ValidationReport) -> dict[str, Any]:
    """The report computed again from its provenance (what a reviewer checks it against)."""
    return compute(
        version=report.model_version,
        locked=report.test_set,
        resamples=report.resamples,
        seed=report.seed,
        confidence=report.confidence,
    )
