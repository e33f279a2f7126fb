"""Server-rendered pages. The annotator workspace (Vite + Cornerstone3D) builds on these."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.utils import timezone

from annotations import permissions, selectors
from annotations.access import project_for
from annotations.models import Project
from annotations.services import ethics
from frontend.templatetags.vite import FrontendNotBuilt


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The projects the user belongs to, with their roles and queue counts."""
    projects = selectors.projects_with_counts(request.user).order_by("name", "pk")
    rows = [
        {"project": p, "roles": sorted(permissions.roles_in(request.user, p.pk))} for p in projects
    ]
    return render(request, "frontend/home.html", {"rows": rows})


def _workspace(request: HttpRequest, project: Project, mode: str) -> HttpResponse:
    config = {
        "projectId": project.pk,
        "projectName": project.name,
        "mode": mode,
        "username": request.user.get_username(),
        "roles": sorted(permissions.roles_in(request.user, project.pk)),
        "schema": project.label_schema,
        "csrfToken": get_token(request),
    }
    try:
        return render(
            request, "frontend/workspace.html", {"project": project, "mode": mode, "config": config}
        )
    except FrontendNotBuilt as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain")


@login_required
def label(request: HttpRequest, project_pk: int) -> HttpResponse:
    """The annotator workspace: the queue's next case in the viewer, with its context."""
    project = project_for(
        request, project_pk, "queue", "lease", "Labeling needs the annotator role in this project."
    )
    return _workspace(request, project, "annotate")


@login_required
def review(request: HttpRequest, project_pk: int) -> HttpResponse:
    """Reviewer mode: submitted annotations to accept or return."""
    project = project_for(
        request,
        project_pk,
        "annotation",
        "review",
        "Reviewing needs the reviewer, lead or admin role.",
    )
    return _workspace(request, project, "review")


@login_required
def upload(request: HttpRequest, project_pk: int) -> HttpResponse:
    """Upload DICOM files or zips and clinical context; the report is shown per file."""
    project = project_for(
        request, project_pk, "ingest", "upload", "Importing needs the lead or admin role."
    )
    return render(request, "frontend/upload.html", {"project": project})


@login_required
def models(request: HttpRequest, project_pk: int) -> HttpResponse:
    """The model owner's page: retraining cycles (live), model versions, promote and roll back.
    The page is a shell; frontend/src/models loads and acts through the API."""
    project = project_for(
        request,
        project_pk,
        "model",
        "view",
        "The models page needs the model owner, lead or admin role.",
    )
    can_change = permissions.allowed(request.user, project.pk, "model", "change")
    can_view_dashboard = permissions.allowed(request.user, project.pk, "dashboard", "view")
    config = {
        "projectId": project.pk,
        "canChange": can_change,
        "csrfToken": get_token(request),
    }
    context = {
        "project": project,
        "can_change": can_change,
        "can_view_dashboard": can_view_dashboard,
        "config": config,
    }
    try:
        return render(request, "frontend/models.html", context)
    except FrontendNotBuilt as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain")


DASHBOARD_DAYS = (7, 30, 90)


@login_required
def dashboard(request: HttpRequest, project_pk: int) -> HttpResponse:
    """The project lead's dashboard: number tiles and charts of the queue, the burn-down, the
    review load and the annotators' throughput. The page is a shell; frontend/src/dashboards
    draws it from the dashboard API. ``?days=`` picks the annotators' window (7, 30 or 90)."""
    project = project_for(
        request, project_pk, "dashboard", "view", "The dashboard needs the lead or admin role."
    )
    asked = request.GET.get("days", "")
    chosen = next((d for d in DASHBOARD_DAYS if str(d) == asked), 30)
    config = {
        "projectId": project.pk,
        "projectName": project.name,
        "csrfToken": get_token(request),
        "days": chosen,
        "dayChoices": list(DASHBOARD_DAYS),
        "findings": [
            {"key": f["key"], "name": f.get("name", f["key"])}
            for f in project.label_schema.get("findings", [])
        ],
    }
    context = {
        "project": project,
        "config": config,
        "days": chosen,
        "day_choices": DASHBOARD_DAYS,
        "can_view_models": permissions.allowed(request.user, project.pk, "model", "view"),
        "can_review": permissions.allowed(request.user, project.pk, "annotation", "review"),
    }
    try:
        return render(request, "frontend/dashboard.html", context)
    except FrontendNotBuilt as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain")


