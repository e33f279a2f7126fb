"""The patient data-use report (issue 17, section 2), as JSON."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from active_learning.services import data_use, data_use_pdf
from annotations.access import project_for, user_of


class DataUseInputSerializer(serializers.Serializer):
    pseudonym = serializers.CharField(max_length=64, required=False, allow_blank=True)
    patient_id = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="hashed, never stored"
    )
    format = serializers.ChoiceField(choices=["json", "pdf"], default="json")


class DataUseReportView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(request=DataUseInputSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, project_pk: int) -> HttpResponse:
        """A patient's data-use report (``format``: json or pdf): cases and images held, who
        viewed them and when, the label snapshots and model versions that used them, withdrawal
        and purge. POST, so that an identifier never appears in an address or a log line."""
        project = project_for(request, project_pk, "data_use", "view")
        body = DataUseInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        report = data_use.report(
            project=project,
            pseudonym=body.validated_data.get("pseudonym", ""),
            identifier=body.validated_data.get("patient_id", ""),
            actor=user_of(request),
            request=request,
        )
        if body.validated_data["format"] == "pdf":
            response = HttpResponse(data_use_pdf.pdf(report), content_type="application/pdf")
            name = f"data-use-{report['patient']['pseudonym']}.pdf"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        return Response(report)
