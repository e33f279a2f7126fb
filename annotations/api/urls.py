from django.urls import path

from annotations.api import annotation_views, audit_views, cases, projects, queue

urlpatterns = [
    path("projects/", projects.ProjectListView.as_view(), name="project-list"),
    path("projects/<int:project_pk>/", projects.ProjectDetailView.as_view(), name="project-detail"),
    path(
        "projects/<int:project_pk>/members/",
        projects.MembershipListView.as_view(),
        name="membership-list",
    ),
    path(
        "projects/<int:project_pk>/members/<int:membership_pk>/",
        projects.MembershipDetailView.as_view(),
        name="membership-detail",
    ),
    path("projects/<int:project_pk>/next-case/", queue.NextCaseView.as_view(), name="next-case"),
    path("projects/<int:project_pk>/cases/", cases.CaseListView.as_view(), name="case-list"),
    path(
        "projects/<int:project_pk>/review-queue/",
        annotation_views.ReviewQueueView.as_view(),
        name="review-queue",
    ),
    path(
        "projects/<int:project_pk>/audit-events/",
        audit_views.AuditEventListView.as_view(),
        name="audit-event-list",
    ),
    path("cases/<int:case_pk>/", cases.CaseDetailView.as_view(), name="case-detail"),
    path("cases/<int:case_pk>/lease/", queue.CaseLeaseView.as_view(), name="case-lease"),
    path("cases/<int:case_pk>/skip/", queue.CaseSkipView.as_view(), name="case-skip"),
    path(
        "cases/<int:case_pk>/annotation/",
        annotation_views.MyAnnotationView.as_view(),
        name="my-annotation",
    ),
    path(
        "cases/<int:case_pk>/annotation/submit/",
        annotation_views.SubmitAnnotationView.as_view(),
        name="annotation-submit",
    ),
    path(
        "annotations/<int:annotation_pk>/",
        annotation_views.AnnotationDetailView.as_view(),
        name="annotation-detail",
    ),
    path(
        "annotations/<int:annotation_pk>/review/",
        annotation_views.ReviewAnnotationView.as_view(),
        name="annotation-review",
    ),
]
