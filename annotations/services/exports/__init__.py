"""Exports of a project's labels: the final label per case (see :mod:`.labels`), now or as a
model version was trained on it, in one of :data:`FORMATS`.

Every export reads case data, so every export is an audit event (``project.export``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest

from annotations.models import Project
from annotations.services import audit
from annotations.services.errors import InvalidInput
from annotations.services.exports import monai_detection, structured_reports, tables
from annotations.services.exports.labels import (
    LabelSet,
    UnknownModelVersion,
    current_labels,
    snapshot_labels,
)
from annotations.services.exports.structured_reports import StoredImageMissing

__all__ = [
    "FORMATS",
    "ExportFormat",
    "StoredImageMissing",
    "UnknownModelVersion",
    "export_file_name",
    "export_format",
    "export_labels",
]


@dataclass(frozen=True)
class ExportFormat:
    name: str
    media_type: str
    extension: str
    write: Callable[[Project, LabelSet, IO[bytes]], None]


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("coco", "application/json", "json", tables.write_coco),
        ExportFormat("findings-csv", "text/csv; charset=utf-8", "csv", tables.write_findings_csv),
        ExportFormat("reports-jsonl", "application/x-ndjson", "jsonl", tables.write_reports_jsonl),
        ExportFormat("sr-zip", "application/zip", "zip", structured_reports.write_sr_zip),
        ExportFormat(
            "monai-detection", "application/json", "json", monai_detection.write_monai_detection
        ),
    )
}


def export_format(name: str) -> ExportFormat:
    """The format called ``name``; InvalidInput naming the valid ones otherwise."""
    found = FORMATS.get(name)
    if found is None:
        raise InvalidInput(
            f"Unknown export format {name[:40]!r}; valid formats are {sorted(FORMATS)}.",
            formats=sorted(FORMATS),
        )
    return found


def export_file_name(project: Project, fmt: ExportFormat, version: int | None) -> str:
    """e.g. ``project-3-labels-coco.json``, ``project-3-model-v2-labels-sr-zip.zip``."""
    which = f"model-v{version}-labels" if version is not None else "labels"
    return f"project-{project.pk}-{which}-{fmt.name}.{fmt.extension}"


def export_labels(
    *,
    project: Project,
    format_name: str,
    out: IO[bytes],
    version: int | None = None,
    actor: User | AnonymousUser | None = None,
    request: HttpRequest | None = None,
) -> LabelSet:
    """Write the project's final labels (``version=None``), or those model version
    ``version`` was trained on, to ``out`` in format ``format_name``; return what was written.

    Raises InvalidInput for an unknown format, UnknownModelVersion (404) for an unknown
    version, StoredImageMissing when an SR's source image cannot be read. The export is
    audited as ``project.export`` before anything is written."""
    fmt = export_format(format_name)
    label_set = current_labels(project) if version is None else snapshot_labels(project, version)
    audit.record(
        action="project.export",
        actor=actor,
        target=project,
        project_id=project.pk,
        request=request,
        detail={
            "format": fmt.name,
            "version": version,
            "cases": len(label_set.labels),
            "missing": len(label_set.missing),
        },
    )
    fmt.write(project, label_set, out)
    return label_set
