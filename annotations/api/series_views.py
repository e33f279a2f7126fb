"""A series of a case as one stack of slices for the viewer: instance ids in order along the
slice normal, spacings, and what makes the series irregular. Each read is audited."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import series_stacks
from annotations.access import case_for
from annotations.models import Series


class SeriesStackSerializer(serializers.Serializer):
    series_id = serializers.IntegerField()
    modality = serializers.CharField()
    instance_ids = serializers.ListField(child=serializers.IntegerField())
    sorted_by = serializers.ChoiceField(choices=["position", "instance_number"])
    positions = serializers.ListField(
        child=serializers.FloatField(), help_text="mm along the slice normal, in order"
    )
    normal = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    slice_spacing = serializers.FloatField(allow_null=True, help_text="mm between slices")
    pixel_spacing = serializers.ListField(
        child=serializers.FloatField(), allow_null=True, help_text="mm between rows, columns"
    )
    slice_thickness = serializers.FloatField(allow_null=True)
    rows = serializers.IntegerField(allow_null=True)
    columns = serializers.IntegerField(allow_null=True)
    regular = serializers.BooleanField(help_text="false: the slices do not form one volume")
    problems = serializers.ListField(child=serializers.CharField())


class SeriesStackView(APIView):
    @extend_schema(
        responses=SeriesStackSerializer,
        description="The series' slices ordered by ImagePositionPatient along the normal of "
        "ImageOrientationPatient (not InstanceNumber), with slice spacing; an irregular series "
        "(missing slices, varying spacing, mixed orientations, a slice of another size) lists "
        "its problems and has regular=false.",
    )
    def get(self, request: Request, case_pk: int, series_pk: int) -> Response:
        case = case_for(request, case_pk, audit_action="case.series_stack", with_context=False)
        series = Series.objects.filter(pk=series_pk, study_id=case.study_id).first()
        if series is None:
            raise NotFound(f"Case {case.pk} has no series {series_pk}.")
        stack = series_stacks.stack_of(series)
        data = {
            "series_id": series.pk,
            "modality": series.modality,
            "instance_ids": stack.instance_ids,
            "sorted_by": stack.sorted_by,
            "positions": stack.positions,
            "normal": list(stack.normal) if stack.normal else None,
            "slice_spacing": stack.slice_spacing,
            "pixel_spacing": list(stack.pixel_spacing) if stack.pixel_spacing else None,
            "slice_thickness": stack.slice_thickness,
            "rows": stack.rows,
            "columns": stack.columns,
            "regular": stack.regular,
            "problems": stack.problems,
        }
        return Response(SeriesStackSerializer(data).data)
