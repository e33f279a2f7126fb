"""The audit trail, for leads and admins."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import selectors
from annotations.api.common import project_for
from annotations.api.serializers import AuditEventSerializer


class AuditEventListView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("action", str, required=False),
            OpenApiParameter("actor", str, required=False),
        ],
        responses=AuditEventSerializer(many=True),
    )
    def get(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "audit", "view")
        events = selectors.audit_events(
            project_id=project.pk,
            action=request.query_params.get("action"),
            actor=request.query_params.get("actor"),
        )
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(AuditEventSerializer(page, many=True).data)
