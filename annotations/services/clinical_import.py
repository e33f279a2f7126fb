"""Import of clinical context (indication, history, lab results) from CSV or JSON, matched to
cases by accession number or patient ID (the source values, pseudonymised here exactly as at
DICOM ingest). Unmatched and invalid rows are reported line by line, never silently dropped.

CSV: one row per lab result (or a row with no lab columns for text only), columns
``accession_number`` or ``patient_id``; optional ``indication``, ``history``, ``lab_code``,
``lab_name``, ``lab_value``, ``lab_unit``, ``reference_low``, ``reference_high``,
``observed_at`` (ISO 8601). JSON: a list (or {"cases": [...]}) of objects with
``accession_number`` or ``patient_id``, ``indication``, ``history`` and ``labs`` (objects with
``code``, ``name``, ``value``, ``unit``, ``reference_low``, ``reference_high``, ``observed_at``).
Free text is scrubbed of direct identifiers before it is stored (annotations.dicom.text_scrub).
Both may carry the patient's ``consent`` (consented, withdrawn, unknown) and ``consent_date``:
recorded with source ``csv`` (annotations.services.consent; a withdrawal takes effect at once).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from annotations.dicom.deidentify import date_shift_days, pseudonym
from annotations.dicom.text_scrub import scrub_clinical_text
from annotations.models import Case, Consent, ConsentSource, IngestBatch, Project
from annotations.services import audit, clinical, consent, ethics
from annotations.services.errors import InvalidInput

MAX_ROWS = 200_000


@dataclass
class _Group:
    key_kind: str
    key: str
    where: list[str] = field(default_factory=list)
    indication: str = ""
    history: str = ""
    labs: list[clinical.LabInput] = field(default_factory=list)
    # Consent (issue 17): "consented", "withdrawn" or "unknown", and its date (ISO 8601).
    consent: str = ""
    consent_date: date | None = None


def _number(value: Any, column: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(str(value).strip().replace(",", "."))
    except ValueError as exc:
        raise InvalidInput(f"{column} {value!r} is not a number") from exc
    if not math.isfinite(number):
        raise InvalidInput(f"{column} {value!r} is not a finite number")
    return number


def _lab(raw: dict[str, Any]) -> clinical.LabInput:
    observed = str(raw.get("observed_at") or "").strip() or None
    if observed is not None and parse_datetime(observed) is None:
        raise InvalidInput(f"observed_at {observed!r} is not an ISO 8601 date-time")
    code, name = str(raw.get("code") or "").strip(), str(raw.get("name") or "").strip()
    if not code and not name:
        raise InvalidInput("a lab result needs a code or a name")
    value = raw.get("value")
    number, text = None, ""
    if isinstance(value, (bool, dict, list)):
        raise InvalidInput(f"value {value!r} is neither a number nor text")
    if isinstance(value, (int, float)) or (isinstance(value, str) and _looks_numeric(value)):
        number = _number(value, "value")
    elif value not in (None, ""):
        text = str(value).strip()[:120]  # qualitative results: "positive", "<5"
    return clinical.LabInput(
        code=code,
        name=name or code,
        value=number,
        value_text=text,
        unit=str(raw.get("unit") or "").strip(),
        reference_low=_number(raw.get("reference_low"), "reference_low"),
        reference_high=_number(raw.get("reference_high"), "reference_high"),
        observed_at=observed,
    )


def _looks_numeric(text: str) -> bool:
    try:
        float(text.strip().replace(",", "."))
    except ValueError:
        return False
    return True


def _key(raw: dict[str, Any]) -> tuple[str, str]:
    accession = str(raw.get("accession_number") or "").strip()
    patient = str(raw.get("patient_id") or "").strip()
    if accession:
        return "accession_number", accession
    if patient:
        return "patient_id", patient
    raise InvalidInput("neither accession_number nor patient_id is given")


def _groups_from_rows(
    rows: list[tuple[str, dict[str, Any]]], report: list[dict[str, Any]]
) -> list[_Group]:
    groups: dict[tuple[str, str], _Group] = {}
    for where, raw in rows:
        try:
            kind, key = _key(raw)
            labs = raw.get("labs")
            if labs is None and (raw.get("lab_code") or raw.get("lab_name")):
                labs = [
                    {
                        k[4:] if k.startswith("lab_") else k: v
                        for k, v in raw.items()
                        if k.startswith("lab_")
                        or k in ("reference_low", "reference_high", "observed_at")
                    }
                ]
            if labs is not None and not isinstance(labs, list):
                raise InvalidInput("labs must be a list")
            parsed = [_lab(lab) for lab in labs or [] if isinstance(lab, dict)]
            consent_status, consent_day = _consent(raw)
        except InvalidInput as exc:
            report.append({"source": where, "status": "refused", "reason": exc.message})
            continue
        group = groups.setdefault((kind, key), _Group(kind, key))
        group.where.append(where)
        group.indication = group.indication or str(raw.get("indication") or "")
        group.history = group.history or str(raw.get("history") or "")
        group.labs.extend(parsed)
        group.consent = group.consent or consent_status
        group.consent_date = group.consent_date or consent_day
    return list(groups.values())


def _consent(raw: dict[str, Any]) -> tuple[str, date | None]:
    """The row's optional ``consent`` (consented, withdrawn, unknown) and ``consent_date``."""
    status = str(raw.get("consent") or "").strip().lower()
    if status and status not in Consent.values:
        raise InvalidInput(f"consent {status!r} is not one of {sorted(Consent.values)}")
    text = str(raw.get("consent_date") or "").strip()
    try:
        day = date.fromisoformat(text) if text else None
    except ValueError as exc:
        raise InvalidInput(f"consent_date {text!r} is not a date (YYYY-MM-DD)") from exc
    return status, day


