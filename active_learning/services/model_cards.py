"""A model card per version (issue 16), in Markdown, generated from a finished validation
report: the sections of Model Cards for Model Reporting (Mitchell et al., 2019) and, for each
item of the TRIPOD+AI and CLAIM checklists that the platform can fill in, where it is answered;
the items it cannot know are marked as the study team's to write."""

from __future__ import annotations

from typing import Any

from active_learning.models import ValidationReport
from active_learning.services.report_documents import interval_text

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


def model_card(report: ValidationReport) -> str:
    """The Markdown model card of ``report``'s version, generated from the report."""
    if report.status != ValidationReport.Status.SUCCEEDED:
        raise ValueError(f"report {report.pk} is {report.status}: a card needs a finished report")
    result = report.result
    p = result["provenance"]
    model, test_set, lineage = p["model"], p["test_set"], p["lineage"]
    figures = result["figures"]
    per_finding = sorted(n for n in figures if n.startswith(("findings.", "boxes.")))
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
        "## Reporting checklists",
        "| Checklist | Item | Asks | Answered in |",
        "|---|---|---|---|",
        *(
            f"| {checklist} | {item} | {asks} | {where or TO_WRITE} |"
            for checklist, item, asks, where in CHECKLIST
        ),
        "",
    ]
    return "\n".join(lines)
