"""Template context every page gets: the ethics notice of the project the page is about."""

from __future__ import annotations

from django.http import HttpRequest

from annotations import permissions
from annotations.models import Project
from annotations.services import ethics


def ethics_notice(request: HttpRequest) -> dict[str, object]:
    """On a project's pages (a ``project_pk`` in the URL) for its members: the ethics status
    sentence (``ethics_notice``) and whether it is a warning of a coming expiry or the
    read-only state (``ethics_level``: "warning" or "read-only"). Nothing elsewhere."""
    match = getattr(request, "resolver_match", None)
    project_pk = match.kwargs.get("project_pk") if match is not None else None
    user = getattr(request, "user", None)
    if project_pk is None or user is None or not user.is_authenticated:
        return {}
    project = Project.objects.filter(pk=project_pk).first()
    if project is None or not permissions.is_member(user, project.pk):
        return {}
    state = ethics.status_of(project)
    message = state.message(project)
    if not message:
        return {}
    return {
        "ethics_notice": message,
        "ethics_level": "read-only" if state.read_only else "warning",
    }
