"""The verification pages (issue 16), server-rendered for model owners, leads and admins: the
project's locked test set and validation reports (a model owner asks for one here), and one
report with its figures, subgroups, failures and provenance; the PDF, the JSON and the model
card are the API's (``active_learning.api.verification_views``)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from active_learning.models import ModelVersion, ValidationReport
from active_learning.services import report_documents, test_sets, validation_reports
from annotations import permissions
from annotations.services.errors import DomainError
from frontend.views import _member_project

REFUSAL = "Verification needs the model owner, lead or admin role."


@login_required
@require_http_methods(["GET", "POST"])
def verification(request: HttpRequest, project_pk: int) -> HttpResponse:
    """The test set, the reports and, for model owners, a form to ask for a report."""
    project = _member_project(request, project_pk, "model", "view", REFUSAL)
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
    project = _member_project(request, project_pk, "model", "view", REFUSAL)
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
    }
    return render(request, "frontend/validation_report.html", context)
