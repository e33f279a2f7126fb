"""Lookups every API view shares: a project or case the caller may see, and If-Match."""

from __future__ import annotations

import re

from django.contrib.auth.models import User
from rest_framework.exceptions import NotAuthenticated, NotFound, PermissionDenied
from rest_framework.request import Request

from annotations import permissions, selectors
from annotations.models import Annotation, Case, Project
from annotations.services import audit, consent

_ETAG = re.compile(r'^(?:W/)?"annotation-(\d{1,18})-v(\d{1,9})"$')


def user_of(request: Request) -> User:
    """The authenticated user of a request (every API view requires authentication)."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user


def project_for(request: Request, project_pk: int, resource: str, action: str) -> Project:
    """The project, if the caller's roles allow ``action`` on ``resource``.

    Non-members get 404 (a project's existence is not disclosed); members without the role
    get 403 naming what they lack."""
    project = permissions.project_with_roles(request.user, project_pk)
    if project is None or not permissions.is_member(request.user, project.pk):
        raise NotFound("No such project, or you are not a member of it.")
    if not permissions.allowed(request.user, project.pk, resource, action):
        needed = sorted(permissions.POLICY[(resource, action)])
        raise PermissionDenied(f"This needs one of the roles {needed} in project {project.pk}.")
    return project


def case_for(
    request: Request,
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
        case = Case.objects.select_related("project", "study__patient").filter(pk=case_pk).first()
    if case is None or not permissions.is_member(request.user, case.project_id):
        raise NotFound("No such case, or you are not a member of its project.")
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


def annotation_for(request: Request, annotation_pk: int) -> Annotation:
    annotation = (
        Annotation.objects.select_related("case__project", "annotator")
        .filter(pk=annotation_pk)
        .first()
    )
    if annotation is None or not permissions.is_member(request.user, annotation.case.project_id):
        raise NotFound("No such annotation, or you are not a member of its project.")
    if not permissions.can_view_annotation(request.user, annotation):
        raise PermissionDenied("You may not see other annotators' work in this project.")
    return annotation


def expected_version(request: Request, annotation: Annotation) -> int | None:
    """The version named by If-Match; None when absent (the service answers 428).

    An ETag of another annotation, ``*`` or a malformed value is a failed precondition: a
    blind overwrite is never allowed."""
    header = request.headers.get("If-Match")
    if header is None or not header.strip():
        return None
    match = _ETAG.match(header.strip())
    if match is None or int(match.group(1)) != annotation.pk:
        return -1
    return int(match.group(2))
