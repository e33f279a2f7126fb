"""``GET/PATCH /api/projects/{id}/loop-settings/``: the promotion guard and warm-start settings
of a project's loop (``active_learning.services.loop_settings``). Model owners, leads and
admins read them; model owners and admins change them."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from active_learning.models import LoopSettings
from active_learning.services import loop_settings
from annotations.api.common import project_for, user_of


class LoopSettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = LoopSettings
        fields = [
            "min_validation_labels",
            "bootstrap_resamples",
            "bootstrap_confidence",
            "bootstrap_seed",
            "warm_start",
            "cold_start",
        ]


class LoopSettingsView(APIView):
    @extend_schema(responses=LoopSettingsSerializer)
    def get(self, request: Request, project_pk: int) -> Response:
        """The settings in force (the defaults until one is changed)."""
        project = project_for(request, project_pk, "model", "view")
        return Response(LoopSettingsSerializer(loop_settings.loop_settings(project)).data)

    @extend_schema(request=LoopSettingsSerializer(partial=True), responses=LoopSettingsSerializer)
    def patch(self, request: Request, project_pk: int) -> Response:
        """Change some settings; a bad value is a 400 naming it."""
        project = project_for(request, project_pk, "loop", "change")
        changes = request.data if isinstance(request.data, dict) else {}
        updated = loop_settings.update_loop_settings(
            project=project, changed_by=user_of(request), **dict(changes)
        )
        return Response(LoopSettingsSerializer(updated).data)
