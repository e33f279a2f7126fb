"""Patient consent (issue 17, section 2): a lead records a patient's consent or withdrawal,
naming the patient by pseudonym or by the source identifier (hashed, never stored)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import selectors
from annotations.access import project_for, user_of
from annotations.models import Consent, ConsentSource
from annotations.services import audit, consent
from annotations.services.errors import DomainError, InvalidInput


class PatientNotFound(DomainError):
    status_code = 404
    code = "not_found"


class ConsentInputSerializer(serializers.Serializer):
    pseudonym = serializers.CharField(max_length=64, required=False, allow_blank=True)
    patient_id = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="hashed, never stored"
    )
    status = serializers.ChoiceField(choices=Consent.choices)
    date = serializers.DateField(required=False, allow_null=True)
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=ConsentSource.choices, default=ConsentSource.LEAD
    )


class ConsentResultSerializer(serializers.Serializer):
    pseudonym = serializers.CharField()
    consent_status = serializers.CharField()
    consent_date = serializers.DateField(allow_null=True)
    consent_source = serializers.CharField()
    withdrawn_at = serializers.DateTimeField(allow_null=True)
    cases = serializers.ListField(child=serializers.IntegerField())
    leases_released = serializers.IntegerField()


class PatientConsentSerializer(serializers.Serializer):
    pseudonym = serializers.CharField()
    consent_status = serializers.ChoiceField(choices=Consent.choices)
    consent_date = serializers.DateField(allow_null=True)
    consent_source = serializers.CharField()
    withdrawn_at = serializers.DateTimeField(allow_null=True)
    purged_at = serializers.DateTimeField(allow_null=True)
    case_count = serializers.IntegerField(help_text="the patient's cases still held")


class ConsentView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status", str, enum=Consent.values, description="only patients with this consent"
            )
        ],
        responses=PatientConsentSerializer(many=True),
    )
    def get(self, request: Request, project_pk: int) -> Response:
        """Every patient's consent status, by pseudonym (leads, admins and the data protection
        officer). Audited as ``patient.consent_list``."""
        project = project_for(request, project_pk, "consent", "view")
        status = request.query_params.get("status", "")
        if status and status not in Consent.values:
            raise InvalidInput(f"status must be one of {sorted(Consent.values)}, got {status!r}.")
        patients = selectors.patient_consents(project, status=status)
        audit.record(
            action="patient.consent_list",
            actor=user_of(request),
            target=project,
            project_id=project.pk,
            request=request,
            detail={"status": status or None},
        )
        return Response(PatientConsentSerializer(patients, many=True).data)

    @extend_schema(request=ConsentInputSerializer, responses=ConsentResultSerializer)
    def post(self, request: Request, project_pk: int) -> Response:
        """Record a patient's consent. ``withdrawn`` takes effect at once: the patient's cases
        leave every queue (leases released), exports and future label snapshots; the model
        versions trained on their labels are flagged; files and clinical text are purged after
        the retention."""
        project = project_for(request, project_pk, "consent", "change")
        body = ConsentInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        patient = consent.patient_by(
            project=project,
            pseudonym=data.get("pseudonym", ""),
            identifier=data.get("patient_id", ""),
        )
        if patient is None:
            raise PatientNotFound("No patient of this project has that pseudonym or identifier.")
        withdrawal = consent.set_consent(
            patient=patient,
            status=data["status"],
            source=data["source"],
            consent_date=data.get("date"),
            actor=user_of(request),
            request=request,
        )
        return Response(
            {
                "pseudonym": patient.pseudonym,
                "consent_status": patient.consent_status,
                "consent_date": patient.consent_date,
                "consent_source": patient.consent_source,
                "withdrawn_at": patient.withdrawn_at,
                "cases": withdrawal.case_ids if withdrawal else [],
                "leases_released": withdrawal.leases_released if withdrawal else 0,
            }
        )
