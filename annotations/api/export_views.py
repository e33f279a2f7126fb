"""Exports of a project's labels (COCO, findings CSV, reports JSONL, a zip of DICOM SRs, MONAI
detection JSON, NIfTI volumes with their boxes), now or as a model version was trained on them,
for leads, model owners and admins."""

from __future__ import annotations

import tempfile

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from annotations.access import project_for
from annotations.services import exports
from annotations.services.errors import InvalidInput

# Exports are written to a temporary file that moves to disk past this size.
SPOOL_BYTES = 16 * 1024 * 1024
MAX_NUMBER_DIGITS = 9


def _number(request: Request, name: str, what: str) -> int | None:
    """Query parameter ``name`` as a whole number, None when absent; a 400 naming ``what`` it
    must be otherwise."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdecimal() or len(raw) > MAX_NUMBER_DIGITS:
        raise InvalidInput(f"{name} must be {what}, got {raw[:20]!r}.")
    return int(raw)


class ExportView(APIView):
    @extend_schema(
        summary="Export the project's labels",
        description=(
            "The final label per case (latest accepted, else latest submitted annotation, as "
            "submitted), or with `version` the labels that model version was trained on, as "
            "they were then. Formats: " + ", ".join(sorted(exports.FORMATS)) + "."
        ),
        parameters=[
            OpenApiParameter(
                "export_format",
                str,
                OpenApiParameter.PATH,
                enum=sorted(exports.FORMATS),
                description="coco (JSON, 2D boxes), findings-csv, reports-jsonl, sr-zip (DICOM SR,"
                " TID 1500; 3D boxes as SCOORD3D), monai-detection (JSON, 3D boxes in mm),"
                " nifti-zip (CT/MR projects: each series as NIfTI in RAS on its own grid, its"
                " 3D boxes as a label volume and a JSON sidecar in the NIfTI's world mm)",
            ),
            OpenApiParameter(
                "version", int, required=False, description="A model version's number."
            ),
            OpenApiParameter(
                "series",
                int,
                required=False,
                description="nifti-zip only: this series alone (default: every series holding"
                " a 3D box).",
            ),
        ],
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            (200, "application/zip"): OpenApiTypes.BINARY,
            400: OpenApiResponse(
                description="Unknown format (the valid ones are named), a NIfTI export of a 2D"
                " project, a series that is not a regular volume, or series with another format."
            ),
            404: OpenApiResponse(
                description="No such project, model version, or series in the project."
            ),
        },
    )
    def get(self, request: Request, project_pk: int, export_format: str) -> FileResponse:
        project = project_for(request, project_pk, "export", "download")
        fmt = exports.export_format(export_format)
        version = _number(request, "version", "a model version number")
        series_id = _number(request, "series", "a series id")
        # Closed by the response once sent (or here, when the export fails).
        out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        try:
            exports.export_labels(
                project=project,
                format_name=fmt.name,
                out=out,
                version=version,
                series_id=series_id,
                actor=request.user,
                request=request,
            )
        except BaseException:
            out.close()
            raise
        out.seek(0)
        name = exports.export_file_name(project, fmt, version, series_id)
        response = FileResponse(out, as_attachment=True, filename=name)
        response["Content-Type"] = fmt.media_type
        response["Cache-Control"] = "no-store"
        return response
