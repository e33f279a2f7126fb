"""Addresses of the locked test set and the validation reports (issue 16)."""

from django.urls import path

from active_learning.api import verification_views as views

urlpatterns = [
    path("projects/<id:project_pk>/test-set/", views.TestSetView.as_view(), name="test-set"),
    path(
        "projects/<id:project_pk>/test-set/lock/",
        views.TestSetLockView.as_view(),
        name="test-set-lock",
    ),
    path(
        "projects/<id:project_pk>/model-versions/<id:number>/validation-reports/",
        views.VersionReportsView.as_view(),
        name="version-validation-reports",
    ),
    path(
        "projects/<id:project_pk>/model-versions/<id:number>/export/",
        views.VersionExportView.as_view(),
        name="model-version-export",
    ),
    path(
        "projects/<id:project_pk>/validation-reports/",
        views.ProjectReportsView.as_view(),
        name="project-validation-reports",
    ),
    path(
        "validation-reports/<id:report_pk>/",
        views.ReportDetailView.as_view(),
        name="validation-report",
    ),
    path(
        "validation-reports/<id:report_pk>/pdf/",
        views.ReportPdfView.as_view(),
        name="validation-report-pdf",
    ),
    path(
        "validation-reports/<id:report_pk>/model-card/",
        views.ModelCardView.as_view(),
        name="validation-report-model-card",
    ),
    path(
        "validation-reports/<id:report_pk>/compare/<id:other_pk>/",
        views.ReportComparisonView.as_view(),
        name="validation-report-compare",
    ),
    path(
        "version-comparisons/<id:comparison_pk>/",
        views.VersionComparisonView.as_view(),
        name="version-comparison",
    ),
]
