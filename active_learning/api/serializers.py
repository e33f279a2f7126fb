from __future__ import annotations

from typing import Any

from rest_framework import serializers

from active_learning import selectors
from active_learning.models import ModelVersion, RetrainingCycle, Suggestion
from active_learning.services import withdrawals
from active_learning.services.loop_settings import loop_settings


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


class WithheldSerializer(serializers.Serializer):
    kinds = serializers.ListField(
        child=serializers.CharField(), help_text='"boxes", "findings", "report" or "model"'
    )
    finding = serializers.CharField(allow_null=True, help_text="the class key, or null")
    message = serializers.CharField(help_text="why it is not shown, in words for the annotator")


class ShownSuggestionBodySerializer(serializers.Serializer):
    """The parts of a suggestion that its version's validation evidence lets the workspace show."""

    id = serializers.IntegerField()
    model_version = serializers.IntegerField(help_text="version number")
    serving = serializers.BooleanField(help_text="made by the promoted version")
    boxes = serializers.ListField(child=serializers.DictField())
    finding_probabilities = serializers.DictField(child=serializers.FloatField())
    findings_prefilled = serializers.DictField(
        child=serializers.CharField(), help_text='{finding: "present" | "absent"}'
    )
    report_draft = serializers.DictField(child=serializers.CharField())
    uncertainty = serializers.DictField(help_text='{"report_links": [...]} for the shown draft')
    created_at = serializers.DateTimeField()


class ServedSuggestionSerializer(serializers.Serializer):
    # A plain string in the schema: a choice set named "state" would collide with the case's.
    state = serializers.CharField(
        help_text='"shown": the version has reliable parts (what passes them is here); '
        '"learning": nothing reliable yet, or no version; "none": not scored yet; '
        '"blinded": a locked test set case, read without the model'
    )
    message = serializers.CharField()
    suggestion = ShownSuggestionBodySerializer(allow_null=True)
    withheld = WithheldSerializer(many=True)


class ModelVersionSerializer(serializers.ModelSerializer):
    evidence = serializers.SerializerMethodField(
        help_text="validation figures (each with why it is missing), the validation labels "
        "they rest on, and the promotion decision with its inputs (both versions' promotion "
        "metric on the same validation labels, the paired-bootstrap interval)"
    )

    withdrawn_labels = serializers.SerializerMethodField(
        help_text="training labels of patients who withdrew consent since (0: none); a version "
        "with any is 'trained on withdrawn data': start a cycle to retrain without them"
    )
    trained_on_withdrawn_data = serializers.SerializerMethodField()

    def get_evidence(self, version: ModelVersion) -> dict[str, Any]:
        metric = loop_settings(version.project).promotion_metric
        return selectors.version_evidence(version, metric)

    def _withdrawn(self, version: ModelVersion) -> dict[int, int]:
        # Computed once per project for a list of versions. The cache's key must not be the
        # method's name: for one version the serializer is its own root, and an instance
        # attribute named ``_withdrawn`` would shadow this method (500 on promote).
        cache: dict[int, dict[int, int]] = self.root.__dict__.setdefault(
            "_withdrawn_per_project", {}
        )
        if version.project_id not in cache:
            cache[version.project_id] = withdrawals.withdrawn_labels_per_version(version.project)
        return cache[version.project_id]

    def get_withdrawn_labels(self, version: ModelVersion) -> int:
        return self._withdrawn(version).get(version.pk, 0)

    def get_trained_on_withdrawn_data(self, version: ModelVersion) -> bool:
        return self._withdrawn(version).get(version.pk, 0) > 0

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
            "parent_reason",
            "promotion_check",
            "evidence",
            "withdrawn_labels",
            "trained_on_withdrawn_data",
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

    estimate = serializers.SerializerMethodField(
        help_text='time left of an active cycle: {"seconds": float | null, "basis": what it '
        'rests on, "complete": false when a later stage has no earlier cycle to go by}'
    )

    def get_chunks_done(self, cycle: RetrainingCycle) -> int:
        return len(cycle.chunks_done)

    def get_estimate(self, cycle: RetrainingCycle) -> dict[str, Any]:
        if cycle.status not in RetrainingCycle.ACTIVE:
            return {"seconds": None, "basis": "", "complete": True}
        return selectors.cycle_estimate(cycle, earlier=selectors.last_finished_cycle(cycle))

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
            "stage_progress",
            "estimate",
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
