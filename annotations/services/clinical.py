"""Clinical context of a case: indication, history and laboratory results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils.dateparse import parse_datetime

from annotations.dicom.deidentify import pseudonym
from annotations.models import Case, LabResult, Project
from annotations.services.errors import InvalidInput


@dataclass(frozen=True)
class LabInput:
    code: str
    name: str
    value: float | None
    unit: str = ""
    reference_low: float | None = None
    reference_high: float | None = None
    observed_at: str | None = None
    value_text: str = ""


def case_for_accession(*, project: Project, accession_number: str) -> Case | None:
    """The case whose study had this (source, not yet pseudonymised) accession number."""
    token = pseudonym(project.pseudonym_secret, "accession", accession_number)
    return Case.objects.filter(project=project, study__accession_pseudonym=token).first()


def _observed(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise InvalidInput(f"Lab time {value!r} is not an ISO 8601 date-time.")
    return parsed


@transaction.atomic
def set_clinical_context(
    *, case: Case, indication: str, history: str, labs: list[LabInput]
) -> Case:
    """Replace a case's indication, history and lab results."""
    rows = [
        LabResult(
            case=case,
            code=lab.code[:32],
            name=lab.name[:120],
            value=lab.value,
            value_text=lab.value_text[:120],
            unit=lab.unit[:32],
            reference_low=lab.reference_low,
            reference_high=lab.reference_high,
            observed_at=_observed(lab.observed_at),
        )
        for lab in labs
    ]
    case.indication = indication
    case.history = history
    case.save(update_fields=["indication", "history"])
    case.lab_results.all().delete()
    LabResult.objects.bulk_create(rows)
    return case
