from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from active_learning.models import LoopSettings, ModelVersion, RetrainingCycle, Suggestion
from active_learning.services import loop_settings
from annotations.admin import AuditedAdmin
from annotations.services import loop_signals
from annotations.services.errors import InvalidInput


class LoopSettingsAdminForm(forms.ModelForm):
    """The loop's settings as the API checks them (``loop_settings.check_changes``): the
    strategy and the promotion metric are picked from the loop's lists, a fault is shown at the
    field it names and nothing is stored."""

    acquisition_strategy = forms.TypedChoiceField(choices=loop_settings.strategy_choices)
    promotion_metric = forms.TypedChoiceField(choices=loop_settings.promotion_metric_choices)

    class Meta:
        model = LoopSettings
        fields = ["project", *loop_settings.EDITABLE]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        checked = [f for f in loop_settings.EDITABLE if f in cleaned and not self.has_error(f)]
        changes = {f: cleaned[f] for f in checked if f in self.changed_data}
        project = cleaned.get("project")
        if project is None:  # the project field shows its own error
            return cleaned
        try:
            loop_settings.check_changes(changes, project=project)
        except InvalidInput as exc:
            field = next(
                (f for f in sorted(checked, key=len, reverse=True) if exc.message.startswith(f)),
                None,
            )
            self.add_error(field, exc.message)
        return cleaned


@admin.register(LoopSettings)
class LoopSettingsAdmin(AuditedAdmin):
    form = LoopSettingsAdminForm
    list_display = [
        "project",
        "acquisition_strategy",
        "auto_retrain_threshold",
        "promotion_metric",
        "auto_promote",
    ]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if "acquisition_strategy" in form.changed_data:
            loop_signals.reorder_queue(obj.project_id)  # as a change through the API does


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
