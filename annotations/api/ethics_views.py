"""Ethics approvals of a project (issue 17, section 3): where the project stands, the approvals
recorded with their documents, recording a new one, revoking one, and (admins) whether the
project needs one at all."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import permissions
from annotations.access import project_for, user_of
from annotations.models import EthicsApproval, Project
from annotations.services import audit, ethics
from annotations.services.errors import InvalidInput


class EthicsApprovalSerializer(serializers.ModelSerializer):
    recorded_by = serializers.CharField(
        source="recorded_by.username", default=None, allow_null=True, read_only=True
    )
    has_document = serializers.SerializerMethodField()

    class Meta:
        model = EthicsApproval
        fields = [
            "id",
            "committee",
            "reference",
            "approved_on",
            "expires_on",
            "scope",
            "document_name",
            "document_content_type",
            "document_sha256",
            "document_size",
            "has_document",
            "recorded_by",
            "recorded_at",
            "revoked_at",
            "revoked_reason",
        ]

    def get_has_document(self, approval: EthicsApproval) -> bool:
        return bool(approval.document_path)


class EthicsStatusSerializer(serializers.Serializer):
    requires_ethics_approval = serializers.BooleanField()
    read_only = serializers.BooleanField(help_text="no ingest, annotation or training")  # type: ignore[assignment]
    current = EthicsApprovalSerializer(allow_null=True)
    days_left = serializers.IntegerField(allow_null=True)
    warning = serializers.BooleanField(help_text="the current approval expires soon")
    message = serializers.CharField(allow_blank=True)
    approvals = EthicsApprovalSerializer(many=True)


class ApprovalInputSerializer(serializers.Serializer):
    committee = serializers.CharField(max_length=200)
    reference = serializers.CharField(max_length=100)
    approved_on = serializers.DateField()
    expires_on = serializers.DateField()
    scope = serializers.CharField(max_length=5000)
    document = serializers.FileField(required=False, help_text="PDF, text or image")


class RevokeInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class RequirementInputSerializer(serializers.Serializer):
    requires_ethics_approval = serializers.BooleanField()


def _status_body(project: Project) -> dict[str, object]:
    state = ethics.status_of(project)
    return {
        "requires_ethics_approval": state.required,
        "read_only": state.read_only,
        "current": state.current,
        "days_left": state.days_left,
        "warning": state.warning,
        "message": state.message(project),
        "approvals": list(ethics.approvals_of(project)),
    }


class EthicsStatusView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(responses=EthicsStatusSerializer)
    def get(self, request: Request, project_pk: int) -> Response:
        """Whether the project needs an ethics approval, the one in force, and every approval
        recorded (newest expiry first)."""
        project = project_for(request, project_pk, "ethics", "view")
        return Response(EthicsStatusSerializer(_status_body(project)).data)

    @extend_schema(request=RequirementInputSerializer, responses=EthicsStatusSerializer)
    def patch(self, request: Request, project_pk: int) -> Response:
        """Turn the approval rule on or off for the project (project admins only)."""
        project = project_for(request, project_pk, "ethics", "require")
        body = RequirementInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ethics.set_requirement(
            project=project,
            required=body.validated_data["requires_ethics_approval"],
            actor=user_of(request),
            request=request,
        )
        return Response(EthicsStatusSerializer(_status_body(project)).data)


class EthicsApprovalListView(APIView):
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        request={"multipart/form-data": ApprovalInputSerializer},
        responses={201: EthicsApprovalSerializer},
    )
    def post(self, request: Request, project_pk: int) -> Response:
        """Record an ethics approval with its document (multipart field ``document``)."""
        project = project_for(request, project_pk, "ethics", "change")
        body = ApprovalInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        upload = data.get("document")
        approval = ethics.record_approval(
            project=project,
            committee=data["committee"],
            reference=data["reference"],
            approved_on=data["approved_on"],
            expires_on=data["expires_on"],
            scope=data["scope"],
            document=upload.read() if upload is not None else None,
            document_name=upload.name if upload is not None else "",
            actor=user_of(request),
            request=request,
        )
        return Response(EthicsApprovalSerializer(approval).data, status=status.HTTP_201_CREATED)


def _approval_for(request: Request, approval_pk: int, action: str) -> EthicsApproval:
    approval = EthicsApproval.objects.filter(pk=approval_pk).first()
    if approval is None or not permissions.is_member(request.user, approval.project_id):
        raise NotFound("No such ethics approval, or you are not a member of its project.")
    project_for(request, approval.project_id, "ethics", action)
    return approval


class EthicsApprovalRevokeView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(request=RevokeInputSerializer, responses=EthicsApprovalSerializer)
    def post(self, request: Request, approval_pk: int) -> Response:
        """Mark an approval revoked by its committee: it is no longer current."""
        approval = _approval_for(request, approval_pk, "change")
        body = RevokeInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ethics.revoke_approval(
            approval=approval,
            reason=body.validated_data["reason"],
            actor=user_of(request),
            request=request,
        )
        return Response(EthicsApprovalSerializer(approval).data)


class EthicsDocumentView(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, approval_pk: int) -> FileResponse:
        """The approval's stored document, as recorded (audited)."""
        approval = _approval_for(request, approval_pk, "view")
        path = ethics.document_file(approval)
        if path is None:
            raise NotFound("This approval was recorded without a document.")
        if not path.exists():
            raise InvalidInput("The stored approval document is missing from storage.")
        audit.record(
            action="ethics.document.view",
            actor=request.user,
            target=approval,
            project_id=approval.project_id,
            request=request,
        )
        return FileResponse(
            path.open("rb"),
            as_attachment=True,
            filename=approval.document_name or path.name,
            content_type=approval.document_content_type or "application/octet-stream",
        )
