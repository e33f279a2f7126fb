from __future__ import annotations

from rest_framework import serializers

from active_learning.models import ModelVersion, RetrainingCycle, Suggestion


class SuggestionSerializer(serializers.ModelSerializer):
    model_version = serializers.IntegerField(source="model_version.number", read_only=True)
    serving = serializers.SerializerMethodField(help_text="made by the promoted version")

    def get_serving(self, suggestion: Suggestion) -> bool:
        return suggestion.model_version.status == ModelVersion.Status.PROMOTED

    class Meta:
        model = Suggestion
        fields = [
            "id",
            "case",
            "model_version",
            "serving",
            "boxes",
            "finding_probabilities",
            "report_draft",
            "uncertainty",
            "acquisition_score",
            "created_at",
        ]


class ModelVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "number",
            "status",
            "model_kind",
            "metrics",
            "label_count",
            "strategy",
            "code_version",
            "weights_sha256",
            "parent",
            "created_at",
            "promoted_at",
        ]


class RetrainingCycleSerializer(serializers.ModelSerializer):
    triggered_by = serializers.CharField(
        source="triggered_by.username", default=None, allow_null=True, read_only=True
    )
    model_version_number = serializers.IntegerField(
        source="model_version.number", default=None, allow_null=True, read_only=True
    )
    label_count = serializers.SerializerMethodField()
    chunks_total = serializers.SerializerMethodField()
    chunks_done = serializers.SerializerMethodField()

    def get_label_count(self, cycle: RetrainingCycle) -> int:
        return len(cycle.label_snapshot)

    def get_chunks_total(self, cycle: RetrainingCycle) -> int:
        return len(cycle.chunks)

    def get_chunks_done(self, cycle: RetrainingCycle) -> int:
        return len(cycle.chunks_done)

    class Meta:
        model = RetrainingCycle
        fields = [
            "id",
            "status",
            "trigger",
            "triggered_by",
            "stage",
            "progress",
            "log",
            "error",
            "model_version",
            "model_version_number",
            "strategy",
            "label_count",
            "chunks_total",
            "chunks_done",
            "stage_seconds",
            "outcome",
            "created_at",
            "started_at",
            "finished_at",
        ]


class RollbackInputSerializer(serializers.Serializer):
    to = serializers.IntegerField(
        min_value=1, max_value=2_147_483_647, required=False, help_text="version number"
    )


class StrategySerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
