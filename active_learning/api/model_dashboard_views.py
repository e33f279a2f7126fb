"""``GET /api/projects/{id}/model-dashboard/``: the numbers behind the Models page's charts
(learning curve, per-class metrics, acquisition scores of the open cases, usefulness of each
version's suggestions). Reads only; the numbers come from
``active_learning.selectors.model_dashboard``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from active_learning.selectors import model_dashboard
from annotations.access import project_for
from annotations.api.dashboard_views import DashboardSuggestionUseSerializer


class LearningCurvePointSerializer(serializers.Serializer):
    number = serializers.IntegerField(help_text="Version number.")
    status = serializers.CharField()
    serving = serializers.BooleanField(help_text="The promoted version.")
    labels = serializers.IntegerField(help_text="Training labels (the x axis).")
    validation_labels = serializers.IntegerField(
        allow_null=True, help_text="Validation labels it was evaluated on."
    )
    primary = serializers.FloatField(
        allow_null=True, help_text="The project's promotion metric on the validation labels."
    )
    metrics = serializers.DictField(
        child=serializers.FloatField(allow_null=True),
        help_text="Validation metrics by dotted key: "
        + ", ".join(model_dashboard.CURVE_METRICS)
        + "; a CT project's: "
        + ", ".join(model_dashboard.curve_metrics("ct_retinanet3d"))
        + " (null where not measured).",
    )


class ClassMetricsSerializer(serializers.Serializer):
    finding = serializers.CharField(help_text="Finding key.")
    name = serializers.CharField()
    ap_50 = serializers.FloatField(allow_null=True, help_text="Box AP at IoU 0.5.")
    auroc = serializers.FloatField(allow_null=True, help_text="Case-level AUROC.")
    f1 = serializers.FloatField(allow_null=True, help_text="F1 of the finding in the report.")


class VersionClassMetricsSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    serving = serializers.BooleanField()
    classes = ClassMetricsSerializer(many=True)


class ScoreBinSerializer(serializers.Serializer):
    low = serializers.FloatField()
    high = serializers.FloatField()
    count = serializers.IntegerField(help_text="Open cases scored in [low, high).")


class AcquisitionScoresSerializer(serializers.Serializer):
    version = serializers.IntegerField(allow_null=True, help_text="The serving version.")
    strategy = serializers.CharField(help_text="The project's acquisition strategy.")
    open_cases = serializers.IntegerField()
    scored = serializers.IntegerField(help_text="Open cases the serving version scored.")
    unscored = serializers.IntegerField(help_text="Open cases with no score from it yet.")
    bins = ScoreBinSerializer(
        many=True, help_text=f"{model_dashboard.SCORE_BINS} equal bins; empty without scores."
    )


class VersionUsefulnessSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    serving = serializers.BooleanField()
    annotations = serializers.IntegerField(
        help_text="Submitted or accepted annotations whose case showed this version's suggestion."
    )
    boxes = DashboardSuggestionUseSerializer(
        help_text="Its suggested boxes accepted, edited, rejected; boxes drawn that it missed."
    )
    missed_per_case = serializers.FloatField(allow_null=True)
    report_cases = serializers.IntegerField(
        help_text=f"Reports measured: the latest {model_dashboard.REPORT_SAMPLE} at most."
    )
    report_edit_distance = serializers.FloatField(
        allow_null=True,
        help_text="Mean word edit distance of the final report from the draft, over the final "
        "report's length in words.",
    )


class VersionLineageSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    status = serializers.CharField()
    serving = serializers.BooleanField()
    labels = serializers.IntegerField(help_text="Training labels.")
    parent = serializers.IntegerField(  # type: ignore[assignment]
        allow_null=True, help_text="The version its training started from (null: scratch)."
    )
    parent_reason = serializers.CharField(help_text="Why it started from that version.")
    promotion_check = serializers.DictField(
        help_text="The promotion guard's numbers: validation_labels, min_validation_labels, "
        "positives per class, bootstrap (difference, low, high, confidence, resamples, seed), "
        "passed, reason, waiting_for_owner."
    )


class DashboardLoopSettingsSerializer(serializers.Serializer):
    min_validation_labels = serializers.IntegerField()
    bootstrap_resamples = serializers.IntegerField()
    bootstrap_confidence = serializers.FloatField()
    warm_start = serializers.CharField(help_text="latest or serving.")
    cold_start = serializers.CharField(help_text="stored, backbone or scratch.")


class ModelDashboardSerializer(serializers.Serializer):
    promotion_metric = serializers.CharField()
    serving = serializers.IntegerField(allow_null=True, help_text="The serving version.")
    learning_curve = LearningCurvePointSerializer(
        many=True, help_text="Versions (not failed ones) by training labels."
    )
    metric_names = serializers.DictField(
        child=serializers.CharField(),
        help_text="Readable names of metrics by dotted key (a CT project's: FROC mean, mAP at "
        "its 3D match IoU); empty where the page's own names fit.",
    )
    per_class = VersionClassMetricsSerializer(many=True, help_text="Newest version first.")
    acquisition = AcquisitionScoresSerializer()
    usefulness = VersionUsefulnessSerializer(many=True, help_text="Newest version first.")
    lineage = VersionLineageSerializer(many=True, help_text="Newest version first.")
    loop = DashboardLoopSettingsSerializer(help_text="The loop settings versions are judged by.")


class ModelDashboardView(APIView):
    @extend_schema(
        responses=ModelDashboardSerializer,
        description="The Models page's charts: validation metrics against training labels per "
        "version, per-class metrics, the serving version's acquisition scores of the open "
        "cases, and per version how annotators used its suggestions. Model owner, lead and "
        "admin.",
    )
    def get(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "model", "view")
        dashboard = model_dashboard.model_dashboard(project=project)
        return Response(ModelDashboardSerializer(dashboard).data)
