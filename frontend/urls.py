from django.urls import path

from frontend import data_use_views, settings_views, verification_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<id:project_pk>/upload/", views.upload, name="project-upload"),
    path("projects/<id:project_pk>/label/", views.label, name="project-label"),
    path("projects/<id:project_pk>/review/", views.review, name="project-review"),
    path("projects/<id:project_pk>/models/", views.models, name="project-models"),
    path("projects/<id:project_pk>/dashboard/", views.dashboard, name="project-dashboard"),
    path("projects/<id:project_pk>/adjudication/", views.adjudication, name="project-adjudication"),
    path("projects/<id:project_pk>/quarantine/", views.quarantine, name="project-quarantine"),
    path("projects/<id:project_pk>/audit/", views.project_audit, name="project-audit"),
    path(
        "projects/<id:project_pk>/settings/",
        settings_views.project_settings,
        name="project-settings",
    ),
    path(
        "projects/<id:project_pk>/verification/",
        verification_views.verification,
        name="project-verification",
    ),
    path(
        "projects/<id:project_pk>/verification/reports/<id:report_pk>/",
        verification_views.validation_report,
        name="project-validation-report",
    ),
    path(
        "projects/<id:project_pk>/verification/reports/<id:report_pk>/compare/<id:other_pk>/",
        verification_views.start_comparison,
        name="project-start-comparison",
    ),
    path(
        "projects/<id:project_pk>/verification/comparisons/<id:comparison_pk>/",
        verification_views.version_comparison,
        name="project-version-comparison",
    ),
    path("projects/<id:project_pk>/ethics/", views.ethics_page, name="project-ethics-page"),
    path(
        "projects/<id:project_pk>/data-use/",
        data_use_views.data_use_page,
        name="project-data-use",
    ),
    path("audit/", views.audit_trail, name="audit-trail"),
]
