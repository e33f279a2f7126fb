"""``GET/PATCH /api/projects/{id}/loop-settings/``: the settings of a project's loop, in one
place (``LoopSettings``): strategy, retrain threshold, training, promotion metric,
auto-promote, model settings, the promotion guard and where training starts. Model owners,
leads and admins read them; model owners and admins change them, all of a request's values
together or none (``active_learning.services.loop_settings``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from active_learning.models import LoopSettings
from active_learning.services import loop_settings
from annotations.access import project_for, user_of
from annotations.services.errors import InvalidInput


class LoopSettingsSerializer(serializers.ModelSerializer):
    effective_model_kind = serializers.SerializerMethodField(
        help_text="the model kind the project trains: model_kind when set, else the kind for "
        'the project\'s modality (model_kind "": by modality; CT: ct_retinanet3d)'
    )
    model_defaults = serializers.SerializerMethodField(
        help_text="the defaults of the effective kind's settings the settings page edits "
        "(model_config holds only the project's overrides)"
    )

    def get_effective_model_kind(self, settings: LoopSettings) -> str:
        return loop_settings.kind_of(settings)

    def get_model_defaults(self, settings: LoopSettings) -> dict[str, Any]:
        return loop_settings.model_defaults(loop_settings.kind_of(settings))

    class Meta:
        model = LoopSettings
        fields = [*loop_settings.EDITABLE, "effective_model_kind", "model_defaults"]
        read_only_fields = ["effective_model_kind", "model_defaults"]


class LoopSettingsView(APIView):
    @extend_schema(responses=LoopSettingsSerializer)
    def get(self, request: Request, project_pk: int) -> Response:
        """The settings in force (the defaults until one is changed)."""
        project = project_for(request, project_pk, "model", "view")
        return Response(LoopSettingsSerializer(loop_settings.loop_settings(project)).data)

    @extend_schema(request=LoopSettingsSerializer(partial=True), responses=LoopSettingsSerializer)
    def patch(self, request: Request, project_pk: int) -> Response:
        """Change some settings in one transaction; a bad value is a 400 naming it, and then
        nothing changed."""
        project = project_for(request, project_pk, "loop", "change")
        if not isinstance(request.data, dict):
            raise InvalidInput("The body must be a JSON object of loop settings.")
        updated = loop_settings.update_loop_settings(
            project=project, changed_by=user_of(request), **request.data
        )
        return Response(LoopSettingsSerializer(updated).data)
