"""Read endpoints for suggestions, model versions and retraining cycles."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from active_learning import strategies
from active_learning.api.serializers import (
    ModelVersionSerializer,
    RetrainingCycleSerializer,
    RollbackInputSerializer,
    ServedSuggestionSerializer,
    StrategySerializer,
    SuggestionSerializer,
)
from active_learning.ml.interface import CheckpointError, ModelInputError
from active_learning.models import ModelVersion, RetrainingCycle, Suggestion
from active_learning.services import cycles, serving, test_sets, versions
from active_learning.services.case_inputs import CaseNotReadable
from active_learning.services.explanations import (
    ExplanationFailed,
    ExplanationPending,
    explanation_overlay,
)
from active_learning.services.versions import promoted_version
from annotations.access import case_for, project_for, user_of
from annotations.services import loop_signals as ranking_signals
from annotations.services.errors import Conflict, InvalidInput
from medloop.celery import send_after_commit


class CaseSuggestionsView(APIView):
    @extend_schema(responses=SuggestionSerializer(many=True))
    def get(self, request: Request, case_pk: int) -> Response:
        """The stored suggestions of every version for the case; none for a case of the locked
        test set (its readers label it without the model: ``serving.BLINDED_MESSAGE``)."""
        case = case_for(request, case_pk, audit_action="case.view_suggestions")
        items = Suggestion.objects.filter(case=case).select_related("model_version")
        if test_sets.in_test_set(case):
            items = items.none()
        return Response(SuggestionSerializer(items, many=True).data)


class CaseServedSuggestionView(APIView):
    @extend_schema(responses=ServedSuggestionSerializer)
    def get(self, request: Request, case_pk: int) -> Response:
        """What the workspace shows of the case's suggestion (only what its version's validation
        evidence supports) and, per class, why the rest is held back. Recorded on the caller's
        annotation when they are the case's annotator."""
        case = case_for(request, case_pk, audit_action="case.view_suggestions", with_context=False)
        served = serving.serve_and_record(case, request.user)
        return Response(ServedSuggestionSerializer(serving.as_payload(served)).data)


class ModelVersionListView(APIView):
    @extend_schema(responses=ModelVersionSerializer(many=True))
    def get(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "model", "view")
        items = (
            ModelVersion.objects.filter(project=project)
            .select_related("project")
            .prefetch_related("cycles")
        )
        return Response(ModelVersionSerializer(items, many=True).data)


class RetrainingCycleListView(APIView):
    @extend_schema(responses=RetrainingCycleSerializer(many=True))
    def get(self, request: Request, project_pk: int) -> Response:
        project = project_for(request, project_pk, "model", "view")
        items = RetrainingCycle.objects.filter(project=project).select_related(
            "triggered_by", "model_version"
        )
        return Response(RetrainingCycleSerializer(items[:100], many=True).data)

    @extend_schema(request=None, responses={202: RetrainingCycleSerializer})
    def post(self, request: Request, project_pk: int) -> Response:
        """Start a retraining cycle (409 while one is active)."""
        project = project_for(request, project_pk, "model", "change")
        cycle = cycles.trigger_cycle(project=project, triggered_by=user_of(request))
        return Response(RetrainingCycleSerializer(cycle).data, status=status.HTTP_202_ACCEPTED)


def _cycle_for(request: Request, cycle_pk: int, action: str) -> RetrainingCycle:
    cycle = (
        RetrainingCycle.objects.select_related("project", "triggered_by", "model_version")
        .filter(pk=cycle_pk)
        .first()
    )
    if cycle is None:
        raise NotFound("No such retraining cycle.")
    project_for(request, cycle.project_id, "model", action)
    return cycle


class RetrainingCycleDetailView(APIView):
    @extend_schema(responses=RetrainingCycleSerializer)
    def get(self, request: Request, cycle_pk: int) -> Response:
        """A cycle's stage, percent done and recent log lines."""
        return Response(RetrainingCycleSerializer(_cycle_for(request, cycle_pk, "view")).data)


class RetrainingCycleCancelView(APIView):
    @extend_schema(request=None, responses=RetrainingCycleSerializer)
    def post(self, request: Request, cycle_pk: int) -> Response:
        cycle = _cycle_for(request, cycle_pk, "change")
        cycle = cycles.cancel_cycle(cycle=cycle, cancelled_by=user_of(request))
        return Response(RetrainingCycleSerializer(cycle).data)


def _version_for(project, number: int) -> ModelVersion:
    version = ModelVersion.objects.filter(project=project, number=number).first()
    if version is None:
        raise NotFound(f"This project has no model version {number}.")
    return version


class ModelVersionPromoteView(APIView):
    @extend_schema(request=None, responses=ModelVersionSerializer)
    def post(self, request: Request, project_pk: int, number: int) -> Response:
        """Serve this version (its files are checked against the registered checksum)."""
        project = project_for(request, project_pk, "model", "change")
        version = versions.promote_verified(_version_for(project, number), actor=user_of(request))
        send_after_commit("active_learning.refresh_serving", project.pk)
        return Response(ModelVersionSerializer(version).data)


