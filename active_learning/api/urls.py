from django.urls import path

from active_learning.api import (
    data_use_views,
    loop_settings_views,
    loop_views,
    model_dashboard_views,
)

urlpatterns = [
    path(
        "cases/<id:case_pk>/suggestions/",
        loop_views.CaseSuggestionsView.as_view(),
        name="case-suggestions",
    ),
    path(
        "cases/<id:case_pk>/suggestion/",
        loop_views.CaseServedSuggestionView.as_view(),
        name="case-served-suggestion",
    ),
    path(
        "cases/<id:case_pk>/explanation/",
        loop_views.CaseExplanationView.as_view(),
        name="case-explanation",
    ),
    path(
        "projects/<id:project_pk>/model-versions/",
        loop_views.ModelVersionListView.as_view(),
        name="model-version-list",
    ),
    path(
        "projects/<id:project_pk>/model-versions/<id:number>/promote/",
        loop_views.ModelVersionPromoteView.as_view(),
        name="model-version-promote",
    ),
    path(
        "projects/<id:project_pk>/model-versions/rollback/",
        loop_views.ModelVersionRollbackView.as_view(),
        name="model-version-rollback",
    ),
    path(
        "projects/<id:project_pk>/cycles/",
        loop_views.RetrainingCycleListView.as_view(),
        name="cycle-list",
    ),
    path(
        "cycles/<id:cycle_pk>/", loop_views.RetrainingCycleDetailView.as_view(), name="cycle-detail"
    ),
    path(
        "cycles/<id:cycle_pk>/cancel/",
        loop_views.RetrainingCycleCancelView.as_view(),
        name="cycle-cancel",
    ),
    path(
        "projects/<id:project_pk>/model-dashboard/",
        model_dashboard_views.ModelDashboardView.as_view(),
        name="model-dashboard",
    ),
    path("projects/<id:project_pk>/rerank/", loop_views.ProjectRerankView.as_view(), name="rerank"),
    path(
        "projects/<id:project_pk>/loop-settings/",
        loop_settings_views.LoopSettingsView.as_view(),
        name="loop-settings",
    ),
    path("strategies/", loop_views.StrategyListView.as_view(), name="strategy-list"),
    path(
        "projects/<id:project_pk>/data-use-report/",
        data_use_views.DataUseReportView.as_view(),
        name="data-use-report",
    ),
]
