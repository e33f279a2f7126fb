from django.urls import path

from active_learning.api import views

urlpatterns = [
    path(
        "cases/<int:case_pk>/suggestions/",
        views.CaseSuggestionsView.as_view(),
        name="case-suggestions",
    ),
    path(
        "projects/<int:project_pk>/model-versions/",
        views.ModelVersionListView.as_view(),
        name="model-version-list",
    ),
    path(
        "projects/<int:project_pk>/cycles/",
        views.RetrainingCycleListView.as_view(),
        name="cycle-list",
    ),
]
