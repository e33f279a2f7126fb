"""The project settings page: each part of a project's settings for the roles that change it.

Leads (and admins) change the label schema, the queue and the members; model owners (and
admins) change the loop. Everyone the page admits sees the other parts read-only, except the
members, which only leads and admins see. The page is a shell: frontend/src/settings reads and
writes through the API, which enforces the same policy (``annotations.permissions``)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render

from active_learning.models import LoopSettings, ModelVersion
from active_learning.services import loop_settings
from active_learning.services.metric_schema import promotion_metrics
from annotations import permissions
from annotations.models import Project, Role
from annotations.services import projects
from frontend.templatetags.vite import FrontendNotBuilt


@login_required
def project_settings(request: HttpRequest, project_pk: int) -> HttpResponse:
    """The label schema (with the cold-start warning), the loop, the queue and the members."""
    project = Project.objects.filter(pk=project_pk).first()
    if project is None or not permissions.is_member(request.user, project.pk):
        raise Http404("No such project.")
    if not permissions.allowed(request.user, project.pk, "settings", "view"):
        raise PermissionDenied("Project settings need the lead, model owner or admin role.")

    def may(resource: str, action: str) -> bool:
        return permissions.allowed(request.user, project.pk, resource, action)

    user = request.user
    assert isinstance(user, User)  # login_required
    versions = ModelVersion.objects.filter(project=project).exclude(
        status=ModelVersion.Status.FAILED
    )
    latest = versions.order_by("-number").first()
    grantable = [value for value in Role.values if value != Role.ADMIN]
    kind = loop_settings.model_kind(project)
    match_iou, match_3d = loop_settings.box_match_iou(project)
    if projects.may_manage_admin_role(project, user):
        grantable.append(Role.ADMIN)
    config = {
        "projectId": project.pk,
        "csrfToken": get_token(request),
        "username": request.user.get_username(),
        "can": {
            "project": may("project", "change"),
            "loop": may("loop", "change"),
            "viewMembers": may("membership", "view"),
            "members": may("membership", "change"),
        },
        "grantableRoles": grantable,
        "roleNames": dict(Role.choices),
        # The promotion metrics the kind can be promoted on (a CT project: FROC, mAP in 3D).
        "promotionMetrics": list(promotion_metrics(kind)),
        "warmStarts": [list(choice) for choice in LoopSettings.WarmStart.choices],
        "coldStarts": [list(choice) for choice in LoopSettings.ColdStart.choices],
        # The defaults of the kind the project trains (the built-in model's or the CT
        # detector's): a project's model_config holds only its overrides.
        "modelDefaults": loop_settings.model_defaults(kind),
        "modelKind": kind,
        # The IoU the operating points match boxes at (3D for the CT detector).
        "boxMatchIou": {"value": match_iou, "is3d": match_3d},
        # The newest version a cycle could build on: changing the finding classes forces the
        # next cycle to start cold instead (active_learning.services.cycles._warm_start).
        "latestVersion": latest.number if latest else None,
    }
    context = {
        "project": project,
        "config": config,
        "can_view_dashboard": may("dashboard", "view"),
        "can_view_models": may("model", "view"),
        "can_view_audit": may("audit", "view"),
    }
    try:
        return render(request, "frontend/settings.html", context)
    except FrontendNotBuilt as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain")
