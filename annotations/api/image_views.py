"""Serving images to the viewer: the de-identified Part 10 file (for Cornerstone3D's wadouri
loader) with ETag caching, rendered PNGs with window/level, thumbnails, and the quarantine of
images that may show burned-in identifiers. Every fetch is an audit event."""

from __future__ import annotations

from pathlib import Path

import pydicom
from django.conf import settings
from django.http import FileResponse, HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import permissions
from annotations.access import project_for, user_of
from annotations.api.serializers import InstanceSerializer
from annotations.dicom import pixels
from annotations.models import Instance
from annotations.services import audit
from annotations.services.errors import Conflict, InvalidInput
from annotations.services.ingest import storage_path

THUMBNAIL_SIZE = 256


def instance_for(request: Request, instance_pk: int, action: str) -> Instance:
    """The instance if the caller may see its case; quarantined images only for leads and
    admins. The access is audited as ``action``."""
    instance = (
        Instance.objects.select_related("series__study__case__project")
        .filter(pk=instance_pk)
        .first()
    )
    if instance is None:
        raise NotFound("No such image, or you are not a member of its project.")
    case = instance.series.study.case
    if not permissions.is_member(request.user, case.project_id):
        raise NotFound("No such image, or you are not a member of its project.")
    if not permissions.can_view_case(request.user, case):
        raise PermissionDenied("Annotators see only the images of cases they hold or annotated.")
    if instance.quarantined and not permissions.allowed(
        request.user, case.project_id, "quarantine", "review"
    ):
        raise PermissionDenied("This image is quarantined until a lead clears it.")
    audit.record(
        action=action,
        actor=request.user,
        target=instance,
        project_id=case.project_id,
        request=request,
    )
    return instance


def _etag_matches(request: Request, etag: str) -> bool:
    header = request.headers.get("If-None-Match", "")
    return any(tag.strip() in (etag, f"W/{etag}", "*") for tag in header.split(","))


class InstanceFileView(APIView):
    @extend_schema(responses={(200, "application/dicom"): OpenApiTypes.BINARY, 304: None})
    def get(self, request: Request, instance_pk: int) -> HttpResponse | FileResponse:
        instance = instance_for(request, instance_pk, "instance.file")
        etag = f'"{instance.sha256}"'
        response: HttpResponse | FileResponse
        if _etag_matches(request, etag):
            response = HttpResponse(status=304)
        else:
            path = storage_path(instance.file_path)
            if not path.exists():
                raise NotFound("The stored file is missing; ask an administrator.")
            response = FileResponse(path.open("rb"), content_type="application/dicom")
            response["Content-Disposition"] = f'inline; filename="{instance.pk}.dcm"'
        response["ETag"] = etag
        response["Cache-Control"] = "private, max-age=86400"
        return response


def _float(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a number, got {raw!r}.") from exc
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidInput(f"{name} must be a finite number.")
    return value


def _render(request: Request, instance: Instance, max_size: int | None) -> HttpResponse:
    raw_frame = request.query_params.get("frame", "0")
    # isdecimal, not isdigit: "²" is a digit that int() refuses (a 500 before).
    valid = raw_frame.isdecimal() and len(raw_frame) <= 9
    if not valid or int(raw_frame) >= instance.number_of_frames:
        raise InvalidInput(f"frame must be 0..{instance.number_of_frames - 1}, got {raw_frame!r}.")
    frame = int(raw_frame)
    center, width = _float(request, "window_center"), _float(request, "window_width")
    if (center is None) != (width is None):
        raise InvalidInput("Give window_center and window_width together.")
    if width is not None and width <= 0:
        raise InvalidInput("window_width must be positive.")
    invert = request.query_params.get("invert", "false").lower() in ("1", "true", "yes")
    key = (instance.sha256, frame, center, width, invert, max_size)
    etag = '"' + "-".join(str(part) for part in key) + '"'
    if _etag_matches(request, etag):
        response = HttpResponse(status=304)
    else:

        def produce() -> bytes:
            dataset = pydicom.dcmread(storage_path(instance.file_path))
            return pixels.render_png(
                dataset,
                frame,
                window_center=center,
                window_width=width,
                invert=invert,
                max_size=max_size,
            )

        png = pixels.cached_render(
            Path(settings.STORAGE_DIR) / "renders",
            key,
            produce,
            max_bytes=settings.MEDLOOP_RENDER_CACHE_MAX_BYTES,
        )
        response = HttpResponse(png, content_type="image/png")
    response["ETag"] = etag
    response["Cache-Control"] = "private, max-age=86400"
    return response


RENDER_PARAMETERS = [
    OpenApiParameter("frame", int, description="0-based frame"),
    OpenApiParameter("window_center", float),
    OpenApiParameter("window_width", float),
    OpenApiParameter("invert", bool),
]


class InstanceRenderView(APIView):
    @extend_schema(
        parameters=RENDER_PARAMETERS, responses={(200, "image/png"): OpenApiTypes.BINARY, 304: None}
    )
    def get(self, request: Request, instance_pk: int) -> HttpResponse:
        return _render(request, instance_for(request, instance_pk, "instance.render"), None)


class InstanceThumbnailView(APIView):
    @extend_schema(
        parameters=RENDER_PARAMETERS, responses={(200, "image/png"): OpenApiTypes.BINARY, 304: None}
    )
    def get(self, request: Request, instance_pk: int) -> HttpResponse:
        instance = instance_for(request, instance_pk, "instance.thumbnail")
        return _render(request, instance, THUMBNAIL_SIZE)


class ClearQuarantineView(APIView):
    @extend_schema(
        request=None,
        responses=InstanceSerializer,
        description="A lead confirms the image shows no identifiers; annotators then see it. "
        "409 for an image a lead rejected (it stays hidden).",
    )
    def post(self, request: Request, instance_pk: int) -> Response:
        instance = instance_for(request, instance_pk, "instance.view_quarantined")
        project_for(request, instance.series.study.project_id, "quarantine", "review")
        if not instance.quarantined:
            return Response(InstanceSerializer(instance).data)
        if instance.quarantine_rejected_at is not None:
            raise Conflict(
                f"Image {instance.pk} was rejected on "
                f"{instance.quarantine_rejected_at:%Y-%m-%d %H:%M} UTC as showing identifiers; "
                "a rejected image stays hidden."
            )
        Instance.objects.filter(pk=instance.pk).update(quarantined=False)
        instance.quarantined = False
        audit.record(
            action="instance.clear_quarantine",
            actor=user_of(request),
            target=instance,
            project_id=instance.series.study.project_id,
            request=request,
            detail={"reason": instance.quarantine_reason, "cleared_at": timezone.now().isoformat()},
        )
        return Response(InstanceSerializer(instance).data)
