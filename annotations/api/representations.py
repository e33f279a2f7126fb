"""The JSON of the hottest answers (next case, submit), built directly from the model objects.

DRF's serializers build a field object per field and per instance on every answer; for the two
calls every annotator makes for every case that was a fifth of the request's time. These return
exactly what the serializers in ``annotations.api.serializers`` return (the serializers stay the
API's schema; tests/annotations/test_request_path.py holds the two equal), read from what the
view already loaded: no query of their own."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from annotations.models import Annotation, Box, Case, Instance, LabResult, Series, ShownSuggestion


def _datetime(value: datetime | None) -> str | None:
    """As DRF's DateTimeField: in the current time zone, ISO 8601, UTC written ``Z``."""
    if value is None:
        return None
    text = value.astimezone(timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _int(value: int | None) -> int | None:
    return None if value is None else int(value)


def _username(user: User | None) -> str | None:
    return None if user is None else str(user.username)


def instance(item: Instance) -> dict[str, Any]:
    return {
        "id": item.pk,
        "sop_instance_uid": item.sop_instance_uid,
        "instance_number": _int(item.instance_number),
        "rows": _int(item.rows),
        "columns": _int(item.columns),
        "number_of_frames": _int(item.number_of_frames),
        "photometric_interpretation": item.photometric_interpretation,
        "sha256": item.sha256,
    }


def series(item: Series) -> dict[str, Any]:
    return {
        "id": item.pk,
        "series_instance_uid": item.series_instance_uid,
        "modality": item.modality,
        "series_number": _int(item.series_number),
        "description": item.description,
        "body_part": item.body_part,
        "instances": [instance(i) for i in item.instances.all() if not i.quarantined],
    }


def lab_result(item: LabResult) -> dict[str, Any]:
    return {
        "code": item.code,
        "name": item.name,
        "value": _float(item.value),
        "value_text": item.value_text,
        "unit": item.unit,
        "reference_low": _float(item.reference_low),
        "reference_high": _float(item.reference_high),
        "observed_at": _datetime(item.observed_at),
        "out_of_range": bool(item.out_of_range),
    }


def case_detail(case: Case) -> dict[str, Any]:
    """CaseDetailSerializer: the case with its study, clinical context and visible images
    (``annotations.selectors.case_with_context`` loads all of it)."""
    study = case.study
    return {
        "id": case.pk,
        "project": case.project_id,
        "state": case.state,
        "priority": float(case.priority),
        "required_reads": int(case.required_reads),
        "is_validation": bool(case.is_validation),
        "leased_to": _username(case.leased_to),
        "lease_expires_at": _datetime(case.lease_expires_at),
        "created_at": _datetime(case.created_at),
        "patient": study.patient.pseudonym,
        "study_instance_uid": study.study_instance_uid,
        "study_date": _date(study.study_date),
        "study_description": study.description,
        "indication": case.indication,
        "history": case.history,
        "lab_results": [lab_result(r) for r in case.lab_results.all()],
        "series": [series(s) for s in study.series.all()],
    }


def box(item: Box) -> dict[str, Any]:
    return {
        "id": item.pk,
        "instance_id": item.instance_id,
        "frame": int(item.frame),
        "x": float(item.x),
        "y": float(item.y),
        "width": float(item.width),
        "height": float(item.height),
        "finding": item.finding,
        "origin": item.origin,
        "suggestion_box_id": item.suggestion_box_id,
        "series_id": item.series_id,
        "slice_first": item.slice_first,
        "slice_last": item.slice_last,
        "patient_mm": item.patient_mm,
    }


def shown_suggestion(record: ShownSuggestion) -> dict[str, Any]:
    return {
        "model_version_number": int(record.model_version_number),
        "boxes": record.boxes,
        "findings_prefilled": record.findings_prefilled,
        "finding_probabilities": record.finding_probabilities,
        "report_draft": record.report_draft,
        "withheld": record.withheld,
        "served_at": _datetime(record.served_at),
        "confidence": _float(record.confidence),
        "boxes_kept_fraction": _float(record.boxes_kept_fraction),
        "findings_changed_fraction": _float(record.findings_changed_fraction),
        "draft_edit_distance": _float(record.draft_edit_distance),
        "change": _float(record.change),
    }


def annotation(item: Annotation) -> dict[str, Any]:
    """AnnotationSerializer (its boxes and its suggestion are read if not loaded yet)."""
    try:
        shown: ShownSuggestion | None = item.shown_suggestion
    except ShownSuggestion.DoesNotExist:
        shown = None
    return {
        "id": item.pk,
        "case": item.case_id,
        "annotator": item.annotator.username,
        "status": item.status,
        "version": int(item.version),
        "etag": item.etag,
        "findings": item.findings,
        "report": item.report,
        "boxes": [box(b) for b in item.boxes.all()],
        "rejected_suggestion_boxes": item.rejected_suggestion_boxes,
        "review_comment": item.review_comment,
        "reviewed_by": _username(item.reviewed_by) if item.reviewed_by_id else None,
        "is_adjudication": bool(item.is_adjudication),
        "created_at": _datetime(item.created_at),
        "updated_at": _datetime(item.updated_at),
        "submitted_at": _datetime(item.submitted_at),
        "shown_suggestion": None if shown is None else shown_suggestion(shown),
    }


def next_case(case: Case, working_copy: Annotation) -> dict[str, Any]:
    """NextCaseSerializer: the case and the caller's working copy."""
    return {**case_detail(case), "annotation": annotation(working_copy)}


def submitted(item: Annotation, returned_waiting: list[int]) -> dict[str, Any]:
    """SubmittedAnnotationSerializer."""
    return {**annotation(item), "returned_waiting": list(returned_waiting)}
