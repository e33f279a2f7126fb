"""The audit trail: a project's for its leads and admins, every project's (and the logins) for
staff; as JSON pages or as CSV. Filters: action (exact, or ``auth.*``), actor (username), since
and until (ISO 8601 date or date-time; a date ``until`` includes that day), object_type and
object_id; the global list also takes ``project``."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import selectors
from annotations.access import project_for, user_of
from annotations.api.serializers import AuditEventSerializer
from annotations.models import AuditEvent
from annotations.services import audit
from annotations.services.exports.tables import _spreadsheet_safe
from medloop.pagination import CappedLimitOffsetPagination as LimitOffsetPagination

MOMENT_HELP = "ISO 8601 date (2026-12-05) or date-time (2026-12-05T08:00:00Z)"
FILTERS = [
    OpenApiParameter("action", str, description="exact action, or a prefix such as auth.*"),
    OpenApiParameter("actor", str, description="username of who acted"),
    OpenApiParameter("since", str, description=f"from this moment on: {MOMENT_HELP}"),
    OpenApiParameter(
        "until", str, description=f"before this moment (a date: to its end): {MOMENT_HELP}"
    ),
    OpenApiParameter("object_type", str, description="e.g. annotations.Case"),
    OpenApiParameter("object_id", str),
]
PROJECT_FILTER = OpenApiParameter("project", int, description="one project's events only")
CSV_COLUMNS = [
    "time",
    "actor",
    "action",
    "project_id",
    "object_type",
    "object_id",
    "ip_address",
    "user_agent",
    "detail",
]


def _moment(value: str, *, end_of_day: bool) -> datetime:
    """A query's date or date-time as an aware datetime (UTC unless it names its offset)."""
    try:
        day: date | None = parse_date(value)
        moment = None if day is not None else parse_datetime(value)
    except ValueError:
        day = moment = None
    if day is not None:
        moment = datetime.combine(day, time.min, tzinfo=UTC)
        if end_of_day:
            # The day after 9999-12-31 is past datetime.max: that day ends at datetime.max.
            end = datetime.max.replace(tzinfo=UTC)
            moment = moment + timedelta(days=1) if day < date.max else end
    if moment is None:
        raise serializers.ValidationError(f"Use an {MOMENT_HELP}.")
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    try:
        # The database compares in UTC: a moment that UTC cannot hold (9999-12-31T23:00-05:00)
        # is a bad query, not a server error.
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise serializers.ValidationError(f"Use an {MOMENT_HELP} within years 1-9999.") from exc


class AuditFilterSerializer(serializers.Serializer):
    action = serializers.CharField(required=False, max_length=64)
    actor = serializers.CharField(required=False, max_length=150)
    since = serializers.CharField(required=False, max_length=40)
    until = serializers.CharField(required=False, max_length=40)
    object_type = serializers.CharField(required=False, max_length=64)
    object_id = serializers.CharField(required=False, max_length=64)
    project = serializers.IntegerField(required=False, min_value=1)

    def validate_since(self, value: str) -> datetime:
        return _moment(value, end_of_day=False)

    def validate_until(self, value: str) -> datetime:
        return _moment(value, end_of_day=True)


def _filters(request: Request) -> dict[str, Any]:
    query = AuditFilterSerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    return dict(query.validated_data)


def _events(project_id: int | None, filters: dict[str, Any]) -> QuerySet[AuditEvent]:
    return selectors.audit_events(
        project_id=project_id,
        **{k: v for k, v in filters.items() if k != "project"},
    )


def _page(view: APIView, request: Request, events: QuerySet[AuditEvent]) -> Response:
    paginator = LimitOffsetPagination()
    page = paginator.paginate_queryset(events, request, view=view)
    return paginator.get_paginated_response(AuditEventSerializer(page, many=True).data)


class _Echo:
    """A file-like object whose write returns the text, for streaming csv rows."""

    def write(self, value: str) -> str:
        return value


def _csv_rows(events: Iterable[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for event in events:
        row = [
            event.created_at.isoformat(),
            event.actor_username,
            event.action,
            event.project_id if event.project_id is not None else "",
            event.object_type,
            event.object_id,
            event.ip_address or "",
            event.user_agent,
            json.dumps(event.detail, sort_keys=True) if event.detail else "",
        ]
        yield writer.writerow([_spreadsheet_safe(cell) for cell in row])


def _csv_response(
    request: Request,
    *,
    project_id: int | None,
    filters: dict[str, Any],
    filename: str,
) -> StreamingHttpResponse:
    """The filtered events as CSV (cells that a spreadsheet would run as formulas are quoted);
    the download itself is audited as ``audit.export``."""
    events = _events(project_id, filters)
    audit.record(
        action="audit.export",
        actor=user_of(request),
        project_id=project_id,
        request=request,
        detail={k: str(v) for k, v in filters.items()},
    )
    response = StreamingHttpResponse(
        _csv_rows(events.iterator(chunk_size=2000)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


CSV_RESPONSE = {
    (200, "text/csv"): OpenApiResponse(
        response=OpenApiTypes.STR, description="One row per event: " + ", ".join(CSV_COLUMNS)
    )
}


class AuditEventListView(APIView):
    # The answer is paginated (count, next, previous, results): the schema says so.
    pagination_class = LimitOffsetPagination

    @extend_schema(parameters=FILTERS, responses=AuditEventSerializer(many=True))
    def get(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "audit", "view")
        return _page(self, request, _events(project.pk, _filters(request)))


class AuditEventCsvView(APIView):
    renderer_classes = [JSONRenderer]  # errors are JSON; the CSV is streamed as it is

    @extend_schema(
        operation_id="projects_audit_events_csv", parameters=FILTERS, responses=CSV_RESPONSE
    )
    def get(self, request: Request, project_pk: int) -> StreamingHttpResponse:
        project = project_for(request, project_pk, "audit", "view")
        filters = _filters(request)
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        return _csv_response(
            request,
            project_id=project.pk,
            filters=filters,
            filename=f"medloop-audit-project-{project.pk}-{stamp}.csv",
        )


class GlobalAuditEventListView(APIView):
    """Every audit event (logins included), for staff."""

    permission_classes = [IsAdminUser]
    pagination_class = LimitOffsetPagination  # declares the paginated answer in the schema

    @extend_schema(parameters=[*FILTERS, PROJECT_FILTER], responses=AuditEventSerializer(many=True))
    def get(self, request: Request) -> Response:
        filters = _filters(request)
        return _page(self, request, _events(filters.get("project"), filters))


class GlobalAuditEventCsvView(APIView):
    permission_classes = [IsAdminUser]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="audit_events_csv",
        parameters=[*FILTERS, PROJECT_FILTER],
        responses=CSV_RESPONSE,
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        filters = _filters(request)
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        return _csv_response(
            request,
            project_id=filters.get("project"),
            filters=filters,
            filename=f"medloop-audit-{stamp}.csv",
        )
