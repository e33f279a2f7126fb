"""The locked test set and validation reports (issue 16):

- ``GET /api/projects/{id}/test-set/`` (model owners, leads, admins): the plan, the members,
  the latest lock and whether labels changed since; ``PUT`` (leads, admins): the plan
  (``fraction``, ``double_read``, ``min_subgroup_cases``), drawing the undecided cases;
  ``POST .../test-set/lock/`` (leads, admins): lock it now.
- ``POST /api/projects/{id}/model-versions/{n}/validation-reports/`` (model owners, admins):
  lock the test set and queue a report (202); ``GET /api/projects/{id}/validation-reports/``
  lists them; ``GET /api/validation-reports/{id}/`` (model owners, leads, admins) is the report
  (status and progress while it runs, then its JSON); ``.../pdf/`` the PDF;
  ``.../model-card/`` the version's model card (Markdown).
- ``POST /api/validation-reports/{id}/compare/{other}/`` (model owners, admins): queue the
  paired comparison with another report on the same locked test set (202; 200 with the one
  already made or under way); ``GET`` there (model owners, leads, admins) is the pair's latest
  comparison; ``GET /api/version-comparisons/{id}/`` polls one: status and progress while it
  runs, then its JSON (paired differences and DeLong).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from active_learning.ml.interface import CheckpointError
from active_learning.models import ModelVersion, ValidationReport, VersionComparison
from active_learning.services import (
    comparisons,
    model_cards,
    report_documents,
    test_sets,
    validation_reports,
)
from annotations.access import project_for, user_of
from annotations.services import audit
from annotations.services.errors import Conflict


class TestSetPlanInputSerializer(serializers.Serializer):
    fraction = serializers.JSONField(help_text="Share of non-validation cases held out, (0, 0.5].")
    double_read = serializers.JSONField(required=False, help_text="Reference standard: two reads.")
    min_subgroup_cases = serializers.JSONField(
        required=False, help_text="Subgroups under this many cases are flagged in reports."
    )


class ReportInputSerializer(serializers.Serializer):
    resamples = serializers.JSONField(required=False, help_text="1000 to 20000 (default 2000).")
    seed = serializers.JSONField(required=False, help_text="Bootstrap seed (default 0).")
    confidence = serializers.JSONField(required=False, help_text="Default 0.95.")
    source_project = serializers.IntegerField(
        required=False,
        help_text="External validation: another project whose locked test set is used "
        "(you must see that project's models).",
    )


class ValidationReportSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="model_version.number")
    test_set_version = serializers.IntegerField(source="test_set.version")
    test_set_hash = serializers.CharField(source="test_set.content_hash")

    class Meta:
        model = ValidationReport
        fields = [
            "id",
            "project",
            "version",
            "test_set_version",
            "test_set_hash",
            "status",
            "stage",
            "progress",
            "resamples",
            "seed",
            "confidence",
            "error",
            "created_at",
            "finished_at",
        ]


class ValidationReportDetailSerializer(ValidationReportSerializer):
    class Meta(ValidationReportSerializer.Meta):
        fields = [*ValidationReportSerializer.Meta.fields, "result"]


class VersionComparisonSerializer(serializers.ModelSerializer):
    version_a = serializers.IntegerField(source="report_a.model_version.number")
    version_b = serializers.IntegerField(source="report_b.model_version.number")

    class Meta:
        model = VersionComparison
        fields = [
            "id",
            "project",
            "report_a",
            "report_b",
            "version_a",
            "version_b",
            "status",
            "stage",
            "progress",
            "error",
            "created_at",
            "finished_at",
            "result",
        ]


class TestSetView(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, project_pk: int) -> Response:
        """The test set plan, its members and its latest lock."""
        project = project_for(request, project_pk, "model", "view")
        return Response(test_sets.status(project))

    @extend_schema(request=TestSetPlanInputSerializer, responses=OpenApiTypes.OBJECT)
    def put(self, request: Request, project_pk: int) -> Response:
        """Set the plan and draw the cases not yet decided."""
        project = project_for(request, project_pk, "project", "change")
        data = TestSetPlanInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields: dict[str, Any] = dict(data.validated_data)
        test_sets.set_plan(project=project, actor=user_of(request), **fields)
        return Response(test_sets.status(project))


class TestSetLockView(APIView):
    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, project_pk: int) -> Response:
        """Lock the test set as it is now (the latest version when nothing changed)."""
        project = project_for(request, project_pk, "project", "change")
        locked, created = test_sets.lock(project=project, actor=user_of(request))
        body = {"version": locked.version, "content_hash": locked.content_hash, "created": created}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class VersionReportsView(APIView):
    @extend_schema(request=ReportInputSerializer, responses={202: ValidationReportSerializer})
    def post(self, request: Request, project_pk: int, number: int) -> Response:
        """Lock the test set and queue a validation report of this version."""
        project = project_for(request, project_pk, "model", "change")
        version = ModelVersion.objects.filter(project=project, number=number).first()
        if version is None:
            raise NotFound(f"This project has no model version {number}.")
        data = ReportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        source_pk = fields.pop("source_project", None)
        source = None if source_pk is None else project_for(request, source_pk, "model", "view")
        report = validation_reports.request_report(
            version=version, actor=user_of(request), source=source, **fields
        )
        return Response(ValidationReportSerializer(report).data, status=status.HTTP_202_ACCEPTED)


class ProjectReportsView(APIView):
    @extend_schema(responses=ValidationReportSerializer(many=True))
    def get(self, request: Request, project_pk: int) -> Response:
        """The project's validation reports, newest first."""
        project = project_for(request, project_pk, "model", "view")
        reports = ValidationReport.objects.filter(project=project).select_related(
            "model_version", "test_set"
        )
        return Response(ValidationReportSerializer(reports, many=True).data)


