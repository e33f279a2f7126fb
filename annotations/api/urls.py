from django.urls import path

from annotations.api import (
    annotation_views,
    audit_views,
    cases,
    dashboard_views,
    export_views,
    image_views,
    ingest_views,
    pacs_views,
    projects,
    queue,
)

urlpatterns = [
    path("projects/", projects.ProjectListView.as_view(), name="project-list"),
    path("projects/<id:project_pk>/", projects.ProjectDetailView.as_view(), name="project-detail"),
    path(
        "projects/<id:project_pk>/members/",
        projects.MembershipListView.as_view(),
        name="membership-list",
    ),
    path(
        "projects/<id:project_pk>/members/<id:membership_pk>/",
        projects.MembershipDetailView.as_view(),
        name="membership-detail",
    ),
    path("projects/<id:project_pk>/next-case/", queue.NextCaseView.as_view(), name="next-case"),
    path("projects/<id:project_pk>/cases/", cases.CaseListView.as_view(), name="case-list"),
    path(
        "projects/<id:project_pk>/review-queue/",
        annotation_views.ReviewQueueView.as_view(),
        name="review-queue",
    ),
    path(
        "projects/<id:project_pk>/audit-events/",
        audit_views.AuditEventListView.as_view(),
        name="audit-event-list",
    ),
    path(
        "projects/<id:project_pk>/exports/<str:export_format>/",
        export_views.ExportView.as_view(),
        name="project-export",
    ),
    path(
        "projects/<id:project_pk>/dashboard/queue/",
        dashboard_views.QueueDashboardView.as_view(),
        name="dashboard-queue",
    ),
    path(
        "projects/<id:project_pk>/dashboard/throughput/",
        dashboard_views.ThroughputDashboardView.as_view(),
        name="dashboard-throughput",
    ),
    path(
        "projects/<id:project_pk>/dashboard/review/",
        dashboard_views.ReviewDashboardView.as_view(),
        name="dashboard-review",
    ),
    path("cases/<id:case_pk>/", cases.CaseDetailView.as_view(), name="case-detail"),
    path("cases/<id:case_pk>/lease/", queue.CaseLeaseView.as_view(), name="case-lease"),
    path("cases/<id:case_pk>/skip/", queue.CaseSkipView.as_view(), name="case-skip"),
    path(
        "cases/<id:case_pk>/annotation/",
        annotation_views.MyAnnotationView.as_view(),
        name="my-annotation",
    ),
    path(
        "cases/<id:case_pk>/annotation/submit/",
        annotation_views.SubmitAnnotationView.as_view(),
        name="annotation-submit",
    ),
    path(
        "annotations/<id:annotation_pk>/",
        annotation_views.AnnotationDetailView.as_view(),
        name="annotation-detail",
    ),
    path(
        "annotations/<id:annotation_pk>/review/",
        annotation_views.ReviewAnnotationView.as_view(),
        name="annotation-review",
    ),
    path("projects/<id:project_pk>/uploads/", ingest_views.UploadView.as_view(), name="upload"),
    path(
        "projects/<id:project_pk>/clinical-imports/",
        ingest_views.ClinicalImportView.as_view(),
        name="clinical-import",
    ),
    path(
        "projects/<id:project_pk>/ingest-batches/",
        ingest_views.IngestBatchListView.as_view(),
        name="ingest-batch-list",
    ),
    path(
        "ingest-batches/<id:batch_pk>/",
        ingest_views.IngestBatchDetailView.as_view(),
        name="ingest-batch-detail",
    ),
    path(
        "projects/<id:project_pk>/quarantine/",
        image_views.QuarantineListView.as_view(),
        name="quarantine-list",
    ),
    path(
        "instances/<id:instance_pk>/file/",
        image_views.InstanceFileView.as_view(),
        name="instance-file",
    ),
    path(
        "instances/<id:instance_pk>/render.png",
        image_views.InstanceRenderView.as_view(),
        name="instance-render",
    ),
    path(
        "instances/<id:instance_pk>/thumbnail.png",
        image_views.InstanceThumbnailView.as_view(),
        name="instance-thumbnail",
    ),
    path(
        "instances/<id:instance_pk>/clear-quarantine/",
        image_views.ClearQuarantineView.as_view(),
        name="instance-clear-quarantine",
    ),
    path(
        "projects/<id:project_pk>/pacs-pull/", pacs_views.PacsPullView.as_view(), name="pacs-pull"
    ),
]
