"""Double reading: agreement between readers, the adjudication queue and final labels."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import permissions
from annotations.access import case_for, project_for, user_of
from annotations.api.serializers import (
    AnnotationInputSerializer,
    AnnotationSerializer,
    CaseDetailSerializer,
)
from annotations.models import DoubleRead
from annotations.services import annotate, double_reading
from annotations.services.errors import InvalidInput
from medloop.pagination import CappedLimitOffsetPagination as LimitOffsetPagination

STATUS_FILTERS = [*DoubleRead.Status.values, "all"]


class DoubleReadSerializer(serializers.ModelSerializer):
    readers = serializers.SerializerMethodField()
    adjudicated_by = serializers.CharField(
        source="adjudicated_by.username", default=None, allow_null=True, read_only=True
    )

    class Meta:
        model = DoubleRead
        fields = [
            "id",
            "case",
            "status",
            "read_a",
            "read_b",
            "readers",
            "box_f1",
            "report_rouge_l",
            "report_edit_distance",
            "findings_differing",
            "reasons",
            "detail",
            "final_annotation",
            "adjudicated_by",
            "adjudicated_at",
            "created_at",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_readers(self, row: DoubleRead) -> list[str]:
        return [row.read_a.annotator.username, row.read_b.annotator.username]


class DoubleReadDetailSerializer(DoubleReadSerializer):
    reads = serializers.SerializerMethodField()
    final = serializers.SerializerMethodField()
    case_detail = serializers.SerializerMethodField()

    class Meta(DoubleReadSerializer.Meta):
        fields = [*DoubleReadSerializer.Meta.fields, "reads", "final", "case_detail"]

    @extend_schema_field(AnnotationSerializer(many=True))
    def get_reads(self, row: DoubleRead) -> list[dict[str, Any]]:
        return [dict(AnnotationSerializer(read).data) for read in (row.read_a, row.read_b)]

    @extend_schema_field(AnnotationSerializer(allow_null=True))
    def get_final(self, row: DoubleRead) -> dict[str, Any] | None:
        if row.final_annotation is None:
            return None
        return dict(AnnotationSerializer(row.final_annotation).data)

    @extend_schema_field(CaseDetailSerializer)
    def get_case_detail(self, row: DoubleRead) -> dict[str, Any]:
        return dict(CaseDetailSerializer(self.context["case"]).data)


class AdjudicationInputSerializer(AnnotationInputSerializer):
    use = serializers.IntegerField(
        required=False, help_text="Adopt this read (its annotation id) as the final label."
    )


def _double_read_for(request: Request, pk: int, action: str) -> DoubleRead:
    row = (
        DoubleRead.objects.select_related(
            "case__project", "read_a__annotator", "read_b__annotator", "adjudicated_by"
        )
        .filter(pk=pk)
        .first()
    )
    if row is None or not permissions.is_member(request.user, row.case.project_id):
        raise NotFound("No such double read, or you are not a member of its project.")
    if not permissions.allowed(request.user, row.case.project_id, "adjudication", action):
        raise PermissionDenied("Adjudication needs the reviewer, lead or admin role.")
    return row


class AgreementView(APIView):
    @extend_schema(
        responses=inline_serializer(
            "ProjectAgreement",
            {
                "cases": serializers.IntegerField(),
                "double_read_cases": serializers.IntegerField(),
                "status_counts": serializers.DictField(child=serializers.IntegerField()),
                "box_f1": serializers.FloatField(allow_null=True),
                "box_f1_per_class": serializers.DictField(child=serializers.DictField()),
                "kappa_per_finding": serializers.DictField(child=serializers.DictField()),
                "report_rouge_l": serializers.FloatField(allow_null=True),
                "report_edit_distance": serializers.FloatField(allow_null=True),
            },
        ),
        description="Agreement between readers on the project's double-read cases.",
    )
    def get(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "adjudication", "view")
        return Response(double_reading.project_agreement(project))


class AdjudicationListView(APIView):
    # The answer is paginated (count, next, previous, results): the schema says so.
    pagination_class = LimitOffsetPagination

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status", enum=STATUS_FILTERS, required=False, description="Default: pending."
            )
        ],
        responses=DoubleReadSerializer(many=True),
    )
    def get(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "adjudication", "view")
        status = request.query_params.get("status", DoubleRead.Status.PENDING)
        if status not in STATUS_FILTERS:
            raise InvalidInput(f"status must be one of {STATUS_FILTERS}, got {status!r}.")
        rows = DoubleRead.objects.filter(case__project=project).select_related(
            "read_a__annotator", "read_b__annotator", "adjudicated_by"
        )
        if status != "all":
            rows = rows.filter(status=status)
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(rows.order_by("created_at", "id"), request, view=self)
        return paginator.get_paginated_response(DoubleReadSerializer(page, many=True).data)


class AdjudicationDetailView(APIView):
    @extend_schema(responses=DoubleReadDetailSerializer)
    def get(self, request: Request, double_read_pk: int) -> Response:
        row = _double_read_for(request, double_read_pk, "view")
        case = case_for(request, row.case_id)  # audited as a view of the case
        return Response(DoubleReadDetailSerializer(row, context={"case": case}).data)


class AdjudicationResolveView(APIView):
    @extend_schema(
        request=AdjudicationInputSerializer,
        responses=AnnotationSerializer,
        description=(
            "Make the final label of a case whose two reads disagree: adopt one read ('use') or"
            " send findings, report and boxes."
        ),
    )
    def post(self, request: Request, double_read_pk: int) -> Response:
        row = _double_read_for(request, double_read_pk, "resolve")
        data = AdjudicationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        boxes = values.get("boxes")
        annotation = double_reading.adjudicate(
            double_read=row,
            adjudicator=user_of(request),
            use=values.get("use"),
            findings=values.get("findings"),
            report=values.get("report"),
            boxes=[annotate.BoxInput(**b) for b in boxes] if boxes is not None else None,
        )
        return Response(AnnotationSerializer(annotation).data)
