"""The quarantine review for leads: the images held at ingest, why each is held, and one
decision (release or reject, with a comment) for many images at once."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import selectors
from annotations.api import batch_review_views
from annotations.api.serializers import InstanceSerializer
from annotations.services import quarantine
from annotations.services.batch_review import MAX_COMMENT_LENGTH

LIST_LIMIT = 500


class HeldImageSerializer(InstanceSerializer):
    quarantine_reason = serializers.CharField(help_text="why the image is held")
    case = serializers.IntegerField(source="series.study.case.pk")
    modality = serializers.CharField(source="series.modality")
    series_description = serializers.CharField(source="series.description")
    held_since = serializers.DateTimeField(source="created_at")

    class Meta(InstanceSerializer.Meta):
        fields = [
            *InstanceSerializer.Meta.fields,
            "quarantine_reason",
            "case",
            "modality",
            "series_description",
            "held_since",
        ]


class DecisionInputSerializer(serializers.Serializer):
    instances = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        allow_empty=False,
        max_length=quarantine.MAX_IMAGES_PER_DECISION,
        help_text="ids of held images of this project",
    )
    decision = serializers.ChoiceField(choices=[d.value for d in quarantine.Decision])
    comment = serializers.CharField(
        max_length=MAX_COMMENT_LENGTH, help_text="why; kept in the audit trail"
    )


class DecisionResultSerializer(serializers.Serializer):
    decision = serializers.CharField()
    instances = serializers.ListField(child=serializers.IntegerField())
    still_held = serializers.IntegerField(help_text="images of the project still awaiting review")


class QuarantineListView(APIView):
    @extend_schema(
        responses=HeldImageSerializer(many=True),
        description=(
            f"Images awaiting a lead's review (at most {LIST_LIMIT}, oldest first), each with "
            "the reason it is held; the X-Total-Count header says how many are held in all. "
            "Released images are no longer held; rejected ones stay hidden and leave this list."
        ),
    )
    def get(self, request: Request, project_pk: int) -> Response:
        return batch_review_views.awaiting_list(
            request,
            project_pk,
            awaiting=selectors.held_images,
            related="series__study__case",
            serializer=HeldImageSerializer,
            audit_action="quarantine.view",
            limit=LIST_LIMIT,
        )


class QuarantineDecisionView(APIView):
    @extend_schema(
        request=DecisionInputSerializer,
        responses=DecisionResultSerializer,
        description=(
            "Release (no identifiers: annotators may see them) or reject (they show "
            "identifiers: hidden for good) held images, all or none; each is audited with the "
            "comment."
        ),
    )
    def post(self, request: Request, project_pk: int) -> Response:
        return batch_review_views.decision(
            request,
            project_pk,
            body=DecisionInputSerializer,
            review=quarantine.REVIEW,
            remaining_key="still_held",
        )
