"""Who may reach what, for the API and the pages alike: the signed-in user, a project whose
roles allow an action, a case the caller may see (each access audited). Refusals are Django's
``Http404`` (a project or case the caller is no member of is not disclosed) and
``PermissionDenied`` naming what is missing; DRF answers them as 404 and 403 with the same
message, Django's pages with its error pages."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

from annotations import permissions, selectors
from annotations.models import Case, Project
from annotations.services import audit, consent
from medloop.compiled_queries import CompiledQuery

AnyRequest = HttpRequest | Request

# The case with its project and patient (for the consent check): read on every submit and case
# call, compiled once (medloop.compiled_queries).
_CASE_WITH_PATIENT = CompiledQuery(
    lambda *, case_pk: Case.objects.select_related("project", "study__patient").filter(pk=case_pk)[
        :1
    ]
)


def user_of(request: AnyRequest) -> User:
    """The authenticated user of a request (every API view requires authentication)."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user


def project_for(
    request: AnyRequest, project_pk: int, resource: str, action: str, refusal: str = ""
) -> Project:
    """The project, if the caller's roles allow ``action`` on ``resource``.

    Non-members get 404 (a project's existence is not disclosed); members without the role
    get 403 with ``refusal``, or by default the roles they lack."""
    project = permissions.project_with_roles(request.user, project_pk)
    if project is None or not permissions.is_member(request.user, project.pk):
        raise Http404("No such project, or you are not a member of it.")
    if not permissions.allowed(request.user, project.pk, resource, action):
        needed = sorted(permissions.POLICY[(resource, action)])
        raise PermissionDenied(
            refusal or f"This needs one of the roles {needed} in project {project.pk}."
        )
    return project


def case_for(
    request: AnyRequest,
    case_pk: int,
    *,
    audit_action: str | None = "case.view",
    with_context: bool = True,
) -> Case:
    """The case (with its clinical context and images when ``with_context``), if the caller may
    see it. Each access is audited as ``audit_action``; None only where the service called
    next records the access itself."""
    if with_context:
        case = selectors.case_with_context(case_pk)
    else:
        # The patient comes along for the consent check below (one query, not two).
        case = next(iter(_CASE_WITH_PATIENT.fetch(case_pk=case_pk)), None)
    if case is None or not permissions.is_member(request.user, case.project_id):
        raise Http404("No such case, or you are not a member of its project.")
    if not (
        permissions.allowed(request.user, case.project_id, "case", "view_any")
        or permissions.allowed(request.user, case.project_id, "case", "view_own")
    ):
        # A role that never sees cases (the data protection officer) learns nothing of this one.
        raise PermissionDenied("Your roles in this project do not include seeing its cases.")
    if not permissions.allowed(request.user, case.project_id, "consent", "change"):
        # An open workspace learns on its next request that the patient withdrew (410).
        consent.check_case_open(case)
    if not permissions.can_view_case(request.user, case):
        raise PermissionDenied("Annotators see only the cases they hold or have annotated.")
    if audit_action is not None:
        audit.record(
            action=audit_action,
            actor=request.user,
            target=case,
            project_id=case.project_id,
            request=request,
        )
    return case
