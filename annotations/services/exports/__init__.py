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
from annotations.services.exports import (
    monai_detection,
    nifti_volumes,
    structured_reports,
    tables,
)
from annotations.services.exports.labels import (
    LabelSet,
    UnknownModelVersion,
    current_labels,
    snapshot_labels,
)
from annotations.services.exports.nifti_volumes import UnknownSeries
from annotations.services.exports.structured_reports import StoredImageMissing

__all__ = [
    "FORMATS",
    "ExportFormat",
    "StoredImageMissing",
    "UnknownModelVersion",
    "UnknownSeries",
    "export_file_name",
    "export_format",
    "export_labels",
]


@dataclass(frozen=True)
class ExportFormat:
    """``write(project, labels, out)``; a format that ``takes_series`` also gets ``series_id``
    (None: all series) and first runs ``check(project, series_id)``, which refuses a request
    it cannot serve before the export is audited."""

    name: str
    media_type: str
    extension: str
    write: Callable[..., None]
    takes_series: bool = False
    check: Callable[[Project, int | None], None] | None = None


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
        ExportFormat(
            "nifti-zip",
            "application/zip",
            "zip",
            nifti_volumes.write_nifti_zip,
            takes_series=True,
            check=nifti_volumes.check_request,
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


def export_file_name(
    project: Project, fmt: ExportFormat, version: int | None, series_id: int | None = None
) -> str:
    """e.g. ``project-3-labels-coco.json``, ``project-3-model-v2-labels-sr-zip.zip``,
    ``project-3-series-12-labels-nifti-zip.zip``."""
    which = f"model-v{version}-labels" if version is not None else "labels"
    if series_id is not None:
        which = f"series-{series_id}-{which}"
    return f"project-{project.pk}-{which}-{fmt.name}.{fmt.extension}"


def export_labels(
    *,
    project: Project,
    format_name: str,
    out: IO[bytes],
    version: int | None = None,
    series_id: int | None = None,
    actor: User | AnonymousUser | None = None,
    request: HttpRequest | None = None,
) -> LabelSet:
    """Write the project's final labels (``version=None``), or those model version
    ``version`` was trained on, to ``out`` in format ``format_name``; return what was written.
    ``series_id``: only that series (formats that take one: nifti-zip).

    Raises InvalidInput for an unknown format or a series given to a format without series,
    UnknownModelVersion (404) for an unknown version, UnknownSeries (404) for a series not in
    the project, StoredImageMissing when an SR's source image cannot be read. The export is
    audited as ``project.export`` before anything is written."""
    fmt = export_format(format_name)
    if series_id is not None and not fmt.takes_series:
        raise InvalidInput(
            f"series applies to the nifti-zip export only, not to {fmt.name}.", series=series_id
        )
    if fmt.check is not None:
        fmt.check(project, series_id)
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
            **({"series": series_id} if series_id is not None else {}),
        },
    )
    if fmt.takes_series:
        fmt.write(project, label_set, out, series_id=series_id)
    else:
        fmt.write(project, label_set, out)
    return label_set
