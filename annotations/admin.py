from django.contrib import admin
from django.http import HttpRequest

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


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "modality",
        "acquisition_strategy",
        "auto_retrain_threshold",
        "double_read_fraction",
        "validation_fraction",
        "created_at",
    ]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__name"]


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["pseudonym", "project", "sex", "created_at"]
    list_filter = ["project"]
    search_fields = ["pseudonym"]


class SeriesInline(admin.TabularInline):
    model = Series
    extra = 0


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["study_instance_uid", "project", "patient", "study_date"]
    list_filter = ["project"]
    inlines = [SeriesInline]


@admin.register(Series)
class SeriesAdmin(admin.ModelAdmin):
    list_display = ["series_instance_uid", "study", "modality", "series_number"]


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = [
        "sop_instance_uid",
        "series",
        "rows",
        "columns",
        "number_of_frames",
        "quarantined",
    ]
    list_filter = ["quarantined"]
    readonly_fields = ["sha256", "file_path", "size_bytes"]


class LabResultInline(admin.TabularInline):
    model = LabResult
    extra = 0


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
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
class CaseSkipAdmin(admin.ModelAdmin):
    list_display = ["case", "annotator", "reason", "created_at"]


class BoxInline(admin.TabularInline):
    model = Box
    extra = 0


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "case", "annotator", "status", "version", "updated_at"]
    list_filter = ["status", "case__project"]
    inlines = [BoxInline]
    # Edits go through the API so that If-Match and the audit trail apply.
    readonly_fields = ["version"]


@admin.register(AnnotationRevision)
class AnnotationRevisionAdmin(admin.ModelAdmin):
    list_display = ["annotation", "version", "submitted_by", "submitted_at"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
