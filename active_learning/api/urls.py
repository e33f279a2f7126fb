from django.urls import path

from active_learning.api import views

urlpatterns = [
    path(
        "cases/<id:case_pk>/suggestions/",
        views.CaseSuggestionsView.as_view(),
        name="case-suggestions",
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
        "projects/<id:project_pk>/cycles/",
        views.RetrainingCycleListView.as_view(),
        name="cycle-list",
    ),
]
