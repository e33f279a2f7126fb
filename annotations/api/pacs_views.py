"""Pull studies from the project's PACS over DICOMweb (leads and admins)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.access import project_for, user_of
from annotations.dicom.dicomweb import STUDY_QUERY_KEYS
from annotations.services import pacs

MAX_STUDIES_PER_REQUEST = 50


class PacsPullInputSerializer(serializers.Serializer):
    study_instance_uids = serializers.ListField(
        child=serializers.RegexField(r"^[0-9]+(\.[0-9]+)*$", max_length=64),
        required=False,
        max_length=MAX_STUDIES_PER_REQUEST,
    )
    query = serializers.DictField(child=serializers.CharField(max_length=200), required=False)
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_STUDIES_PER_REQUEST, default=20
    )

    def validate_query(self, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - STUDY_QUERY_KEYS)
        if unknown:
            raise serializers.ValidationError(
                f"Unsupported keys {unknown}; use {sorted(STUDY_QUERY_KEYS)}."
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("study_instance_uids") and not attrs.get("query"):
            raise serializers.ValidationError("Give study_instance_uids or query.")
        return attrs


class PacsPullSerializer(serializers.Serializer):
    batch_id = serializers.IntegerField()
    project_id = serializers.IntegerField()
    source = serializers.CharField()  # type: ignore[assignment]
    stored = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    refused = serializers.IntegerField()
    quarantined = serializers.IntegerField()
    finished_at = serializers.CharField(allow_null=True)
    items = serializers.ListField(child=serializers.DictField())


class PacsPullView(APIView):
    @extend_schema(request=PacsPullInputSerializer, responses=PacsPullSerializer)
    def post(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "ingest", "upload")
        data = PacsPullInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        batch = pacs.pull_studies(
            project=project,
            study_instance_uids=data.validated_data.get("study_instance_uids") or None,
            query=data.validated_data.get("query") or None,
            actor=user_of(request),
            limit=data.validated_data["limit"],
        )
        return Response(PacsPullSerializer(pacs.batch_summary(batch)).data)
