"""Django admin for the annotator's world.

Clinical data and labels (patients, studies, series, instances, cases, lab results, skips,
annotations, boxes, revisions) are read-only here: their changes go through the services and
the API, where If-Match, versions, revisions and the audit trail apply. Every admin page that
lists or shows an object, and every change an admin makes (projects, memberships), is
recorded in the audit trail."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse

from annotations.models import (
    Annotation,
    AnnotationRevision,
    AuditEvent,
    Box,
    Case,
    CaseSkip,
    Instance,
    LabResult,
    Membership,
    Patient,
    Project,
    Series,
    Study,
)
from annotations.services import audit, projects
from annotations.services.errors import InvalidInput

# How to reach the project of an object, per model (for the audit event's project).
_PROJECT_PATHS = ("project_id", "case.project_id", "study.project_id", "series.study.project_id")


def _project_id(obj: Model) -> int | None:
    if isinstance(obj, Project):
        return obj.pk
    for path in _PROJECT_PATHS:
        value: Any = obj
        for attribute in path.split("."):
            value = getattr(value, attribute, None)
            if value is None:
                break
        if isinstance(value, int):
            return value
    return None


class AuditedAdmin(admin.ModelAdmin):
    """A model admin whose reads (list and object pages) and writes are audited as
    ``admin.list``, ``admin.view``, ``admin.add``, ``admin.change`` and ``admin.delete``."""

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        if request.method == "GET" and response.status_code == 200:
            audit.record(
                action="admin.list",
                actor=request.user,
                request=request,
                detail={"model": self.model._meta.label, "query": request.GET.urlencode()[:200]},
            )
        return response

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            obj = self.get_object(request, unquote(object_id))
            if obj is not None:
                audit.record(
                    action="admin.view",
                    actor=request.user,
                    target=obj,
                    project_id=_project_id(obj),
                    request=request,
                )
        return response

    def _record_write(self, request: HttpRequest, action: str, obj: Model, message: Any) -> None:
        audit.record(
            action=action,
            actor=request.user,
            target=obj,
            project_id=_project_id(obj),
            request=request,
            # Django's change message names the changed fields, never their values.
            detail={"model": self.model._meta.label, "change": message},
        )

    def log_addition(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        self._record_write(request, "admin.add", obj, message)
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        self._record_write(request, "admin.change", obj, message)
        return super().log_change(request, obj, message)

    def log_deletions(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        for obj in queryset:
            self._record_write(request, "admin.delete", obj, "deleted")
        return super().log_deletions(request, queryset)


class ReadOnlyAdmin(AuditedAdmin):
    """Clinical data and labels: shown, never added, changed or deleted in the admin."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class ProjectAdminForm(forms.ModelForm):
    """The project form of the admin checks what the API checks (``projects.check_changes``):
    the label schema, the fractions and the thresholds are validated, and a fault is shown at
    the field it names. The loop's settings have their own form (``active_learning.admin``)."""

    # Django's default until 6.0, said explicitly (a PACS on a hospital network is often http).
    dicomweb_url = forms.URLField(max_length=500, required=False, assume_scheme="http")

    class Meta:
        model = Project
        fields = [
            *projects.UPDATABLE_SETTINGS,
            "modality",
            "dicom_ae_title",
            "dicom_calling_ae_titles",
            "dicomweb_url",
        ]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        checked = [f for f in projects.UPDATABLE_SETTINGS if f in cleaned and not self.has_error(f)]
        changes = {
            f: cleaned[f] for f in checked if f in self.changed_data or self.instance._state.adding
        }
        try:
            normalised = projects.check_changes(project=self.instance, changes=changes)
        except ValidationError as exc:
            message = " ".join(exc.messages)
            field = next(
                (f for f in sorted(checked, key=len, reverse=True) if message.startswith(f)), None
            )
            self.add_error(field, message)
            return cleaned
        cleaned.update(normalised)
        if "modality" in cleaned and not self.instance._state.adding:
            try:
                projects.check_modality_change(self.instance, cleaned["modality"])
            except InvalidInput as exc:
                self.add_error("modality", exc.message)
        return cleaned


@admin.register(Project)
class ProjectAdmin(AuditedAdmin):
    form = ProjectAdminForm
    list_display = [
        "name",
        "modality",
        "double_read_fraction",
        "validation_fraction",
        "created_at",
    ]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(AuditedAdmin):
    list_display = ["project", "user", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__name"]


@admin.register(Patient)
class PatientAdmin(ReadOnlyAdmin):
    list_display = ["pseudonym", "project", "sex", "created_at"]
    list_filter = ["project"]
    search_fields = ["pseudonym"]


class SeriesInline(ReadOnlyInline):
    model = Series


@admin.register(Study)
class StudyAdmin(ReadOnlyAdmin):
    list_display = ["study_instance_uid", "project", "patient", "study_date"]
    list_filter = ["project"]
    inlines = [SeriesInline]


@admin.register(Series)
class SeriesAdmin(ReadOnlyAdmin):
    list_display = ["series_instance_uid", "study", "modality", "series_number"]


@admin.register(Instance)
class InstanceAdmin(ReadOnlyAdmin):
    list_display = [
        "sop_instance_uid",
        "series",
        "rows",
        "columns",
        "number_of_frames",
        "quarantined",
        "quarantine_rejected_at",
    ]
    list_filter = ["quarantined", "quarantine_rejected_at"]


class LabResultInline(ReadOnlyInline):
    model = LabResult


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "project",
        "state",
        "priority",
        "required_reads",
        "is_validation",
        "leased_to",
        "lease_expires_at",
    ]
    list_filter = ["project", "state", "is_validation"]
    inlines = [LabResultInline]


@admin.register(CaseSkip)
class CaseSkipAdmin(ReadOnlyAdmin):
    list_display = ["case", "annotator", "reason", "created_at"]


class BoxInline(ReadOnlyInline):
    model = Box


@admin.register(Annotation)
class AnnotationAdmin(ReadOnlyAdmin):
    list_display = ["id", "case", "annotator", "status", "version", "updated_at"]
    list_filter = ["status", "case__project"]
    inlines = [BoxInline]


@admin.register(AnnotationRevision)
class AnnotationRevisionAdmin(ReadOnlyAdmin):
    list_display = ["annotation", "version", "submitted_by", "submitted_at"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the trail is append-only."""

    list_display = [
        "created_at",
        "actor_username",
        "action",
        "project_id",
        "object_type",
        "object_id",
        "ip_address",
    ]
    list_filter = ["action"]
    search_fields = ["actor_username", "object_id"]
