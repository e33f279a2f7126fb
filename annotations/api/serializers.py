"""Input and output serializers for the annotations API. No business logic here."""

from __future__ import annotations

import math
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotations.api import project_parts
from annotations.models import (
    Annotation,
    AuditEvent,
    Box,
    Case,
    Instance,
    LabResult,
    Membership,
    Modality,
    Project,
    Role,
    Series,
    ShownSuggestion,
)

# --- output ---------------------------------------------------------------------------------


class ProjectSerializer(serializers.ModelSerializer):
    """A project, with the parts other apps add to it (``project_parts``: the loop's
    settings)."""

    my_roles = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "description",
            "modality",
            "label_schema",
            "double_read_fraction",
            "adjudication_box_f1",
            "adjudication_report_rouge",
            "validation_fraction",
            "lease_seconds",
            "eligibility_rules",
            "requires_ethics_approval",
            "created_at",
            "my_roles",
        ]
        read_only_fields = ["requires_ethics_approval"]

    def get_my_roles(self, project: Project) -> list[str]:
        from annotations.permissions import roles_in

        request = self.context.get("request")
        return sorted(roles_in(request.user, project.pk)) if request else []

    def to_representation(self, instance: Project) -> dict[str, Any]:
        return {**super().to_representation(instance), **project_parts.read_parts(instance)}


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "created_at"]


class InstanceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Instance
        fields = [
            "id",
            "sop_instance_uid",
            "instance_number",
            "rows",
            "columns",
            "number_of_frames",
            "photometric_interpretation",
            "sha256",
        ]


class SeriesSerializer(serializers.ModelSerializer):
    instances = serializers.SerializerMethodField()

    class Meta:
        model = Series
        fields = [
            "id",
            "series_instance_uid",
            "modality",
            "series_number",
            "description",
            "body_part",
            "instances",
        ]

    @extend_schema_field(InstanceSerializer(many=True))
    def get_instances(self, series: Series) -> list[dict[str, object]]:
        visible = [i for i in series.instances.all() if not i.quarantined]
        return list(InstanceSerializer(visible, many=True).data)


class LabResultSerializer(serializers.ModelSerializer):
    out_of_range = serializers.BooleanField(read_only=True)

    class Meta:
        model = LabResult
        fields = [
            "code",
            "name",
            "value",
            "value_text",
            "unit",
            "reference_low",
            "reference_high",
            "observed_at",
            "out_of_range",
        ]


class CaseSummarySerializer(serializers.ModelSerializer):
    leased_to = serializers.CharField(
        source="leased_to.username", default=None, allow_null=True, read_only=True
    )

    class Meta:
        model = Case
        fields = [
            "id",
            "project",
            "state",
            "priority",
            "required_reads",
            "is_validation",
            "leased_to",
            "lease_expires_at",
            "created_at",
        ]


class CaseDetailSerializer(CaseSummarySerializer):
    patient = serializers.CharField(source="study.patient.pseudonym", read_only=True)
    study_instance_uid = serializers.CharField(source="study.study_instance_uid", read_only=True)
    study_date = serializers.DateField(source="study.study_date", read_only=True)
    study_description = serializers.CharField(source="study.description", read_only=True)
    series = SeriesSerializer(source="study.series", many=True, read_only=True)
    lab_results = LabResultSerializer(many=True, read_only=True)

    class Meta(CaseSummarySerializer.Meta):
        fields = [
            *CaseSummarySerializer.Meta.fields,
            "patient",
            "study_instance_uid",
            "study_date",
            "study_description",
            "indication",
            "history",
            "lab_results",
            "series",
        ]


class BoxSerializer(serializers.ModelSerializer):
    instance_id = serializers.IntegerField()
    series_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Box
        fields = [
            "id",
            "instance_id",
            "frame",
            "x",
            "y",
            "width",
            "height",
            "finding",
            "origin",
            "suggestion_box_id",
            "series_id",
            "slice_first",
            "slice_last",
            "patient_mm",
        ]
        read_only_fields = ["series_id", "slice_first", "slice_last", "patient_mm"]


class ShownSuggestionSerializer(serializers.ModelSerializer):
    """What the model showed the annotator, and (after submission) how much they changed it."""

    class Meta:
        model = ShownSuggestion
        fields = [
            "model_version_number",
            "boxes",
            "findings_prefilled",
            "finding_probabilities",
            "report_draft",
            "withheld",
            "served_at",
            "confidence",
            "boxes_kept_fraction",
            "findings_changed_fraction",
            "draft_edit_distance",
            "change",
        ]


class AnnotationSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username", read_only=True)
    reviewed_by = serializers.CharField(
        source="reviewed_by.username", default=None, allow_null=True, read_only=True
    )
    boxes = BoxSerializer(many=True, read_only=True)
    etag = serializers.CharField(read_only=True)
    shown_suggestion = serializers.SerializerMethodField(
        help_text="the model's suggestion the annotator was shown (null: none was shown)"
    )

    @extend_schema_field(ShownSuggestionSerializer(allow_null=True))
    def get_shown_suggestion(self, annotation: Annotation) -> dict[str, object] | None:
        try:
            record = annotation.shown_suggestion
        except ShownSuggestion.DoesNotExist:
            return None
        return dict(ShownSuggestionSerializer(record).data)

    class Meta:
        model = Annotation
        fields = [
            "id",
            "case",
            "annotator",
            "status",
            "version",
            "etag",
            "findings",
            "report",
            "boxes",
            "rejected_suggestion_boxes",
            "review_comment",
            "reviewed_by",
            "is_adjudication",
            "created_at",
            "updated_at",
            "submitted_at",
            "shown_suggestion",
        ]


class NextCaseSerializer(CaseDetailSerializer):
    """A leased case with the caller's working copy, so the workspace needs no second call."""

    annotation = serializers.SerializerMethodField()

    class Meta(CaseDetailSerializer.Meta):
        fields = [*CaseDetailSerializer.Meta.fields, "annotation"]

    @extend_schema_field(AnnotationSerializer)
    def get_annotation(self, case: Case) -> dict[str, object]:
        return dict(AnnotationSerializer(self.context["annotation"]).data)


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor_username",
            "action",
            "project_id",
            "object_type",
            "object_id",
            "ip_address",
            "user_agent",
            "detail",
        ]


# --- input ----------------------------------------------------------------------------------


class ProjectInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    modality = serializers.ChoiceField(choices=Modality.choices, default=Modality.DX)
    label_schema = serializers.JSONField(required=False)
    double_read_fraction = serializers.FloatField(min_value=0, max_value=1, required=False)
    adjudication_box_f1 = serializers.FloatField(min_value=0, max_value=1, required=False)
    adjudication_report_rouge = serializers.FloatField(min_value=0, max_value=1, required=False)
    validation_fraction = serializers.FloatField(min_value=0, max_value=0.9, required=False)
    lease_seconds = serializers.IntegerField(min_value=30, max_value=86_400, required=False)
    eligibility_rules = serializers.JSONField(
        required=False, help_text='inclusion rules, e.g. {"min_age_years": 18}'
    )


class MembershipInputSerializer(serializers.Serializer):
    # Not checked against the accounts here: the answer must not tell which usernames exist
    # (annotations.services.projects.grant_role).
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipGrantSerializer(serializers.Serializer):
    """The member form's answer: the same whether the named account exists or not."""

    username = serializers.CharField()
    role = serializers.CharField()
    message = serializers.CharField()


class FiniteFloatField(serializers.FloatField):
    """A float that refuses NaN and infinities (JSON allows neither; some clients send them)."""

    def to_internal_value(self, data: float | int | str) -> float:
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("invalid")
        return value


class BoxInputSerializer(serializers.Serializer):
    instance_id = serializers.IntegerField(min_value=1)
    frame = serializers.IntegerField(min_value=1, default=1)
    x = FiniteFloatField()
    y = FiniteFloatField()
    width = FiniteFloatField()
    height = FiniteFloatField()
    finding = serializers.CharField(max_length=64)
    origin = serializers.ChoiceField(choices=Box.Origin.choices, default=Box.Origin.DRAWN)
    suggestion_box_id = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default=""
    )
    slices = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        min_length=2,
        max_length=2,
        required=False,
        help_text="A 3D box on a CT or MR series: [first, last] slices it covers (1-based, in"
        " position order, inclusive); the image is the slice it was drawn on.",
    )


class AnnotationInputSerializer(serializers.Serializer):
    findings = serializers.DictField(child=serializers.CharField(max_length=16), required=False)
    report = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False), required=False
    )
    boxes = BoxInputSerializer(many=True, required=False)
    rejected_suggestion_boxes = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=500
    )


class ReviewInputSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=[("accept", "accept"), ("return", "return")])
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class ReviewQueueQuerySerializer(serializers.Serializer):
    """Sorting and filtering of the review queue (query parameters)."""

    ordering = serializers.ChoiceField(
        choices=["submitted", "-submitted", "confidence", "-confidence", "change", "-change"],
        default="submitted",
        help_text="by submission, by the model's confidence in what it showed, or by how much "
        "the annotator changed it ('-': highest first); annotations without that figure last",
    )
    confidence_min = FiniteFloatField(min_value=0, max_value=1, required=False)
    confidence_max = FiniteFloatField(min_value=0, max_value=1, required=False)
    change_min = FiniteFloatField(min_value=0, max_value=1, required=False)
    change_max = FiniteFloatField(min_value=0, max_value=1, required=False)
    model_version = serializers.IntegerField(
        min_value=1, max_value=2_147_483_647, required=False, help_text="version number shown"
    )


class SkipInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200)
