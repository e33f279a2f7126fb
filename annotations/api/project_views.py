"""Projects and memberships."""

from __future__ import annotations

from django.db import IntegrityError
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import permissions, selectors
from annotations.access import project_for, user_of
from annotations.api import project_parts
from annotations.api.serializers import (
    MembershipGrantSerializer,
    MembershipInputSerializer,
    MembershipSerializer,
    ProjectInputSerializer,
    ProjectSerializer,
)
from annotations.models import Membership
from annotations.services import projects
from annotations.services.errors import Conflict, InvalidInput


def _refuse_other_parts(request: Request, project_pk: int | None) -> None:
    """A field another app owns (``project_parts``: the loop's settings) is shown with the
    project but changed at its own endpoint: naming one here is a 400 that says where."""
    body = request.data if isinstance(request.data, dict) else {}
    why = project_parts.misplaced_fields(body, project_pk)
    if why:
        raise InvalidInput(why)


def _check_may_change(request: Request, project_pk: int) -> None:
    """Leads and admins change a project's own settings; a refusal names the fields asked for
    and the roles that may change them."""
    if permissions.allowed(request.user, project_pk, "project", "change"):
        return
    body = request.data if isinstance(request.data, dict) else {}
    known = [str(name) for name in ProjectInputSerializer().fields if name in body]
    roles = ", ".join(sorted(str(role) for role in permissions.POLICY[("project", "change")]))
    raise PermissionDenied(
        f"In project {project_pk}, changing {', '.join(known) or 'the project'} needs one of "
        f"the roles {roles}."
    )


class ProjectListView(APIView):
    @extend_schema(responses=ProjectSerializer(many=True))
    def get(self, request: Request) -> Response:
        items = selectors.projects_for(request.user)
        return Response(ProjectSerializer(items, many=True, context={"request": request}).data)

    @extend_schema(request=ProjectInputSerializer, responses={201: ProjectSerializer})
    def post(self, request: Request) -> Response:
        if not request.user.is_staff:
            raise PermissionDenied("Only staff users can create projects.")
        _refuse_other_parts(request, None)
        data = ProjectInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            project = projects.create_project(created_by=request.user, **data.validated_data)
        except IntegrityError as exc:
            raise Conflict("A project with this name exists already.") from exc
        return Response(
            ProjectSerializer(project, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class ProjectDetailView(APIView):
    @extend_schema(responses=ProjectSerializer)
    def get(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "project", "view")
        return Response(ProjectSerializer(project, context={"request": request}).data)

    @extend_schema(request=ProjectInputSerializer(partial=True), responses=ProjectSerializer)
    def patch(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "project", "view")
        _check_may_change(request, project.pk)
        _refuse_other_parts(request, project.pk)
        data = ProjectInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = {k: v for k, v in data.validated_data.items() if k in request.data}
        if "modality" in changes:
            # The modality picks the model kind the loop trains; it is changed in the Django
            # admin, whose form asks the loop whether its model settings fit the new kind.
            modality = changes.pop("modality")
            if modality != project.modality:
                raise InvalidInput(
                    f"modality cannot be changed here (it is {project.modality}, got "
                    f"{modality}): an administrator changes it in the admin's project form, "
                    f"which checks the loop's model settings against the new modality's model kind"
                )
        try:
            project = projects.update_project(
                project=project, changed_by=user_of(request), **changes
            )
        except IntegrityError as exc:
            raise Conflict("A project with this name exists already.") from exc
        return Response(ProjectSerializer(project, context={"request": request}).data)


class MembershipListView(APIView):
    @extend_schema(responses=MembershipSerializer(many=True))
    def get(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "membership", "view")
        members = project.memberships.select_related("user").order_by("user__username", "role")
        return Response(MembershipSerializer(members, many=True).data)

    @extend_schema(request=MembershipInputSerializer, responses={202: MembershipGrantSerializer})
    def post(self, request: Request, project_pk: int) -> Response:
        """Give a user a role. The answer is the same whether the account exists or not (202):
        the member list shows who holds which role."""
        project = project_for(request, project_pk, "membership", "change")
        data = MembershipInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        username, role = data.validated_data["username"], data.validated_data["role"]
        projects.grant_role(
            project=project, username=username, role=role, granted_by=user_of(request)
        )
        answer = {
            "username": username,
            "role": role,
            "message": f"If an active account named {username!r} exists, it holds the role "
            f"{role!r} in this project now.",
        }
        return Response(MembershipGrantSerializer(answer).data, status=status.HTTP_202_ACCEPTED)


class MembershipDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, project_pk: int, membership_pk: int) -> Response:
        project = project_for(request, project_pk, "membership", "change")
        membership = Membership.objects.filter(pk=membership_pk, project=project).first()
        if membership is None:
            raise NotFound("No such membership in this project.")
        projects.remove_member(membership=membership, removed_by=user_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
