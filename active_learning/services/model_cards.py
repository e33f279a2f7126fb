"""A model card per version (issue 16), in Markdown, generated from a finished validation
report: the sections of Model Cards for Model Reporting (Mitchell et al., 2019) and, for each
item of the TRIPOD+AI and CLAIM checklists that the platform can fill in, where it is answered;
the items it cannot know are marked as the study team's to write.

The card travels with the weights: :func:`write_card` writes ``MODEL_CARD.md`` into the
version's directory when the version is registered (:func:`version_card`: before any report,
what training knows, the evaluation sections saying that no report exists yet) and again each
time a report of it finishes (from its newest internal report); :func:`export_archive` is the
version's files and its current card in one zip, what a model owner downloads. The card is not
one of the manifest's files, so it never changes the weights' checksum.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

from active_learning.ml.checkpoints import read_manifest
from active_learning.ml.interface import CheckpointError
from active_learning.models import ModelVersion, ValidationReport
from active_learning.services.report_documents import interval_text

CARD_FILE = "MODEL_CARD.md"

TO_WRITE = "_To be written by the study team._"
HEADLINE = ("findings.auroc_macro", "boxes.map_50", "reports.finding_f1_micro")

# (checklist, item, what it asks, where the card answers it or None: the study team's to write)
CHECKLIST: tuple[tuple[str, str, str, str | None], ...] = (
    ("TRIPOD+AI", "3", "Medical context and rationale", None),
    ("TRIPOD+AI", "5", "Data sources", "Training data; Evaluation data"),
    ("TRIPOD+AI", "6", "Participants, eligibility", None),
    ("TRIPOD+AI", "8", "Outcome and how it was assessed", "Evaluation data (reference standard)"),
    ("TRIPOD+AI", "12", "Model type, building, internal validation", "Model details"),
    ("TRIPOD+AI", "12e", "Performance measures and their uncertainty", "Metrics"),
    ("TRIPOD+AI", "12f", "Fairness: subgroup performance", "Subgroups"),
    ("TRIPOD+AI", "14", "Open science: code, data provenance", "Provenance"),
    ("TRIPOD+AI", "23", "Model performance with confidence intervals", "Metrics"),
    ("TRIPOD+AI", "27", "Interpretation, limitations", "Caveats (partly)"),
    ("CLAIM", "7-8", "Data sources, selection of data subsets", "Training data; Evaluation data"),
    ("CLAIM", "14-18", "Reference standard, annotators, inter-reader variability",
     "Evaluation data (reference standard)"),
    ("CLAIM", "21", "Data partitions (training, validation, test)", "Evaluation data"),
    ("CLAIM", "22-26", "Model, software, initialisation, training", "Model details"),
    ("CLAIM", "28-29", "Metrics, statistical measures of significance and uncertainty", "Metrics"),
    ("CLAIM", "32", "Performance on subgroups", "Subgroups"),
    ("CLAIM", "36", "Failure analysis", "Failures"),
    ("CLAIM", "3", "Clinical role of the AI, intended use", None),
    ("CLAIM", "40", "Registration, protocol, ethics", None),
)  # fmt: skip


def _figures_table(figures: dict[str, Any], names: list[str]) -> list[str]:
    lines = ["| Figure | Value (95 % CI) |", "|---|---|"]
    lines += [f"| `{n}` | {interval_text(figures[n])} |" for n in names if n in figures]
    return lines


def _details(version: ModelVersion) -> list[str]:
    metrics = version.metrics if isinstance(version.metrics, dict) else {}
    settings = {
        key: metrics[key]
        for key in ("starting_point", "pretrained_backbone", "primary")
        if key in metrics
    }
    parent = version.parent.number if version.parent else None
    return [
        "## Model details",
        f"- Kind: `{version.model_kind}`; code: `{version.code_version}`",
        f"- Weights SHA-256: `{version.weights_sha256}`",
        f"- Lineage: parent version {parent} ({version.parent_reason or 'n/a'})",
        f"- Training settings recorded: `{settings}`",
    ]


def _checklist() -> list[str]:
    return [
        "## Reporting checklists",
        "| Checklist | Item | Asks | Answered in |",
        "|---|---|---|---|",
        *(
            f"| {checklist} | {item} | {asks} | {where or TO_WRITE} |"
            for checklist, item, asks, where in CHECKLIST
        ),
        "",
    ]


def training_card(version: ModelVersion) -> str:
    """The card of a version no validation report has measured yet: what training recorded,
    its promotion validation figures (no intervals: that set also chose it, it is no test), and
    the evaluation sections saying that the locked test set's report is still to be made."""
    metrics = version.metrics if isinstance(version.metrics, dict) else {}
    validation = metrics.get("validation") if isinstance(metrics.get("validation"), dict) else {}
    points = sorted(
        (name, value)
        for name, value in (validation or {}).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    )
    no_report = (
        "_No validation report on the locked test set yet: ask for one on the project's "
        "Verification page; this card is written again when it is done._"
    )
    lines = [
        f"# Model card: {version.project.name}, model version {version.number}",
        "",
        "Generated when the version was registered, before any validation report.",
        "",
        *_details(version),
        "",
        "## Intended use",
        TO_WRITE,
        "",
        "## Training data",
        f"- {version.label_count} labels (strategy `{version.strategy or 'n/a'}`); no case of "
        "the locked test set.",
        "",
        "## Evaluation data",
        no_report,
        "",
        "## Metrics",
        "Promotion validation set (point values; it chose this version, so it is no test):",
        "",
        "| Figure | Value |",
        "|---|---|",
        *(f"| `{name}` | {value:.4f} |" for name, value in points),
        "",
        "## Subgroups",
        no_report,
        "",
        "## Failures",
        no_report,
        "",
        "## Caveats",
        "- Not yet measured on the locked test set.",
        f"- Further limitations: {TO_WRITE}",
        "",
        *_checklist(),
    ]
    return "\n".join(lines)


