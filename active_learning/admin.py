from django.contrib import admin

from active_learning.models import ModelVersion, RetrainingCycle, Suggestion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "project",
        "number",
        "status",
        "model_kind",
        "label_count",
        "created_at",
        "promoted_at",
    ]
    list_filter = ["project", "status"]
    readonly_fields = ["weights_sha256", "weights_path", "label_snapshot"]


@admin.register(Suggestion)
class SuggestionAdmin(admin.ModelAdmin):
    list_display = ["case", "model_version", "acquisition_score", "created_at"]


@admin.register(RetrainingCycle)
class RetrainingCycleAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "status", "stage", "progress", "trigger", "created_at"]
    list_filter = ["status", "project"]
