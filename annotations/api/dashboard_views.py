"""The project lead's dashboards as JSON for charts: queue state and burn-down, annotator
throughput, review load. Reads only; the numbers come from ``annotations.dashboards``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import dashboards
from annotations.access import project_for

# --- input -----------------------------------------------------------------------------------

_DAYS_MESSAGE = f"days must be a whole number from 1 to {dashboards.MAX_DAYS}."


class ThroughputInputSerializer(serializers.Serializer):
    days = serializers.IntegerField(
        min_value=1,
        max_value=dashboards.MAX_DAYS,
        default=30,
        help_text="The window: the last `days` UTC days, today included.",
        error_messages={
            "invalid": _DAYS_MESSAGE,
            "min_value": _DAYS_MESSAGE,
            "max_value": _DAYS_MESSAGE,
            "max_string_length": _DAYS_MESSAGE,
        },
    )


# --- output ----------------------------------------------------------------------------------


class DashboardCaseStatesSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    open = serializers.IntegerField(help_text="Cases that still need a read (Case.state open).")
    complete = serializers.IntegerField(help_text="Cases with all required reads submitted.")
    returned = serializers.IntegerField(help_text="A read was returned; rework pending.")
    submitted = serializers.IntegerField(help_text="A read awaits review.")
    accepted = serializers.IntegerField(help_text="All reads in, none awaiting review.")
    leased = serializers.IntegerField(help_text="Open, leased now (lease not expired).")
    draft = serializers.IntegerField(help_text="Open, not leased, somebody has a draft.")
    skipped = serializers.IntegerField(help_text="Open, not leased, no draft, passed on.")
    waiting = serializers.IntegerField(help_text="Open, no live lease, no draft, no skip.")


class DashboardSkipReasonSerializer(serializers.Serializer):
    reason = serializers.CharField()
    count = serializers.IntegerField()


class DashboardBurnDownDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    remaining = serializers.IntegerField(help_text="Cases needing reads at the end of the day.")
    validation_remaining = serializers.IntegerField()


class QueueDashboardSerializer(serializers.Serializer):
    cases = DashboardCaseStatesSerializer(
        help_text="Non-validation cases, each counted once in the first state that applies "
        "(returned, submitted, accepted, leased, draft, skipped, waiting)."
    )
    validation = DashboardCaseStatesSerializer(help_text="Validation hold-out cases, likewise.")
    expired_leases = serializers.IntegerField(
        help_text="Leases past their expiry not yet released by the beat task."
    )
    skips = serializers.IntegerField(help_text="Skips recorded (one per case and annotator).")
    skip_reasons = DashboardSkipReasonSerializer(many=True, help_text="The 20 most frequent.")
    burn_down = DashboardBurnDownDaySerializer(
        many=True, help_text="Per UTC day, from the first case, at most the last 90 days."
    )


class DashboardSuggestionUseSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Suggested boxes accepted unchanged.")
    edited = serializers.IntegerField(help_text="Suggested boxes edited.")
    rejected = serializers.IntegerField(help_text="Suggested boxes rejected.")
    drawn = serializers.IntegerField(help_text="Boxes drawn that no suggestion had.")
    suggested = serializers.IntegerField(help_text="accepted + edited + rejected.")
    accepted_share = serializers.FloatField(allow_null=True)
    edited_share = serializers.FloatField(allow_null=True)
    rejected_share = serializers.FloatField(allow_null=True)


class DashboardDaySubmissionsSerializer(serializers.Serializer):
    date = serializers.DateField()
    submitted = serializers.IntegerField()


class DashboardAnnotatorThroughputSerializer(serializers.Serializer):
    annotator = serializers.CharField()
    submitted = serializers.IntegerField(help_text="Submissions, resubmissions included.")
    returned = serializers.IntegerField(help_text="Of those, how many a reviewer returned.")
    timed_cases = serializers.IntegerField(help_text="Cases first submitted in the window.")
    median_seconds_to_first_submit = serializers.FloatField(
        allow_null=True,
        help_text="Median seconds from opening the working copy (the annotation's creation) "
        "to its first submission, over timed_cases.",
    )
    daily = DashboardDaySubmissionsSerializer(many=True)
    suggestions = DashboardSuggestionUseSerializer()


class ThroughputDashboardSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    start = serializers.DateField()
    end = serializers.DateField()
    annotators = DashboardAnnotatorThroughputSerializer(many=True)
    suggestions = DashboardSuggestionUseSerializer(help_text="All annotators together.")


class DashboardAnnotatorReviewSerializer(serializers.Serializer):
    annotator = serializers.CharField()
    awaiting_review = serializers.IntegerField()
    returned = serializers.IntegerField(help_text="Returned, not yet resubmitted.")
    accepted = serializers.IntegerField()


class ReviewDashboardSerializer(serializers.Serializer):
    queue_size = serializers.IntegerField(help_text="Submitted, not yet accepted or returned.")
    oldest_submitted_at = serializers.DateTimeField(allow_null=True)
    annotators = DashboardAnnotatorReviewSerializer(many=True)


# --- views -----------------------------------------------------------------------------------


class QueueDashboardView(APIView):
    @extend_schema(
        responses=QueueDashboardSerializer,
        description="Cases by state, expired leases, skip reasons and the burn-down of cases "
        "still needing reads. Lead and admin.",
    )
    def get(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "dashboard", "view")
        queue = dashboards.queue_dashboard(project=project)
        return Response(QueueDashboardSerializer(queue).data)


class ThroughputDashboardView(APIView):
    @extend_schema(
        parameters=[ThroughputInputSerializer],
        responses=ThroughputDashboardSerializer,
        description="Per annotator: submissions per day, median time to first submission, "
        "returned work and suggestion use over the last `days` days. Lead and admin.",
    )
    def get(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "dashboard", "view")
        data = ThroughputInputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        throughput = dashboards.throughput_dashboard(
            project=project, days=data.validated_data["days"]
        )
        return Response(ThroughputDashboardSerializer(throughput).data)


class ReviewDashboardView(APIView):
    @extend_schema(
        responses=ReviewDashboardSerializer,
        description="The review queue's size and each annotator's work by review outcome. "
        "Reviewer, lead and admin.",
    )
    def get(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "dashboard", "view_review")
        review = dashboards.review_dashboard(project=project)
        return Response(ReviewDashboardSerializer(review).data)
