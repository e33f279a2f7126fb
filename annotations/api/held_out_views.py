"""Held-out cases for leads (issue 17, section 4): the cases the eligibility rules held out at
ingest, why, and one decision (include or exclude, with a comment) for many at once."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import selectors
from annotations.api import batch_review_views
from annotations.models import Case
from annotations.services import held_out
from annotations.services.batch_review import MAX_COMMENT_LENGTH

LIST_LIMIT = 500


class HeldOutCaseSerializer(serializers.ModelSerializer):
    age_band = serializers.CharField(source="study.age_band")
    patient = serializers.CharField(source="study.patient.pseudonym")
    held_since = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Case
        fields = ["id", "held_out_reason", "age_band", "patient", "held_since"]


class HeldOutDecisionInputSerializer(serializers.Serializer):
    cases = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        allow_empty=False,
        max_length=held_out.MAX_CASES_PER_DECISION,
    )
    decision = serializers.ChoiceField(choices=[d.value for d in held_out.Decision])
    comment = serializers.CharField(
        max_length=MAX_COMMENT_LENGTH, help_text="why; kept in the audit trail"
    )


class HeldOutDecisionResultSerializer(serializers.Serializer):
    decision = serializers.CharField()
    cases = serializers.ListField(child=serializers.IntegerField())
    still_held_out = serializers.IntegerField()


class HeldOutCaseListView(APIView):
    @extend_schema(
        responses=HeldOutCaseSerializer(many=True),
        description=(
            f"Cases held out by the eligibility rules and awaiting a lead's review (at most "
            f"{LIST_LIMIT}, oldest first), with the reason and the age band; X-Total-Count "
            "says how many in all."
        ),
    )
    def get(self, request: Request, project_pk: int) -> Response:
        return batch_review_views.awaiting_list(
            request,
            project_pk,
            awaiting=selectors.held_out_cases,
            related="study__patient",
            serializer=HeldOutCaseSerializer,
            audit_action="held_out.view",
            limit=LIST_LIMIT,
        )


class HeldOutDecisionView(APIView):
    @extend_schema(
        request=HeldOutDecisionInputSerializer, responses=HeldOutDecisionResultSerializer
    )
    def post(self, request: Request, project_pk: int) -> Response:
        """Include (annotators may be handed them) or exclude (held out for good) cases."""
        return batch_review_views.decision(
            request,
            project_pk,
            body=HeldOutDecisionInputSerializer,
            review=held_out.REVIEW,
            remaining_key="still_held_out",
        )
