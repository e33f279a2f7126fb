"""Server-rendered pages. The annotator workspace (Vite + Cornerstone3D) builds on these."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotations import permissions, selectors
from annotations.models import Case


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