def report_for(request: Request, report_pk: int) -> ValidationReport:
    """The report, if the caller may see its project's models (404 otherwise)."""
    report = (
        ValidationReport.objects.select_related("model_version", "test_set", "project")
        .filter(pk=report_pk)
        .first()
    )
    if report is None:
        raise NotFound("No such validation report.")
    project_for(request, report.project_id, "model", "view")
    return report


class ReportDetailView(APIView):
    @extend_schema(responses=ValidationReportDetailSerializer)
    def get(self, request: Request, report_pk: int) -> Response:
        """The report: status and progress while it runs, then its figures and provenance."""
        return Response(ValidationReportDetailSerializer(report_for(request, report_pk)).data)


class ReportPdfView(APIView):
    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    def get(self, request: Request, report_pk: int) -> HttpResponse:
        """The finished report as a PDF."""
        report = report_for(request, report_pk)
        if report.status != ValidationReport.Status.SUCCEEDED:
            raise Conflict(
                f"Report {report.pk} is {report.status}; its PDF exists once it is done."
            )
        response = HttpResponse(report_documents.pdf(report), content_type="application/pdf")
        name = f"validation-report-{report.pk}-v{report.model_version.number}.pdf"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class ReportComparisonView(APIView):
    @extend_schema(request=None, responses={202: VersionComparisonSerializer})
    def post(self, request: Request, report_pk: int, other_pk: int) -> Response:
        """Queue this report's version against the other report's on the same locked test set:
        paired bootstrap differences of every figure and DeLong's test per finding. 200 with
        the comparison already made or under way for the pair."""
        report, other = report_for(request, report_pk), report_for(request, other_pk)
        project_for(request, report.project_id, "model", "change")
        comparison, created = comparisons.request_comparison(
            a=report, b=other, actor=user_of(request)
        )
        code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        return Response(VersionComparisonSerializer(comparison).data, status=code)

    @extend_schema(responses=VersionComparisonSerializer)
    def get(self, request: Request, report_pk: int, other_pk: int) -> Response:
        """The pair's latest comparison (404 before one is asked for)."""
        report, other = report_for(request, report_pk), report_for(request, other_pk)
        comparison = comparisons.latest(report, other)
        if comparison is None:
            raise NotFound(
                f"Report {report.pk} has not been compared with report {other.pk}: POST here "
                "to start the comparison."
            )
        return Response(VersionComparisonSerializer(comparison).data)


class VersionComparisonView(APIView):
    @extend_schema(responses=VersionComparisonSerializer)
    def get(self, request: Request, comparison_pk: int) -> Response:
        """A comparison: status and progress while it runs, then its differences and DeLong."""
        comparison = (
            VersionComparison.objects.select_related(
                "report_a__model_version", "report_b__model_version"
            )
            .filter(pk=comparison_pk)
            .first()
        )
        if comparison is None:
            raise NotFound("No such comparison.")
        project_for(request, comparison.project_id, "model", "view")
        return Response(VersionComparisonSerializer(comparison).data)


class VersionExportView(APIView):
    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request: Request, project_pk: int, number: int) -> HttpResponse:
        """The version's weights, manifest and configuration with its model card, as a zip."""
        project = project_for(request, project_pk, "model", "change")
        version = ModelVersion.objects.filter(project=project, number=number).first()
        if version is None:
            raise NotFound(f"This project has no model version {number}.")
        if not version.weights_path:
            raise Conflict(f"Model version {number} has no weights to export.")
        try:
            archive = model_cards.export_bytes(version)
        except CheckpointError as exc:
            raise Conflict(f"Model version {number} cannot be exported: {exc}") from exc
        audit.record(
            action="model_version.export",
            actor=user_of(request),
            target=version,
            project_id=project.pk,
            request=request,
            detail={"number": number, "weights_sha256": version.weights_sha256},
        )
        response = HttpResponse(archive, content_type="application/zip")
        name = f"model-version-{number}-project-{project.pk}.zip"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class ModelCardView(APIView):
    @extend_schema(responses={(200, "text/markdown"): OpenApiTypes.STR})
    def get(self, request: Request, report_pk: int) -> HttpResponse:
        """The version's model card in Markdown, generated from this finished report."""
        report = report_for(request, report_pk)
        if report.status != ValidationReport.Status.SUCCEEDED:
            raise Conflict(f"Report {report.pk} is {report.status}; a card needs it done.")
        response = HttpResponse(
            model_cards.model_card(report), content_type="text/markdown; charset=utf-8"
        )
        name = f"model-card-v{report.model_version.number}-report-{report.pk}.md"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
