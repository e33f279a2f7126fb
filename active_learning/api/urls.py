from django.urls import path

from active_learning.api import data_use_views, loop_settings, model_dashboard, views

urlpatterns = [
    path(
        "cases/<id:case_pk>/suggestions/",
        views.CaseSuggestionsView.as_view(),
        name="case-suggestions",
    ),
    path(
        "cases/<id:case_pk>/suggestion/",
        views.CaseServedSuggestionView.as_view(),
        name="case-served-suggestion",
    ),
    path(
        "cases/<id:case_pk>/explanation/",
        views.CaseExplanationView.as_view(),
        name="case-explanation",
    ),
    path(
        "projects/<id:project_pk>/model-versions/",
        views.ModelVersionListView.as_view(),
        name="model-version-list",
    ),
    path(
        "projects/<id:project_pk>/model-versions/<id:number>/promote/",
        views.ModelVersionPromoteView.as_view(),
        name="model-version-promote",
    ),
    path(
        "projects/<id:project_pk>/model-versions/rollback/",
        views.ModelVersionRollbackView.as_view(),
        name="model-version-rollback",
    ),
    path(
        "projects/<id:project_pk>/cycles/",
        views.RetrainingCycleListView.as_view(),
        name="cycle-list",
    ),
    path("cycles/<id:cycle_pk>/", views.RetrainingCycleDetailView.as_view(), name="cycle-detail"),
    path(
        "cycles/<id:cycle_pk>/cancel/",
        views.RetrainingCycleCancelView.as_view(),
        name="cycle-cancel",
    ),
    path(
        "projects/<id:project_pk>/model-dashboard/",
        model_dashboard.ModelDashboardView.as_view(),
        name="model-dashboard",
    ),
    path("projects/<id:project_pk>/rerank/", views.ProjectRerankView.as_view(), name="rerank"),
    path(
        "projects/<id:project_pk>/loop-settings/",
        loop_settings.LoopSettingsView.as_view(),
        name="loop-settings",
    ),
    path("strategies/", views.StrategyListView.as_view(), name="strategy-list"),
    path(
        "projects/<id:project_pk>/data-use-report/",
        data_use_views.DataUseReportView.as_view(),
        name="data-use-report",
    ),
]