class ModelVersionRollbackView(APIView):
    @extend_schema(request=RollbackInputSerializer, responses=ModelVersionSerializer)
    def post(self, request: Request, project_pk: int) -> Response:
        """Serve the version that served before the current one, or version ``to``."""
        project = project_for(request, project_pk, "model", "change")
        data = RollbackInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        number = data.validated_data.get("to")
        target = _version_for(project, number) if number is not None else None
        version = versions.rollback(project=project, to=target, actor=user_of(request))
        send_after_commit("active_learning.refresh_serving", project.pk)
        return Response(ModelVersionSerializer(version).data)


class ProjectRerankView(APIView):
    @extend_schema(request=None, responses={202: None})
    def post(self, request: Request, project_pk: int) -> Response:
        """Re-rank the queue now with the project's strategy (done by a worker)."""
        project = project_for(request, project_pk, "model", "change")
        ranking_signals.reorder_queue(project.pk)
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)


class StrategyListView(APIView):
    @extend_schema(responses=StrategySerializer(many=True))
    def get(self, request: Request) -> Response:
        """The acquisition strategies a project can choose."""
        items = [{"name": n, "description": d} for n, d in strategies.available()]
        return Response(StrategySerializer(items, many=True).data)


def _computing(pending: ExplanationPending) -> Response:
    """202: the volume's overlays are being computed; never cached, so the next ask reaches
    the server."""
    response = Response(
        {"status": "computing", "message": str(pending), "retry_after": pending.retry_after},
        status=status.HTTP_202_ACCEPTED,
    )
    response["Retry-After"] = str(pending.retry_after)
    response["Cache-Control"] = "no-store"
    return response


class CaseExplanationView(APIView):
    """Grad-CAM overlay of one finding for the case's first image, by the model version whose
    suggestion the case shows (the serving version's, else its newest), else the promoted one.
    A version that reads volumes (the CT detector) explains the case's volume slice by slice:
    ``slice`` (0-based, in the viewer's order) picks the slice, the hottest when left out; the
    X-MedLoop-Series, -Slice, -Slices and -Hottest-Slice headers say which. A volume's overlays
    are computed by a task, not by the request: until they are, the answer is 202 with
    Retry-After (the first such request queues the task, once)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("finding", str, required=True, description="a finding key"),
            OpenApiParameter("version", int, required=False, description="model version number"),
            OpenApiParameter("slice", int, required=False, description="a volume's slice, 0-based"),
        ],
        responses={(200, "image/png"): OpenApiTypes.BINARY, 202: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, case_pk: int) -> HttpResponse:
        case = case_for(request, case_pk, audit_action="case.view_explanation")
        if test_sets.in_test_set(case):
            raise Conflict(serving.BLINDED_MESSAGE)
        finding = request.query_params.get("finding", "")
        if finding not in case.project.finding_keys:
            raise InvalidInput(
                f"finding must be one of {', '.join(case.project.finding_keys)}; got {finding!r}"
            )
        version = self._version(case, request.query_params.get("version"))
        slice_index = self._slice(request.query_params.get("slice"))
        try:
            explanation = explanation_overlay(
                version=version, case=case, finding=finding, slice_index=slice_index
            )
        except ExplanationPending as pending:
            return _computing(pending)
        except ExplanationFailed as exc:
            raise Conflict(str(exc)) from exc
        except NotImplementedError as exc:
            raise InvalidInput(str(exc)) from exc
        except (ModelInputError, CaseNotReadable) as exc:
            raise Conflict(f"The model cannot read this case: {exc}") from exc
        except CheckpointError as exc:
            raise Conflict(f"Model version {version.number} cannot be loaded: {exc}") from exc
        response = HttpResponse(explanation.png, content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        # The image the heatmap lies over (the one the model read), and whether it is empty.
        response["X-MedLoop-Instance"] = str(explanation.instance_id)
        response["X-MedLoop-Heatmap-Empty"] = "true" if explanation.empty else "false"
        if explanation.series_id is not None:
            response["X-MedLoop-Series"] = str(explanation.series_id)
            response["X-MedLoop-Slice"] = str(explanation.slice_index)
            response["X-MedLoop-Slices"] = str(explanation.slices)
            response["X-MedLoop-Hottest-Slice"] = str(explanation.hottest_slice)
        return response

    @staticmethod
    def _slice(value: str | None) -> int | None:
        if value is None:
            return None
        # ASCII digits only: "²" is a digit int() refuses, "٣" a decimal it reads as 3. No
        # series has a million slices.
        if not (value.isascii() and value.isdecimal()) or len(value) > 6:
            raise InvalidInput(f"slice must be a slice number (0-based); got {value!r}")
        return int(value)

    @staticmethod
    def _version(case, number: str | None) -> ModelVersion:
        if number is not None:
            # isdecimal, not isdigit ("²" is a digit int() refuses); past 9 digits the
            # database's integer overflows.
            if not number.isdecimal() or len(number) > 9:
                raise InvalidInput(f"version must be a version number; got {number!r}")
            version = ModelVersion.objects.filter(project=case.project, number=int(number)).first()
            if version is None:
                raise NotFound(f"This project has no model version {number}.")
            return version
        serving = promoted_version(case.project)
        if (
            serving is not None
            and Suggestion.objects.filter(case=case, model_version=serving).exists()
        ):
            return serving
        suggestion = (
            Suggestion.objects.filter(case=case)
            .select_related("model_version")
            .order_by("-model_version__number")
            .first()
        )
        version = suggestion.model_version if suggestion else serving
        if version is None:
            raise NotFound("No model version has made suggestions for this case yet.")
        return version
