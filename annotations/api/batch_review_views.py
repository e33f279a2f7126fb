"""The two endpoints every batch review has (annotations.services.batch_review): the list of
what awaits a lead's review, and one decision for many items."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import models
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from annotations.access import project_for, user_of
from annotations.services import audit
from annotations.services.batch_review import BatchReview

# Both reviews are the leads' (and admins'): ("quarantine", "review") in the policy.
POLICY = ("quarantine", "review")


def awaiting_list(
    request: Request,
    project_pk: int,
    *,
    awaiting: Callable[[int], models.QuerySet[Any]],
    related: str,
    serializer: type[serializers.Serializer],
    audit_action: str,
    limit: int,
) -> Response:
    """The project's items awaiting review, oldest first (at most ``limit``), the header
    X-Total-Count saying how many in all; the look is audited as ``audit_action``."""
    project = project_for(request, project_pk, *POLICY)
    held = awaiting(project.pk)
    listed = held.select_related(related).order_by("created_at", "id")
    audit.record(
        action=audit_action, actor=user_of(request), project_id=project.pk, request=request
    )
    response = Response(serializer(listed[:limit], many=True).data)
    response["X-Total-Count"] = str(held.count())
    return response


def decision(
    request: Request,
    project_pk: int,
    *,
    body: type[serializers.Serializer],
    review: BatchReview[Any],
    remaining_key: str,
) -> Response:
    """Validate ``body`` (the items under the review's field, ``decision``, ``comment``), make
    the decision, and answer it with the decided ids and how many still await review (under
    ``remaining_key``)."""
    project = project_for(request, project_pk, *POLICY)
    given = body(data=request.data)
    given.is_valid(raise_exception=True)
    data = given.validated_data
    chosen = next(d for d in review.decisions if d.value == data["decision"])
    decided = review.decide(
        project=project,
        ids=data[review.field],
        decision=chosen,
        comment=data["comment"],
        actor=user_of(request),
        request=request,
    )
    return Response(
        {
            "decision": data["decision"],
            review.field: [item.pk for item in decided],
            remaining_key: review.awaiting(project.pk).count(),
        }
    )
