"""The verification pages (issue 16), server-rendered for model owners, leads and admins: the
project's locked test set and validation reports (a model owner asks for one here), and one
report with its figures, subgroups, failures and provenance; the PDF, the JSON and the model
card are the API's (``active_learning.api.verification_views``); a model owner starts the
comparison of two versions from a report's page, and its page shows progress, then the paired
differences and DeLong (the Models page links to all of these through the verification page)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from active_learning.models import ModelVersion, ValidationReport, VersionComparison
from active_learning.services import comparisons, report_documents, test_sets, validation_reports
from annotations import permissions
from annotations.access import project_for
from annotations.services.errors import DomainError

REFUSAL = "Verification needs the model owner, lead or admin role."


@login_required
@require_http_methods(["GET", "POST"])
def verification(request: HttpRequest, project_pk: int) -> HttpResponse:
    """The test set, the reports and, for model owners, a form to ask for a report."""
    project = project_for(request, project_pk, "model", "view", REFUSAL)
    can_change = permissions.allowed(request.user, project.pk, "model", "change")
    error = ""
    if request.method == "POST":
        if not can_change:
            return HttpResponse("Asking for a report needs the model owner role.", status=403)
        raw = str(request.POST.get("version", ""))
        version = (
            ModelVersion.objects.filter(project=project, number=int(raw)).first()
            if raw.isdigit()
            else None
        )
        if version is None:
            error = "Choose one of the project's model versions."
        else:
            try:
                report = validation_reports.request_report(version=version, actor=request.user)
            except DomainError as exc:
                error = exc.message
            else:
                return redirect("project-validation-report", project.pk, report.pk)
    reports = ValidationReport.objects.filter(project=project).select_related(
        "model_version", "test_set"
    )
    context = {
        "project": project,
        "can_change": can_change,
        "test_set": test_sets.status(project),
        "reports": reports,
        "versions": ModelVersion.objects.filter(project=project).order_by("-number"),
        "error": error,
    }
    return render(request, "frontend/verification.html", context, status=400 if error else 200)


@login_required
def validation_report(request: HttpRequest, project_pk: int, report_pk: int) -> HttpResponse:
    """One report: progress while it runs, then everything it holds."""
    project = project_for(request, project_pk, "model", "view", REFUSAL)
    report = (
        ValidationReport.objects.select_related("model_version", "test_set")
        .filter(pk=report_pk, project=project)
        .first()
    )
    if report is None:
        raise Http404("No such validation report in this project.")
    others = ValidationReport.objects.filter(
        project=project, test_set=report.test_set, status=ValidationReport.Status.SUCCEEDED
    ).exclude(pk=report.pk)
    compared = VersionComparison.objects.filter(report_a=report).select_related(
        "report_b__model_version"
    )
    result = report.result or {}
    context = {
        "project": project,
        "report": report,
        "done": report.status == ValidationReport.Status.SUCCEEDED,
        "figure_rows": report_documents.figure_rows(result),
        "subgroup_rows": report_documents.subgroup_rows(result),
        "subgroup_figures": report_documents.SUBGROUP_FIGURES,
        "provenance_rows": report_documents.provenance_rows(result) if result else [],
        "failures": result.get("failures", {}),
        "others": others,
        "comparisons": compared,
        "can_change": permissions.allowed(request.user, project.pk, "model", "change"),
    }
    return render(request, "frontend/validation_report.html", context)


@login_required
@require_http_methods(["POST"])
def start_comparison(
    request: HttpRequest, project_pk: int, report_pk: int, other_pk: int
) -> HttpResponse:
    """A model owner compares this report's version with the other's (the task runs it)."""
    project = project_for(request, project_pk, "model", "view", REFUSAL)
    if not permissions.allowed(request.user, project.pk, "model", "change"):
        return HttpResponse("Comparing versions needs the model owner role.", status=403)
    reports = ValidationReport.objects.select_related("model_version", "test_set").filter(
        project=project
    )
    report, other = reports.filter(pk=report_pk).first(), reports.filter(pk=other_pk).first()
    if report is None or other is None:
        raise Http404("No such validation report in this project.")
    try:
        comparison, _ = comparisons.request_comparison(a=report, b=other, actor=request.user)
    except DomainError as exc:
        return HttpResponse(exc.message, status=400)
    return redirect("project-version-comparison", project.pk, comparison.pk)


@login_required
def version_comparison(request: HttpRequest, project_pk: int, comparison_pk: int) -> HttpResponse:
    """One comparison: progress while it runs, then every figure's difference and DeLong."""
    project = project_for(request, project_pk, "model", "view", REFUSAL)
    comparison = (
        VersionComparison.objects.select_related(
            "report_a__model_version", "report_b__model_version", "report_a__test_set"
        )
        .filter(pk=comparison_pk, project=project)
        .first()
    )
    if comparison is None:
        raise Http404("No such comparison in this project.")
    context = {
        "project": project,
        "comparison": comparison,
        "done": comparison.status == VersionComparison.Status.SUCCEEDED,
        "rows": report_documents.difference_rows(comparison.result or {}),
        "delong": report_documents.delong_rows(comparison.result or {}),
    }
    return render(request, "frontend/version_comparison.html", context)
