from __future__ import annotations

from rest_framework import serializers

from active_learning.models import ModelVersion, RetrainingCycle, Suggestion


class SuggestionSerializer(serializers.ModelSerializer):
    model_version = serializers.IntegerField(source="model_version.number", read_only=True)

    class Meta:
        model = Suggestion
        fields = [
            "id",
            "case",
            "model_version",
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
        source="triggered_by.username", default=None, read_only=True
    )

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
            "created_at",
            "started_at",
            "finished_at",
        ]
