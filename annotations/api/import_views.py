"""Imports of labels made elsewhere (a COCO file from CVAT, Label Studio or another MedLoop),
matched to the project's ingested images, for leads and admins."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.access import project_for, user_of
from annotations.services import imports
from annotations.services.ingest import TooLarge

# Room for the multipart framing and the other fields around the file.
MULTIPART_ALLOWANCE = 1024 * 1024


class CocoImportInputSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="COCO detection JSON (CVAT, Label Studio, MedLoop)")
    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="Report what would be imported; write nothing."
    )
    category_map = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text='JSON object {"coco category name": "finding key"}, tried before matching '
        "names to the schema's keys and display names.",
    )


class UnmatchedImageSerializer(serializers.Serializer):
    file_name = serializers.CharField()
    reason = serializers.CharField()


class SkippedCaseSerializer(serializers.Serializer):
    case_id = serializers.IntegerField()
    reason = serializers.CharField()
    file_names = serializers.ListField(child=serializers.CharField())
    boxes = serializers.IntegerField()


class ImportReportSerializer(serializers.Serializer):
    format = serializers.CharField()
    dry_run = serializers.BooleanField()
    images = serializers.IntegerField(help_text="Images in the file.")
    matched = serializers.IntegerField(help_text="Images matched to an ingested image.")
    matched_by = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Matched images per rule: source_name, sop_instance_uid, original_uid.",
    )
    scaled_images = serializers.IntegerField(
        help_text="Matched images whose size differs from the stored image (boxes scaled)."
    )
    categories = serializers.DictField(
        child=serializers.CharField(), help_text="COCO category name -> finding key."
    )
    imported_cases = serializers.ListField(child=serializers.IntegerField())
    annotation_ids = serializers.ListField(
        child=serializers.IntegerField(), help_text="Empty for a dry run."
    )
    boxes = serializers.IntegerField(help_text="Boxes imported.")
    cases_without_boxes = serializers.IntegerField(
        help_text="Imported cases whose images have no box: every finding absent."
    )
    boxes_not_imported = serializers.IntegerField(
        help_text="Boxes on unmatched images or skipped cases."
    )
    skipped = SkippedCaseSerializer(many=True)
    unmatched = UnmatchedImageSerializer(many=True)


def _refuse_oversized(request: Request) -> None:
    """413 from the Content-Length alone, before the body is read."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError as exc:
        raise ParseError("Content-Length is not a number.") from exc
    limit = imports.max_file_bytes()
    if length > limit + MULTIPART_ALLOWANCE:
        raise TooLarge(f"The upload is {length} bytes; a COCO file may have {limit}.")


def _input(request: Request) -> dict[str, Any]:
    try:
        serializer = CocoImportInputSerializer(data=request.data)
    except RequestDataTooBig as exc:
        raise TooLarge(str(exc)) from exc
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class CocoImportView(APIView):
    # A COCO file may be larger than a JSON body (medloop.security.RequestBodyLimitMiddleware).
    accepts_large_uploads = True
    parser_classes = [MultiPartParser]

    @extend_schema(
        summary="Import box labels from a COCO file",
        description=(
            "Boxes from a COCO detection file (CVAT 'COCO 1.0', Label Studio 'COCO', or a "
            "MedLoop coco export), matched to the project's ingested images by file name, "
            "de-identified SOP Instance UID or original SOP Instance UID, scaled to the stored "
            "image size. Each matched case gets one submitted annotation by the caller (boxes "
            "drawn; findings present where a box is, absent otherwise). Cases already labelled "
            "by a person, leased to another annotator or with a quarantined image are skipped. "
            "All or nothing: any error and nothing is written; `dry_run` writes nothing."
        ),
        request={"multipart/form-data": CocoImportInputSerializer},
        responses={
            201: ImportReportSerializer,
            200: OpenApiResponse(ImportReportSerializer, description="A dry run's report."),
            400: OpenApiResponse(
                description="Not a valid COCO file (its problems listed), an unknown category "
                "(named, with the project's findings), or no image matches."
            ),
            403: OpenApiResponse(description="Only leads and admins import labels."),
            404: OpenApiResponse(description="No such project, or not a member."),
            413: OpenApiResponse(description="The file is over the size limit."),
        },
    )
    def post(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "ingest", "upload")
        _refuse_oversized(request)
        given = _input(request)
        uploaded = given["file"]
        if uploaded.size is not None and uploaded.size > imports.max_file_bytes():
            raise TooLarge(
                f"The COCO file is {uploaded.size} bytes; the limit is {imports.max_file_bytes()}."
            )
        report = imports.import_coco(
            project=project,
            data=uploaded.read(),
            actor=user_of(request),
            category_map=imports.parse_category_map(given.get("category_map")),
            dry_run=given["dry_run"],
            request=request,
        )
        return Response(
            report.as_dict(),
            status=status.HTTP_200_OK if report.dry_run else status.HTTP_201_CREATED,
        )
