"""Getting data in: DICOM uploads (files and zip archives), clinical context imports, and the
ingest reports."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import permissions
from annotations.access import project_for, user_of
from annotations.models import IngestBatch
from annotations.services import batches
from annotations.services.clinical_import import import_clinical_context
from annotations.services.errors import InvalidInput
from annotations.services.fhir_import import import_fhir
from annotations.services.ingest import TooLarge
from medloop.pagination import CappedLimitOffsetPagination as LimitOffsetPagination


class IngestBatchSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(
        source="created_by.username", default=None, allow_null=True, read_only=True
    )

    class Meta:
        model = IngestBatch
        fields = [
            "id",
            "project",
            "source",
            "created_by",
            "created_at",
            "finished_at",
            "stored",
            "duplicates",
            "refused",
            "quarantined",
            "items",
        ]


class UploadInputSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), help_text="DICOM files or zips")


class ClinicalImportInputSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV or JSON, see the README")


def _refuse_oversized(request: Request) -> None:
    """413 from the Content-Length alone, before the body is read (nothing reaches disk)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError as exc:
        raise ParseError("Content-Length is not a number.") from exc
    if length > settings.MEDLOOP_MAX_UPLOAD_BYTES:
        raise TooLarge(
            f"The upload is {length} bytes; the limit is {settings.MEDLOOP_MAX_UPLOAD_BYTES}."
        )


def _files(request: Request, field: str) -> list[Any]:
    try:
        files = request.FILES.getlist(field)
    except RequestDataTooBig as exc:
        raise TooLarge(str(exc)) from exc
    except Exception as exc:  # a malformed multipart body is the client's error
        raise ParseError(f"The multipart body could not be read ({exc}).") from exc
    if not files:
        raise InvalidInput(f"Send the files in the multipart field '{field}'.")
    return files


def _scrubbed_upload_name(name: str | None) -> str:
    """What messages call an uploaded file: its name may hold a patient's name or MRN, so only
    a plain extension survives (it tells CSV from JSON)."""
    extension = (name or "").rsplit(".", 1)[-1].lower() if "." in (name or "") else ""
    return f"the uploaded file.{extension}" if extension in ("csv", "json") else "the uploaded file"


class UploadView(APIView):
    parser_classes = [MultiPartParser]
    # medloop.security.RequestBodyLimitMiddleware: large bodies only here, and only with
    # valid credentials.
    accepts_large_uploads = True

    @extend_schema(
        request={"multipart/form-data": UploadInputSerializer},
        responses={201: IngestBatchSerializer, 413: OpenApiResponse(description="too large")},
        description="Upload DICOM files and/or zip archives: each file is de-identified and "
        "stored, or refused with its reason in the report.",
    )
    def post(self, request: Request, project_pk: int) -> Response:
        _refuse_oversized(request)
        project = project_for(request, project_pk, "ingest", "upload")
        batch = batches.ingest_sources(
            project=project,
            sources=batches.upload_sources(_files(request, "files")),
            source=IngestBatch.Source.UPLOAD,
            actor=user_of(request),
        )
        return Response(IngestBatchSerializer(batch).data, status=status.HTTP_201_CREATED)


class ClinicalImportView(APIView):
    parser_classes = [MultiPartParser]
    accepts_large_uploads = True

    @extend_schema(
        request={"multipart/form-data": ClinicalImportInputSerializer},
        responses={201: IngestBatchSerializer},
        description="Import indication, history and lab results (CSV or JSON) keyed by "
        "accession number or patient ID; unmatched rows are reported.",
    )
    def post(self, request: Request, project_pk: int) -> Response:
        _refuse_oversized(request)
        project = project_for(request, project_pk, "ingest", "upload")
        uploaded = _files(request, "file")[0]
        batch = import_clinical_context(
            project=project,
            data=uploaded.read(),
            file_name=_scrubbed_upload_name(uploaded.name),
            actor=user_of(request),
        )
        return Response(IngestBatchSerializer(batch).data, status=status.HTTP_201_CREATED)


class FhirImportView(APIView):
    parser_classes = [MultiPartParser]
    accepts_large_uploads = True

    @extend_schema(
        request={"multipart/form-data": ClinicalImportInputSerializer},
        responses={201: IngestBatchSerializer},
        description="Import a FHIR R4 Bundle (JSON) or bulk-data NDJSON: Patient, ImagingStudy, "
        "Observation, Condition, DiagnosticReport, DocumentReference and Consent; each "
        "resource is validated by fhir.resources and reported by position.",
    )
    def post(self, request: Request, project_pk: int) -> Response:
        _refuse_oversized(request)
        project = project_for(request, project_pk, "ingest", "upload")
        uploaded = _files(request, "file")[0]
        batch = import_fhir(
            project=project,
            data=uploaded.read(),
            file_name=_scrubbed_upload_name(uploaded.name),
            actor=user_of(request),
        )
        return Response(IngestBatchSerializer(batch).data, status=status.HTTP_201_CREATED)


class IngestBatchListView(APIView):
    # The answer is paginated (count, next, previous, results): the schema says so.
    pagination_class = LimitOffsetPagination

    @extend_schema(responses=IngestBatchSerializer(many=True))
    def get(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "ingest", "upload")
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(project.ingest_batches.all(), request, view=self)
        return paginator.get_paginated_response(IngestBatchSerializer(page, many=True).data)


class IngestBatchDetailView(APIView):
    @extend_schema(responses=IngestBatchSerializer)
    def get(self, request: Request, batch_pk: int) -> Response:
        batch = IngestBatch.objects.filter(pk=batch_pk).first()
        if batch is None or not permissions.is_member(request.user, batch.project_id):
            raise NotFound("No such ingest batch, or you are not a member of its project.")
        project_for(request, batch.project_id, "ingest", "upload")
        return Response(IngestBatchSerializer(batch).data)