def newest_report(version: ModelVersion) -> ValidationReport | None:
    """The version's newest finished report, an internal one before any external one."""
    done = list(
        ValidationReport.objects.filter(
            model_version=version, status=ValidationReport.Status.SUCCEEDED
        ).select_related("project", "model_version")
    )
    internal = [r for r in done if not r.result.get("external")]
    preferred = internal or done
    return preferred[0] if preferred else None


def version_card(version: ModelVersion) -> str:
    """The version's card now: from its newest finished report, else from training."""
    report = newest_report(version)
    return model_card(report) if report is not None else training_card(version)


def write_card(version: ModelVersion) -> Path:
    """Write (or write again) ``MODEL_CARD.md`` beside the version's weights, atomically."""
    directory = Path(version.weights_path)
    target = directory / CARD_FILE
    handle, staging = tempfile.mkstemp(prefix=f".{CARD_FILE}.", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(version_card(version))
        os.replace(staging, target)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return target


def export_archive(version: ModelVersion, out: BinaryIO) -> list[str]:
    """The version's verified files (weights, manifest, configuration) and its current model
    card as a zip written to ``out``; returns the names written. Refuses (``CheckpointError``)
    files that do not match the registered checksum."""
    manifest = read_manifest(version.weights_path)
    if manifest["checksum"] != version.weights_sha256:
        raise CheckpointError(
            f"model version {version.number}: the files on disk are not the ones registered"
        )
    root = Path(version.weights_path)
    prefix = f"{version.project_id}-v{version.number:04d}"
    names = sorted({*manifest["files"], "manifest.json"})
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.write(root / name, f"{prefix}/{name}")
        archive.writestr(f"{prefix}/{CARD_FILE}", version_card(version))
    return [*names, CARD_FILE]


def export_bytes(version: ModelVersion) -> bytes:
    """:func:`export_archive` in memory."""
    buffer = io.BytesIO()
    export_archive(version, buffer)
    return buffer.getvalue()


def model_card(report: ValidationReport) -> str:
    """The Markdown model card of ``report``'s version, generated from the report."""
    if report.status != ValidationReport.Status.SUCCEEDED:
        raise ValueError(f"report {report.pk} is {report.status}: a card needs a finished report")
    result = report.result
    p = result["provenance"]
    model, test_set, lineage = p["model"], p["test_set"], p["lineage"]
    figures = result["figures"]
    per_finding = sorted(n for n in figures if n.startswith(("findings.", "boxes.", "reports.")))
    small = [
        f"{attribute} = {value} ({group['cases']} cases)"
        for attribute, groups in result["subgroups"].items()
        for value, group in groups.items()
        if group["small"]
    ]
    undefined = sorted(n for n, f in figures.items() if f["value"] is None)
    lines = [
        f"# Model card: {report.project.name}, model version {model['number']}",
        "",
        f"Generated from validation report {report.pk} "
        f"({'external' if result.get('external') else 'internal'} validation).",
        "",
        "## Model details",
        f"- Kind: `{model['kind']}`; code: `{model['code_version']}`",
        f"- Weights SHA-256: `{model['weights_sha256']}`",
        f"- Lineage: parent version {lineage['parent']} ({lineage['parent_reason'] or 'n/a'})",
        f"- Training settings recorded: `{model['settings']}`",
        "",
        "## Intended use",
        TO_WRITE,
        "",
        "## Training data",
        f"- {model['training_labels']} labels (snapshot hash "
        f"`{model['training_label_snapshot_hash']}`); no case of the locked test set.",
        "",
        "## Evaluation data",
        f"- Locked test set version {test_set['version']}, hash `{test_set['content_hash']}`: "
        f"{test_set['labelled']} labelled of {test_set['cases']} cases held out at ingest by a "
        "stratified draw (sex, age band, findings where known), apart from the validation set.",
        f"- Reference standard: {p['adjudicated_labels']} adjudicated labels; labels per "
        f"annotator {p['labels_per_annotator']}; label snapshot hash `{p['label_snapshot_hash']}`.",
        "",
        "## Metrics",
        f"{p['statistics']['method']}, {p['statistics']['resamples']} resamples, seed "
        f"{p['statistics']['seed']}.",
        "",
        *_figures_table(figures, [*HEADLINE, *per_finding]),
        "",
        "## Subgroups",
        "| Attribute | Value | Cases | Small | " + " | ".join(HEADLINE) + " |",
        "|---|---|---|---|" + "---|" * len(HEADLINE),
    ]
    for attribute, groups in result["subgroups"].items():
        for value, group in groups.items():
            cells = [
                interval_text(group["figures"][n]) if n in group["figures"] else "n/a"
                for n in HEADLINE
            ]
            flag = "yes" if group["small"] else ""
            lines.append(
                f"| {attribute} | {value} | {group['cases']} | {flag} | {' | '.join(cells)} |"
            )
    lines += [
        "",
        "## Failures",
        *(
            f"- {finding}: false negatives {[i['case_id'] for i in kinds['false_negatives']]}, "
            f"false positives {[i['case_id'] for i in kinds['false_positives']]}"
            for finding, kinds in result["failures"].items()
        ),
        "",
        "## Caveats",
        f"- Subgroups under {result['min_subgroup_cases']} cases: "
        + (", ".join(small) if small else "none")
        + ".",
        "- Figures undefined on this test set: " + (", ".join(undefined) or "none") + ".",
        f"- Further limitations: {TO_WRITE}",
        "",
        *_checklist(),
    ]
    return "\n".join(lines)
