"""Cases of a project, and one case with its clinical context and images."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import selectors
from annotations.access import case_for, project_for
from annotations.api.serializers import CaseDetailSerializer, CaseSummarySerializer
from annotations.models import Case
from annotations.services.errors import InvalidInput
from medloop.pagination import CappedLimitOffsetPagination as LimitOffsetPagination


class CaseListView(APIView):
    # The answer is paginated (count, next, previous, results): the schema says so.
    pagination_class = LimitOffsetPagination

    @extend_schema(
        parameters=[OpenApiParameter("state", enum=Case.State.values, required=False)],
        responses=CaseSummarySerializer(many=True),
    )
    def get(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "case", "list")
        state = request.query_params.get("state")
        if state and state not in Case.State.values:
            raise InvalidInput(f"state must be one of {Case.State.values}.")
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(
            selectors.cases_of(project, state=state), request, view=self
        )
        return paginator.get_paginated_response(CaseSummarySerializer(page, many=True).data)


class CaseDetailView(APIView):
    @extend_schema(responses=CaseDetailSerializer)
    def get(self, request: Request, case_pk: int) -> Response:
        return Response(CaseDetailSerializer(case_for(request, case_pk)).data)
