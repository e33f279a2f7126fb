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
from annotations.api.common import project_for, user_of
from annotations.api.serializers import (
    MembershipGrantSerializer,
    MembershipInputSerializer,
    MembershipSerializer,
    ProjectInputSerializer,
    ProjectSerializer,
)
from annotations.models import Membership
from annotations.services import projects
from annotations.services.errors import Conflict


def _check_may_change(request: Request, project_pk: int) -> None:
    """Each field is changed by the roles its part of the settings names
    (``permissions.project_field_policy``): leads the schema and the queue, model owners the
    loop, admins both. A request naming a field the caller may not change is refused whole."""
    body = request.data if isinstance(request.data, dict) else {}
    known = [str(name) for name in ProjectInputSerializer().fields]
    fields = [name for name in known if name in body] or ["description"]
    refused: dict[tuple[str, str], list[str]] = {}
    for field in fields:
        policy = permissions.project_field_policy(field)
        if not permissions.allowed(request.user, project_pk, *policy):
            refused.setdefault(policy, []).append(field)
    if refused:
        parts = [
            f"changing {', '.join(names)} needs one of the roles "
            f"{', '.join(sorted(str(role) for role in permissions.POLICY[policy]))}"
            for policy, names in refused.items()
        ]
        raise PermissionDenied(f"In project {project_pk}, " + "; ".join(parts) + ".")


class ProjectListView(APIView):
    @extend_schema(responses=ProjectSerializer(many=True))
    def get(self, request: Request) -> Response:
        items = selectors.projects_for(request.user)
        return Response(ProjectSerializer(items, many=True, context={"request": request}).data)

    @extend_schema(request=ProjectInputSerializer, responses={201: ProjectSerializer})
    def post(self, request: Request) -> Response:
        if not request.user.is_staff:
            raise PermissionDenied("Only staff users can create projects.")
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
        data = ProjectInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = {k: v for k, v in data.validated_data.items() if k in request.data}
        if changes.get("modality"):
            changes.pop("modality")  # the modality of stored images does not change
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
