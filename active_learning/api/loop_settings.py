"""``GET/PATCH /api/projects/{id}/loop-settings/``: the settings of a project's loop, in one
place: the promotion guard's and warm start's (``LoopSettings``) and the project's loop fields
(strategy, retrain threshold, training, promotion metric, auto-promote, model settings).
Model owners, leads and admins read them; model owners and admins change them, all of a
request's values together or none (``active_learning.services.loop_settings``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from active_learning.models import LoopSettings
from active_learning.services import loop_settings
from annotations.api.common import project_for, user_of
from annotations.api.serializers import ProjectInputSerializer
from annotations.models import Project


class LoopSettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = LoopSettings
        fields = list(loop_settings.EDITABLE)


class LoopProjectFieldsSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = list(loop_settings.PROJECT_FIELDS)


class LoopInputSerializer(LoopSettingsSerializer):
    """The guard's settings as stored, and the project's loop fields as the project's own
    endpoint reads them (types and ranges; the service checks names and model settings)."""

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        project_fields = ProjectInputSerializer().get_fields()
        for name in loop_settings.PROJECT_FIELDS:
            fields[name] = project_fields[name]
        return fields


def _render(settings: LoopSettings, project: Project) -> dict[str, Any]:
    return {
        **LoopSettingsSerializer(settings).data,
        **LoopProjectFieldsSerializer(project).data,
    }


class LoopSettingsView(APIView):
    @extend_schema(responses=LoopInputSerializer)
    def get(self, request: Request, project_pk: int) -> Response:
        """The settings in force (the guard's defaults until one is changed)."""
        project = project_for(request, project_pk, "model", "view")
        return Response(_render(loop_settings.loop_settings(project), project))

    @extend_schema(request=LoopInputSerializer(partial=True), responses=LoopInputSerializer)
    def patch(self, request: Request, project_pk: int) -> Response:
        """Change some settings in one transaction; a bad value is a 400 naming it, and then
        nothing changed."""
        project = project_for(request, project_pk, "loop", "change")
        changes = dict(request.data) if isinstance(request.data, dict) else {}
        typed = {
            name: value for name, value in changes.items() if name in loop_settings.PROJECT_FIELDS
        }
        data = ProjectInputSerializer(data=typed, partial=True)
        data.is_valid(raise_exception=True)
        changes.update({name: data.validated_data[name] for name in typed})
        updated = loop_settings.update_loop_settings(
            project=project, changed_by=user_of(request), **changes
        )
        project.refresh_from_db()
        return Response(_render(updated, project))
