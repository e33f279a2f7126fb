"""Server-rendered pages. The annotator workspace (Vite + Cornerstone3D) builds on these."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from annotations import permissions, selectors
from annotations.models import Case, Project


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The projects the user belongs to, with their roles and queue counts."""
    projects = selectors.projects_for(request.user).annotate(
        open_cases=Count("cases", filter=Q(cases__state=Case.State.OPEN)),
        complete_cases=Count("cases", filter=Q(cases__state=Case.State.COMPLETE)),
    )
    rows = [
        {"project": p, "roles": sorted(permissions.roles_in(request.user, p.pk))} for p in projects
    ]
    return render(request, "frontend/home.html", {"rows": rows})


@login_required
def upload(request: HttpRequest, project_pk: int) -> HttpResponse:
    """Upload DICOM files or zips and clinical context; the report is shown per file."""
    project = Project.objects.filter(pk=project_pk).first()
    if project is None or not permissions.is_member(request.user, project.pk):
        raise Http404("No such project.")
    if not permissions.allowed(request.user, project.pk, "ingest", "upload"):
        raise PermissionDenied("Importing needs the lead or admin role.")
    return render(request, "frontend/upload.html", {"project": project})
