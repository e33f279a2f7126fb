"""The patient data-use report (annotations' consent, issue 17) as a PDF for the data
protection officer (reportlab). Renders the JSON report of :mod:`data_use`; computes nothing."""

from __future__ import annotations

import io
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle


def _table(header: list[str], rows: list[list[str]]) -> LongTable:
    table = LongTable([header, *rows] if rows else [header, ["none"] + [""] * (len(header) - 1)])
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
                ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def pdf(report: dict[str, Any]) -> bytes:
    """The report as PDF bytes: patient status, cases and images, viewers, label snapshots
    and model versions."""
    styles = getSampleStyleSheet()
    patient = report["patient"]
    out = io.BytesIO()
    document = SimpleDocTemplate(
        out, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, title="Patient data-use report"
    )
    story: list[Any] = [
        Paragraph("Patient data-use report", styles["Title"]),
        Paragraph(
            f"Project {report['project']['name']} (id {report['project']['id']}); patient "
            f"{patient['pseudonym']}; generated {report['generated_at']}.",
            styles["Normal"],
        ),
        Spacer(1, 4 * mm),
        Paragraph("Consent", styles["Heading2"]),
        _table(
            ["status", "date", "source", "withdrawn at", "purged at"],
            [
                [
                    patient["consent_status"],
                    str(patient["consent_date"] or ""),
                    str(patient["consent_source"] or ""),
                    str(patient["withdrawn_at"] or ""),
                    str(patient["purged_at"] or ""),
                ]
            ],
        ),
        Paragraph("Cases and images held", styles["Heading2"]),
        _table(
            ["case", "study date (shifted)", "age band", "images (file held)", "labels"],
            [
                [
                    str(case["case"]),
                    str(case["study_date_shifted"] or ""),
                    case["age_band"],
                    ", ".join(
                        f"{i['image']} ({'yes' if i['file_held'] else 'deleted'})"
                        for i in case["images"]
                    ),
                    ", ".join(f"{a['annotation']} by {a['annotator']}" for a in case["labels"]),
                ]
                for case in report["cases"]
            ],
        ),
        Paragraph("Deleted by the purge", styles["Heading2"]),
        _table(
            ["cases", "images", "labels"],
            [[str(len(report["deleted_by_purge"][key])) for key in ("cases", "images", "labels")]],
        ),
        Paragraph("Who viewed them", styles["Heading2"]),
        _table(
            ["when", "user", "action", "object", "address"],
            [
                [
                    row["at"],
                    str(row["user"] or "(system)"),
                    row["action"],
                    f"{row['object_type']} {row['object_id']}",
                    str(row["address"] or ""),
                ]
                for row in report["viewed_by"]
            ],
        ),
        Paragraph("Label snapshots and model versions", styles["Heading2"]),
        _table(
            ["cycle", "created", "status", "labels used"],
            [
                [str(s["cycle"]), s["created_at"], s["status"], str(len(s["labels_used"]))]
                for s in report["label_snapshots"]
            ],
        ),
        Spacer(1, 2 * mm),
        _table(
            ["model version", "created", "status", "labels used"],
            [
                [str(v["model_version"]), v["created_at"], v["status"], str(len(v["labels_used"]))]
                for v in report["model_versions"]
            ],
        ),
    ]
    document.build(story)
    return out.getvalue()