def parse_rows(data: bytes, file_name: str) -> list[tuple[str, dict[str, Any]]]:
    """Rows of a CSV or JSON file as (location for the report, dict)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{file_name}: not UTF-8 text ({exc}).") from exc
    if file_name.lower().endswith(".json") or text.lstrip().startswith(("[", "{")):
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{file_name}: invalid JSON ({exc}).") from exc
        items = payload.get("cases") if isinstance(payload, dict) else payload
        if not isinstance(items, list):
            raise InvalidInput(f"{file_name}: expected a list of cases or {{'cases': [...]}}.")
        rows = [(f"item {i + 1}", item) for i, item in enumerate(items) if isinstance(item, dict)]
        if len(rows) != len(items):
            raise InvalidInput(f"{file_name}: every item must be an object.")
        return rows[:MAX_ROWS]
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"accession_number", "patient_id"} & set(reader.fieldnames):
        raise InvalidInput(
            f"{file_name}: the CSV header needs an accession_number or patient_id column."
        )
    return [(f"row {n + 2}", row) for n, row in enumerate(reader) if n < MAX_ROWS]


def _cases_for(project: Project, group: _Group) -> list[Case]:
    if group.key_kind == "accession_number":
        case = clinical.case_for_accession(project=project, accession_number=group.key)
        return [case] if case is not None else []
    token = pseudonym(project.pseudonym_secret, "patient", group.key)
    return list(Case.objects.filter(project=project, study__patient__pseudonym=token))


def _record_consent(project: Project, group: _Group, cases: list[Case], actor: User | None) -> None:
    """The group's consent for each patient of ``cases`` (source csv; the date shifted by the
    patient's DICOM offset, as every date is)."""
    if not group.consent:
        return
    for patient in {case.study.patient for case in cases}:
        day = group.consent_date
        if day is not None:
            day -= timedelta(days=date_shift_days(project.pseudonym_secret, patient.pseudonym))
        if patient.consent_status == Consent.WITHDRAWN:
            continue  # a withdrawal is final
        consent.set_consent(
            patient=patient,
            status=group.consent,
            source=ConsentSource.CSV,
            consent_date=day,
            actor=actor,
        )


def import_clinical_context(
    *, project: Project, data: bytes, file_name: str, actor: User | None = None
) -> IngestBatch:
    """Import a CSV/JSON file of clinical context; return the batch with its report.
    Refused (EthicsApprovalRequired) when the project has no current ethics approval."""
    ethics.require_current_approval(project=project, actor=actor, activity="ingest")
    report: list[dict[str, Any]] = []
    groups = _groups_from_rows(parse_rows(data, file_name), report)
    batch = IngestBatch.objects.create(
        project=project, source=IngestBatch.Source.CLINICAL, created_by=actor
    )
    for group in groups:
        cases = _cases_for(project, group)
        where = ", ".join(group.where[:5]) + (" ..." if len(group.where) > 5 else "")
        if not cases:
            report.append(
                {
                    "source": where,
                    "status": "unmatched",
                    "reason": f"no case with this {group.key_kind.replace('_', ' ')}",
                }
            )
            continue
        _record_consent(project, group, cases, actor)
        for case in cases:
            patient_key = case.study.patient.pseudonym
            secret = project.pseudonym_secret
            clinical.set_clinical_context(
                case=case,
                indication=scrub_clinical_text(
                    group.indication, secret=secret, patient_key=patient_key
                ),
                history=scrub_clinical_text(group.history, secret=secret, patient_key=patient_key),
                labs=group.labs,
            )
            report.append(
                {"source": where, "status": "matched", "case_id": case.pk, "labs": len(group.labs)}
            )
            batch.stored += 1
    batch.refused = sum(1 for line in report if line["status"] != "matched")
    batch.items = report
    batch.finished_at = timezone.now()
    batch.save()
    audit.record(
        action="clinical.import",
        actor=actor,
        target=batch,
        project_id=project.pk,
        detail={"matched": batch.stored, "not_imported": batch.refused},
    )
    return batch