@login_required
def adjudication(request: HttpRequest, project_pk: int) -> HttpResponse:
    """Double-read cases whose reads disagree, for a reviewer to make the final label. The page is
    a shell; frontend/src/adjudication draws it from the adjudication API."""
    project = project_for(
        request,
        project_pk,
        "adjudication",
        "view",
        "Adjudication needs the reviewer, lead or admin role.",
    )
    config = {
        "projectId": project.pk,
        "csrfToken": get_token(request),
        "findings": project.label_schema.get("findings", []),
        "sections": project.label_schema.get("report_sections", []),
    }
    context = {
        "project": project,
        "config": config,
        "can_view_dashboard": permissions.allowed(request.user, project.pk, "dashboard", "view"),
    }
    try:
        return render(request, "frontend/adjudication.html", context)
    except FrontendNotBuilt as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain")


@login_required
def quarantine(request: HttpRequest, project_pk: int) -> HttpResponse:
    """Images held at import for possibly burned-in identifiers: why each is held, a thumbnail
    (full resolution on demand), and release or reject of many at once with a comment. The page
    is a shell; frontend/src/quarantine draws it from the quarantine API."""
    project = project_for(
        request,
        project_pk,
        "quarantine",
        "review",
        "Reviewing held images needs the lead or admin role.",
    )
    can_view_audit = permissions.allowed(request.user, project.pk, "audit", "view")
    config = {
        "projectId": project.pk,
        "csrfToken": get_token(request),
        "canViewAudit": can_view_audit,
    }
    context = {
        "project": project,
        "config": config,
        "can_view_dashboard": permissions.allowed(request.user, project.pk, "dashboard", "view"),
        "can_view_audit": can_view_audit,
    }
    try:
        return render(request, "frontend/quarantine.html", context)
    except FrontendNotBuilt as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain")


AUDIT_PAGE_SIZE = 50


def _audit_page(request: HttpRequest, project: Project | None) -> HttpResponse:
    config = {
        "projectId": project.pk if project else None,
        "csrfToken": get_token(request),
        "pageSize": AUDIT_PAGE_SIZE,
        "actions": selectors.audit_actions(project.pk if project else None),
    }
    context = {
        "project": project,
        "config": config,
        "can_view_dashboard": project is not None
        and permissions.allowed(request.user, project.pk, "dashboard", "view"),
    }
    try:
        return render(request, "frontend/audit.html", context)
    except FrontendNotBuilt as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain")


@login_required
def project_audit(request: HttpRequest, project_pk: int) -> HttpResponse:
    """A project's audit trail for its leads and admins: the audit API's filters (action, actor,
    dates, object), pages, and the same selection as CSV. A shell; frontend/src/audit draws it."""
    project = project_for(
        request, project_pk, "audit", "view", "The audit trail needs the lead or admin role."
    )
    return _audit_page(request, project)


@login_required
def audit_trail(request: HttpRequest) -> HttpResponse:
    """Every project's audit trail and the logins, for staff (the global audit API)."""
    if not request.user.is_staff:
        raise PermissionDenied(
            "The audit trail of every project needs a staff account; a project's leads and "
            "admins find theirs from the project's row on the home page."
        )
    return _audit_page(request, None)


@login_required
def ethics_page(request: HttpRequest, project_pk: int) -> HttpResponse:
    """The project's ethics approvals (leads and admins record one with its document) and the
    cases its eligibility rules held out (leads and admins include or exclude them)."""
    project = project_for(
        request, project_pk, "ethics", "view", "This page is for the project's members."
    )
    state = ethics.status_of(project)
    can_review = permissions.allowed(request.user, project.pk, "quarantine", "review")
    held_out = (
        list(
            selectors.held_out_cases(project.pk)
            .select_related("study")
            .order_by("created_at", "id")[:500]
        )
        if can_review
        else []
    )
    context = {
        "project": project,
        "approvals": list(ethics.approvals_of(project)),
        "current": state.current,
        "today": timezone.localdate(),
        "can_change": permissions.allowed(request.user, project.pk, "ethics", "change"),
        "can_review": can_review,
        "held_out": held_out,
        "rules_json": json.dumps(project.eligibility_rules or {}),
    }
    return render(request, "frontend/ethics.html", context)
