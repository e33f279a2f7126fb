"""Annotations: the annotator's own (ETag / If-Match), submission, review."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import permissions, selectors
from annotations.access import case_for, project_for, user_of
from annotations.api import representations
from annotations.api.annotation_input import validated_input
from annotations.api.common import annotation_for, expected_version
from annotations.api.serializers import (
    AnnotationInputSerializer,
    AnnotationSerializer,
    ReviewInputSerializer,
    ReviewQueueQuerySerializer,
)
from annotations.models import Annotation
from annotations.services import annotate, audit, queue
from medloop.pagination import CappedLimitOffsetPagination as LimitOffsetPagination

logger = logging.getLogger(__name__)

IF_MATCH = OpenApiParameter(
    "If-Match",
    location=OpenApiParameter.HEADER,
    required=True,
    description="The ETag from the last read. Missing: 428. Stale: 412.",
)


def _content(validated: dict[str, Any]) -> dict[str, Any]:
    """Service keyword arguments from validated annotation input (absent parts stay None)."""
    boxes = validated.get("boxes")
    return {
        "findings": validated.get("findings"),
        "report": validated.get("report"),
        "boxes": [annotate.BoxInput(**b) for b in boxes] if boxes is not None else None,
        "rejected_suggestion_boxes": validated.get("rejected_suggestion_boxes"),
    }


def _with_etag(annotation: Annotation, status_code: int = 200) -> Response:
    response = Response(AnnotationSerializer(annotation).data, status=status_code)
    response["ETag"] = annotation.etag
    return response


class MyAnnotationView(APIView):
    """The calling annotator's working copy for a case (created on first GET)."""

    @extend_schema(responses=AnnotationSerializer)
    def get(self, request: Request, case_pk: int) -> Response:
        case = case_for(request, case_pk, with_context=False)
        if not permissions.allowed(request.user, case.project_id, "annotation", "annotate"):
            raise PermissionDenied("Only annotators of this project annotate cases.")
        annotation = annotate.start_annotation(case=case, annotator=user_of(request))
        return _with_etag(annotation)

    @extend_schema(
        request=AnnotationInputSerializer, responses=AnnotationSerializer, parameters=[IF_MATCH]
    )
    def put(self, request: Request, case_pk: int) -> Response:
        case = case_for(request, case_pk, audit_action="case.annotate", with_context=False)
        if not permissions.allowed(request.user, case.project_id, "annotation", "annotate"):
            raise PermissionDenied("Only annotators of this project annotate cases.")
        annotation = annotate.start_annotation(case=case, annotator=user_of(request))
        data = validated_input(request.data)
        annotation = annotate.save_draft(
            annotation=annotation,
            actor=user_of(request),
            expected_version=expected_version(request, annotation),
            **_content(data),
        )
        return _with_etag(annotation)


class SubmittedAnnotationSerializer(AnnotationSerializer):
    returned_waiting = serializers.SerializerMethodField(
        help_text="ids of your cases a reviewer returned, which next-case hands you before "
        "the cases you hold (empty: the case you prefetched comes next)"
    )

    class Meta(AnnotationSerializer.Meta):
        fields = [*AnnotationSerializer.Meta.fields, "returned_waiting"]

    def get_returned_waiting(self, annotation: Annotation) -> list[int]:
        return list(self.context.get("returned_waiting", []))


class SubmitAnnotationView(APIView):
    @extend_schema(
        request=AnnotationInputSerializer,
        responses=SubmittedAnnotationSerializer,
        parameters=[IF_MATCH],
        description="Submit your annotation; the body may carry its final content. The answer "
        "says which returned cases of yours wait (they come before the case you prefetched).",
    )
    def post(self, request: Request, case_pk: int) -> Response:
        case = None
        try:
            # One transaction: the access (case.annotate), the submission and their audit
            # events, written together before the one commit.
            with transaction.atomic(), audit.batched():
                case = case_for(request, case_pk, audit_action="case.annotate", with_context=False)
                if not permissions.allowed(request.user, case.project_id, "annotation", "annotate"):
                    raise PermissionDenied("Only annotators of this project annotate cases.")
                annotation = annotate.start_annotation(
                    case=case, annotator=user_of(request), with_suggestion=True
                )
                # AnnotationInputSerializer's validation (annotation_input: a plain body
                # without its per-field machinery).
                data = validated_input(request.data)
                annotation = annotate.submit(
                    annotation=annotation,
                    actor=user_of(request),
                    expected_version=expected_version(request, annotation),
                    **_content(data),
                )
        except Exception:
            if case is not None:
                # The submission was refused and rolled back, and the access it made to the case
                # with it: that access is still put on the trail, on its own.
                try:
                    audit.record(
                        action="case.annotate",
                        actor=request.user,
                        target=case,
                        project_id=case.project_id,
                        request=request,
                    )
                except Exception:  # the database itself failed: the request fails with it
                    logger.exception("could not audit the access to case %s", case.pk)
            raise
        assert case is not None
        returned = queue.returned_work_waiting_ids(
            project_id=case.project_id, annotator=user_of(request)
        )
        # SubmittedAnnotationSerializer's answer, built without its per-field machinery.
        response = Response(representations.submitted(annotation, returned))
        response["ETag"] = annotation.etag
        return response


class AnnotationDetailView(APIView):
    @extend_schema(responses=AnnotationSerializer)
    def get(self, request: Request, annotation_pk: int) -> Response:
        annotation = annotation_for(request, annotation_pk)
        # The answer holds the report text: every read is on the trail.
        audit.record(
            action="annotation.view",
            actor=request.user,
            target=annotation,
            project_id=annotation.case.project_id,
            request=request,
        )
        return _with_etag(annotation)


class ReviewAnnotationView(APIView):
    @extend_schema(
        request=ReviewInputSerializer, responses=AnnotationSerializer, parameters=[IF_MATCH]
    )
    def post(self, request: Request, annotation_pk: int) -> Response:
        annotation = annotation_for(request, annotation_pk)
        if not permissions.allowed(
            request.user, annotation.case.project_id, "annotation", "review"
        ):
            raise PermissionDenied("Reviewing needs the reviewer, lead or admin role.")
        data = ReviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        annotation = annotate.review(
            annotation=annotation,
            reviewer=user_of(request),
            accept=data.validated_data["decision"] == "accept",
            comment=data.validated_data["comment"],
            expected_version=expected_version(request, annotation),
        )
        return _with_etag(annotation)


class ReviewQueueView(APIView):
    # The answer is paginated (count, next, previous, results): the schema says so.
    pagination_class = LimitOffsetPagination

    @extend_schema(
        parameters=[ReviewQueueQuerySerializer], responses=AnnotationSerializer(many=True)
    )
    def get(self, request: Request, project_pk: int) -> Response:
        """Submitted annotations, sortable and filterable by the model's confidence in what it
        showed and by how much the annotator changed it."""
        project = project_for(request, project_pk, "annotation", "review")
        query = ReviewQueueQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(
            selectors.annotations_to_review(project, **query.validated_data), request, view=self
        )
        # One event per page read, naming the annotations (and so the reports) it showed.
        audit.record(
            action="annotation.review_queue",
            actor=request.user,
            project_id=project.pk,
            request=request,
            detail={"annotation_ids": [annotation.pk for annotation in page or []]},
        )
        return paginator.get_paginated_response(AnnotationSerializer(page, many=True).data)
