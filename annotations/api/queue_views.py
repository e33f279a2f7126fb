"""The case queue: next case, lease renewal, release and skip."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import permissions
from annotations.access import case_for, project_for, user_of
from annotations.api import representations
from annotations.api.serializers import (
    CaseDetailSerializer,
    NextCaseSerializer,
    SkipInputSerializer,
)
from annotations.models import Case
from annotations.services import annotate, audit, queue
from annotations.services.errors import InvalidInput


def _require_annotator(request: Request, case: Case) -> None:
    if not permissions.allowed(request.user, case.project_id, "queue", "lease"):
        raise PermissionDenied("Only annotators of this project hold leases.")


class NextCaseView(APIView):
    @extend_schema(
        request=None,
        responses={200: NextCaseSerializer, 204: None},
        parameters=[
            OpenApiParameter(
                "exclude",
                str,
                description="Case ids (comma-separated) you already have open: lease the one "
                "after them, to prefetch it. At most two cases are held at once.",
            )
        ],
        description="Lease the highest-priority case that needs your label, with your working "
        "copy of its annotation (and its ETag). 204: nothing left for you.",
    )
    def post(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "queue", "lease")
        parts = [p.strip() for p in request.query_params.get("exclude", "").split(",") if p.strip()]
        # isdecimal, not isdigit: "²" is a digit that int() refuses (a 500 before).
        if any(not p.isdecimal() or len(p) > 18 for p in parts) or len(parts) > 10:
            raise InvalidInput("exclude must be up to 10 case ids separated by commas.")
        exclude = [int(p) for p in parts]
        # One transaction (one commit) for the lease, the working copy and their audit events
        # (written together, in one INSERT, before the commit).
        with transaction.atomic(), audit.batched():
            leased = queue.lease_next_case(
                project=project, annotator=user_of(request), exclude=exclude
            )
            if leased is None:
                return Response(status=status.HTTP_204_NO_CONTENT)
            # lease_next_case audited this access as "case.lease".
            case = case_for(request, leased.pk, audit_action=None)
            annotation = annotate.start_annotation(
                case=case, annotator=user_of(request), with_suggestion=True
            )
        # NextCaseSerializer's answer, built without its per-field machinery.
        return Response(representations.next_case(case, annotation))


class CaseLeaseView(APIView):
    @extend_schema(
        request=None,
        responses=CaseDetailSerializer,
        description="Renew your lease on a case while you work on it.",
    )
    def put(self, request: Request, case_pk: int) -> Response:
        case = case_for(request, case_pk, audit_action="case.lease_renew", with_context=False)
        _require_annotator(request, case)
        queue.renew_lease(case=case, annotator=user_of(request))
        return Response(CaseDetailSerializer(case).data)

    @extend_schema(
        request=None, responses={204: None}, description="Give the case back to the queue."
    )
    def delete(self, request: Request, case_pk: int) -> Response:
        case = case_for(request, case_pk, audit_action="case.lease_release", with_context=False)
        _require_annotator(request, case)
        queue.release_lease(case=case, annotator=user_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CaseSkipView(APIView):
    @extend_schema(
        request=SkipInputSerializer,
        responses={204: None},
        description="Pass on a case, with a reason; it is not offered to you again.",
    )
    def post(self, request: Request, case_pk: int) -> Response:
        case = case_for(request, case_pk, with_context=False)
        _require_annotator(request, case)
        data = SkipInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        queue.release_lease(
            case=case, annotator=user_of(request), skip_reason=data.validated_data["reason"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
