"""Lookups of the annotation API: an annotation the caller may see, and If-Match. The project and
case lookups every API view and page shares are in :mod:`annotations.access`."""

from __future__ import annotations

import re

from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request

from annotations import permissions
from annotations.models import Annotation

_ETAG = re.compile(r'^(?:W/)?"annotation-(\d{1,18})-v(\d{1,9})"$')


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
