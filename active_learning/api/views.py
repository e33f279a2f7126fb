"""Read endpoints for suggestions, model versions and retraining cycles."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from active_learning.api.serializers import (
    ModelVersionSerializer,
    RetrainingCycleSerializer,
    SuggestionSerializer,
)
from active_learning.models import ModelVersion, RetrainingCycle, Suggestion
from annotations.api.common import case_for, project_for


class CaseSuggestionsView(APIView):
    @extend_schema(responses=SuggestionSerializer(many=True))
    def get(self, request: Request, case_pk: int) -> Response:
        case = case_for(request, case_pk, audit_action="case.view_suggestions")
        items = Suggestion.objects.filter(case=case).select_related("model_version")
        return Response(SuggestionSerializer(items, many=True).data)


class ModelVersionListView(APIView):
    @extend_schema(responses=ModelVersionSerializer(many=True))
    def get(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "model", "view")
        items = ModelVersion.objects.filter(project=project)
        return Response(ModelVersionSerializer(items, many=True).data)


class RetrainingCycleListView(APIView):
    @extend_schema(responses=RetrainingCycleSerializer(many=True))
    def get(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "model", "view")
        items = RetrainingCycle.objects.filter(project=project).select_related("triggered_by")
        return Response(RetrainingCycleSerializer(items[:100], many=True).data)
