"""A validation report as documents: a PDF for the ethics board (reportlab) and the words its
pages and the HTML page share. Reads a finished report's ``result``; computes nothing."""

from __future__ import annotations

import io
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    LongTable,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)

from active_learning.models import ValidationReport

SUBGROUP_FIGURES = ("findings.auroc_macro", "boxes.map_50", "reports.finding_f1_micro")


def number(value: Any) -> str:
    """A figure as printed: three decimals, "n/a" where it is undefined."""
    return "n/a" if value is None else f"{float(value):.3f}"


def interval_text(figure: dict[str, Any]) -> str:
    """``0.812 (0.771-0.850)``, or the value alone where no interval could be formed."""
    if figure.get("low") is None or figure.get("high") is None:
        return number(figure.get("value"))
    return f"{number(figure['value'])} ({number(figure['low'])}-{number(figure['high'])})"


def figure_rows(result: dict[str, Any]) -> list[list[str]]:
    """Figure name, value with its 95 % interval, resamples used."""
    return [
        [name, interval_text(figure), f"{figure['resamples_used']}/{figure['resamples']}"]
        for name, figure in sorted(result.get("figures", {}).items())
    ]


def difference_rows(comparison: dict[str, Any]) -> list[list[str]]:
    """A comparison's figures: name, the two versions' values, ``a - b`` with its interval and
    the share of resamples where ``a`` is not better."""
    return [
        [
            name,
            number(d["value_a"]),
            number(d["value_b"]),
            interval_text(d["difference"]),
            number(d["p_not_better"]),
        ]
        for name, d in sorted(comparison.get("differences", {}).items())
    ]


def delong_rows(comparison: dict[str, Any]) -> list[list[str]]:
    """DeLong per finding: the AUROC difference with its interval and the p value."""
    rows = []
    for finding, test in sorted(comparison.get("delong", {}).items()):
        if test is None:
            rows.append([finding, "n/a (needs positives and negatives)", "n/a"])
            continue
        interval = {"value": test["difference"], "low": test["low"], "high": test["high"]}
        rows.append([finding, interval_text(interval), number(test["p_value"])])
    return rows


def subgroup_rows(result: dict[str, Any]) -> list[list[str]]:
    """Attribute, value, cases, small flag and the headline figures of each subgroup."""
    rows = []
    for attribute, groups in result.get("subgroups", {}).items():
        for value, group in groups.items():
            figures = group["figures"]
            rows.append(
                [
                    attribute,
                    value,
                    str(group["cases"]),
                    "SMALL" if group["small"] else "",
                    *(
                        interval_text(figures[name]) if name in figures else "n/a"
                        for name in SUBGROUP_FIGURES
                    ),
                ]
            )
    return rows


def provenance_rows(result: dict[str, Any]) -> list[list[str]]:
    p = result.get("provenance", {})
    model, test_set = p.get("model", {}), p.get("test_set", {})
    stats = p.get("statistics", {})
    lineage = p.get("lineage", {})
    return [
        ["Test set", f"version {test_set.get('version')}, {test_set.get('labelled')} labelled "
                     f"of {test_set.get('cases')} cases"],
        ["Test set hash", str(test_set.get("content_hash"))],
        ["Label snapshot hash", str(p.get("label_snapshot_hash"))],
        ["Labels per annotator", ", ".join(f"#{k}: {v}" for k, v in
                                           p.get("labels_per_annotator", {}).items())],
        ["Model version", f"{model.get('number')} ({model.get('kind')})"],
        ["Weights SHA-256", str(model.get("weights_sha256"))],
        ["Code version", str(model.get("code_version"))],
        ["Training labels", f"{model.get('training_labels')} (snapshot "
                            f"{str(model.get('training_label_snapshot_hash'))[:16]})"],
        ["Lineage", f"parent {lineage.get('parent')}: {lineage.get('parent_reason') or 'n/a'}"],
        ["Statistics", f"{stats.get('method')}, {stats.get('resamples')} resamples, seed "
                       f"{stats.get('seed')}, {float(stats.get('confidence', 0)):.0%} intervals"],
    ]  # fmt: skip


def _table(rows: list[list[str]], header: list[str], widths: list[float]) -> LongTable:
    table = LongTable([header, *rows], colWidths=[w * mm for w in widths], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
                ("FONT", (0, 1), (-1, -1), "Helvetica", 7),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def pdf(report: ValidationReport) -> bytes:
    """The report as a PDF: identification, provenance, every figure with its interval,
    subgroups with counts and flags, the worst failures by case."""
    result = report.result
    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=f"Validation report {report.pk}",
        author="MedLoop",
        leftMargin=15 * mm,
        rightMargin=15 * mm,
    )
    version = report.model_version
    kind = "External validation" if result.get("external") else "Validation"
    story: list[Any] = [
        Paragraph(f"{kind} report {report.pk}: model version {version.number}", styles["Title"]),
        Paragraph(
            f"Project {report.project.name}; {result.get('cases')} test cases; "
            f"generated {report.finished_at:%Y-%m-%d %H:%M} UTC."
            if report.finished_at
            else f"Project {report.project.name}.",
            styles["Normal"],
        ),
        Paragraph(
            "External validation on the locked test set of project "
            f"{(result.get('source_project') or {}).get('name')}, never trained on."
            if result.get("external")
            else "Internal validation on the project's locked test set.",
            styles["Normal"],
        ),
        Spacer(1, 4 * mm),
        Paragraph("Provenance", styles["Heading2"]),
        _table(provenance_rows(result), ["Item", "Value"], [40, 140]),
        Paragraph("Figures (95 % case-level bootstrap intervals)", styles["Heading2"]),
        _table(figure_rows(result), ["Figure", "Value (95 % CI)", "Resamples"], [80, 65, 35]),
        Paragraph("Subgroups", styles["Heading2"]),
        Paragraph(
            f"Subgroups under {result.get('min_subgroup_cases')} cases are flagged SMALL.",
            styles["Normal"],
        ),
        _table(
            subgroup_rows(result),
            ["Attribute", "Value", "Cases", "Flag", *SUBGROUP_FIGURES],
            [22, 28, 12, 12, 36, 36, 36],
        ),
        Paragraph("Worst failures at the operating threshold", styles["Heading2"]),
    ]
    failure_rows = [
        [finding, kind.replace("_", " "), str(item["case_id"]), number(item["probability"])]
        for finding, kinds in result.get("failures", {}).items()
        for kind, items in kinds.items()
        for item in items
    ]
    story.append(_table(failure_rows, ["Finding", "Kind", "Case", "Probability"], [45, 45, 30, 30]))
    document.build(story)
    return buffer.getvalue()
