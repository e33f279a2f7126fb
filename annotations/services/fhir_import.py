"""Import of EHR extracts as HL7 FHIR R4 (issue 17, section 1): a Bundle (JSON) or bulk-data
NDJSON, each resource validated by the maintained FHIR models of ``fhir.resources`` (R4B, the
R4 line), never by hand-written checks.

Where each resource goes:

- Patient: matched to the pseudonymous patient by the same keyed HMAC of the identifier that
  DICOM ingest applies to Patient ID (each identifier value is tried); names and identifiers are
  never stored.
- ImagingStudy: links the FHIR patient to the case by Study Instance UID (an identifier
  ``urn:oid:...`` / ``urn:dicom:uid``) or accession number, mapped with the project's key as at
  ingest.
- Observation (laboratory): LabResult rows (LOINC code, value, unit, reference range, time).
- Condition, DiagnosticReport: history; DocumentReference (text/plain attachments): indication.
  Free text is scrubbed as CSV text is (annotations.dicom.text_scrub), and so are a lab's name,
  unit and text value; before that, the names, identifiers, telecom and address values the
  import's Patient resource gave (kept in memory for the import only, never stored) are removed
  wherever they appear in the patient's text, titled or not.
- Consent: the patient's consent status (source ``fhir``): active and permitting is consented,
  a denying provision, rejected or inactive is a withdrawal (annotations.services.consent).

Dates move back by the patient's DICOM offset (``date_shift_days`` keyed on the pseudonym), so
a patient's labs and images keep their distances in time. Each resource is written in its own
transaction, so a refused one leaves nothing half-written and never loses the rest; an invalid
one is reported by position with the validator's message (where and what, never the value
it refused, which may be identifying). Re-import is idempotent (labs are
matched by code and time, text lines are not appended twice)."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import requests
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from annotations.dicom.deidentify import date_shift_days, pseudonym, replacement_uid
from annotations.dicom.text_scrub import scrub_clinical_text
from annotations.models import (
    Case,
    ConsentSource,
    IngestBatch,
    LabResult,
    Patient,
    Project,
)
from annotations.services import audit, consent, ethics
from annotations.services.errors import DomainError, InvalidInput

LOINC = "http://loinc.org"
MAX_RESOURCES = 200_000
ORDER = {"Patient": 0, "ImagingStudy": 1}  # references to these are resolved first


@dataclass
class _Context:
    project: Project
    # FHIR references ("Patient/p1", "urn:uuid:...") -> our patient
    patients: dict[str, Patient] = field(default_factory=dict)
    report: list[dict[str, Any]] = field(default_factory=list)
    # Patient id -> what its Patient resource says identifies it (in memory only).
    identifying: dict[int, set[str]] = field(default_factory=dict)
    # (patient id, text) -> scrubbed: lab names and units repeat across a bundle.
    scrubbed: dict[tuple[int, str], str] = field(default_factory=dict)
    # Read once per import, not once per resource (a bundle holds thousands of one patient's
    # Observations): patient id -> its cases; case id -> its lab results' (code, time) keys.
    # Forgotten when a resource is refused, since its transaction rolled back what they saw.
    patient_cases: dict[int, list[Case]] = field(default_factory=dict)
    lab_keys: dict[int, set[tuple[str, datetime | None]]] = field(default_factory=dict)

    def cases(self, patient: Patient) -> list[Case]:
        if patient.pk not in self.patient_cases:
            self.patient_cases[patient.pk] = list(
                Case.objects.filter(study__patient=patient).order_by("pk")
            )
        return self.patient_cases[patient.pk]

    def labs_of(self, case: Case) -> set[tuple[str, datetime | None]]:
        if case.pk not in self.lab_keys:
            self.lab_keys[case.pk] = set(
                LabResult.objects.filter(case=case).values_list("code", "observed_at")
            )
        return self.lab_keys[case.pk]

    def forget(self) -> None:
        self.patient_cases.clear()
        self.lab_keys.clear()

    def scrub(self, patient: Patient, text: str) -> str:
        """``text`` without the patient's own names and identifiers, then scrubbed as CSV
        text is (dates shifted by the patient's offset)."""
        if not text:
            return text
        key = (patient.pk, text)
        if key not in self.scrubbed:
            clean = text
            for value in sorted(self.identifying.get(patient.pk, ()), key=len, reverse=True):
                clean = re.sub(re.escape(value), "[NAME]", clean, flags=re.IGNORECASE)
            self.scrubbed[key] = scrub_clinical_text(
                clean.strip(), secret=self.project.pseudonym_secret, patient_key=patient.pseudonym
            )
        return self.scrubbed[key]


def resources_of(data: bytes) -> list[tuple[int, Any, str]]:
    """(position, raw resource, fullUrl) from a Bundle (JSON) or NDJSON; positions count from
    1 (entry number in a Bundle, line number in NDJSON)."""
    text = data.decode("utf-8-sig", errors="replace").strip()
    if not text:
        raise InvalidInput("The file is empty.")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and whole.get("resourceType") == "Bundle":
        entries = whole.get("entry") or []
        if not isinstance(entries, list):
            raise InvalidInput("Bundle.entry must be a list.")
        return [
            (i, (e or {}).get("resource") if isinstance(e, dict) else e, _full_url(e))
            for i, e in enumerate(entries, start=1)
        ][:MAX_RESOURCES]
    if isinstance(whole, dict):
        return [(1, whole, "")]
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((i, json.loads(line), ""))
        except json.JSONDecodeError as exc:
            out.append((i, {"__invalid_json__": str(exc)}, ""))
    return out[:MAX_RESOURCES]


def _full_url(entry: Any) -> str:
    return str(entry.get("fullUrl") or "") if isinstance(entry, dict) else ""


def _validate(raw: Any) -> Any:
    """The resource as a ``fhir.resources`` model; ValueError with the validator's message."""
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    if "__invalid_json__" in raw:
        raise ValueError(f"not JSON: {raw['__invalid_json__']}")
    kind = raw.get("resourceType")
    try:
        model = get_fhir_model_class(str(kind))
    except (ValueError, KeyError) as exc:
        raise ValueError(f"unknown resourceType {kind!r}") from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(_validation_message(exc)) from exc


def _validation_message(exc: ValidationError) -> str:
    """The validator's findings, where and what, without the values it refused."""
    errors = exc.errors(include_input=False, include_url=False, include_context=False)
    found = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'resource'}: {error['msg']}"
        for error in errors
    )
    return f"{exc.error_count()} validation error(s) for {exc.title}: {found}"[:600]


def import_fhir(
    *, project: Project, data: bytes, file_name: str = "", actor: User | None = None
) -> IngestBatch:
    """Import a FHIR Bundle or NDJSON file into ``project``; return the batch with one report
    line per resource (position, resource type, status, reason)."""
    ethics.require_current_approval(project=project, actor=actor, activity="ingest")
    items = resources_of(data)
    batch = IngestBatch.objects.create(
        project=project, source=IngestBatch.Source.CLINICAL, created_by=actor
    )
    context = _Context(project=project)
    validated: list[tuple[int, Any, str]] = []
    for position, raw, full_url in items:
        kind = raw.get("resourceType", "?") if isinstance(raw, dict) else "?"
        try:
            validated.append((position, _validate(raw), full_url))
        except ValueError as exc:
            context.report.append(
                {
                    "position": position,
                    "resource": str(kind)[:40],
                    "status": "refused",
                    "reason": f"entry {position}: {exc}",
                }
            )
    validated.sort(key=lambda item: (ORDER.get(item[1].get_resource_type(), 2), item[0]))
    for position, resource, full_url in validated:
        kind = resource.get_resource_type()
        handler = HANDLERS.get(kind)
        line: dict[str, Any] = {"position": position, "resource": kind}
        if handler is None:
            line.update(status="skipped", reason=f"{kind} is not imported")
        else:
            try:
                with transaction.atomic():
                    line.update(handler(context, resource, full_url))
            except InvalidInput as exc:
                context.forget()
                line.update(status="refused", reason=f"entry {position}: {exc.message}")
            except (ValueError, TypeError, ArithmeticError) as exc:  # content the model let by
                context.forget()
                line.update(status="refused", reason=f"entry {position}: {exc}"[:600])
        context.report.append(line)
    context.report.sort(key=lambda line: line["position"])
    batch.items = context.report
    batch.stored = sum(1 for line in context.report if line["status"] == "imported")
    batch.refused = sum(1 for line in context.report if line["status"] in ("refused", "unmatched"))
    batch.finished_at = timezone.now()
    batch.save()
    audit.record(
        action="fhir.import",
        actor=actor,
        target=batch,
        project_id=project.pk,
        detail={"imported": batch.stored, "not_imported": batch.refused, "resources": len(items)},
    )
    return batch


# --- resources --------------------------------------------------------------------------------


def _patient_for(context: _Context, reference: Any) -> Patient:
    ref = getattr(reference, "reference", None) if reference is not None else None
    patient = context.patients.get(str(ref or ""))
    if patient is None:
        raise InvalidInput(f"subject {ref!r} is no Patient of this import matched to a patient")
    return patient


def _shift(patient: Patient, value: Any) -> datetime | None:
    """A FHIR dateTime (datetime or date) moved back by the patient's DICOM date offset."""
    if value is None:
        return None
    days = date_shift_days(patient.project.pseudonym_secret, patient.pseudonym)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(
            value.year, value.month, value.day, tzinfo=timezone.get_default_timezone()
        )
    else:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment - timedelta(days=days)


def _patient(context: _Context, resource: Any, full_url: str) -> dict[str, Any]:
    secret = context.project.pseudonym_secret
    for identifier in resource.identifier or []:
        value = str(identifier.value or "").strip()
        if not value:
            continue
        token = pseudonym(secret, "patient", value)
        patient = Patient.objects.filter(project=context.project, pseudonym=token).first()
        if patient is not None:
            context.identifying.setdefault(patient.pk, set()).update(_identifying(resource))
            for key in (f"Patient/{resource.id}", full_url):
                if key and key != "Patient/None":
                    context.patients[key] = patient
            return {"status": "imported", "patient": patient.pseudonym}
    return {"status": "unmatched", "reason": "no patient of this project has these identifiers"}


def _identifying(resource: Any) -> set[str]:
    """The strings of a Patient resource that name or identify the patient: names (each part
    and whole), identifier values, telecom values and address parts (3 characters or more)."""
    values: list[Any] = [i.value for i in resource.identifier or []]
    for name in resource.name or []:
        values += [name.text, name.family, *(name.given or []), *(name.prefix or [])]
        values += [name.suffix and " ".join(name.suffix)]
    values += [t.value for t in resource.telecom or []]
    for address in resource.address or []:
        values += [address.text, address.city, address.district, address.postalCode]
        values += list(address.line or [])
    return {str(v).strip() for v in values if v and len(str(v).strip()) >= 3}


def _imaging_study(context: _Context, resource: Any, full_url: str) -> dict[str, Any]:
    secret = context.project.pseudonym_secret
    cases = Case.objects.filter(project=context.project)
    for identifier in resource.identifier or []:
        value = str(identifier.value or "").strip()
        system = str(identifier.system or "")
        codes = [c.code for c in (identifier.type.coding or [])] if identifier.type else []
        case = None
        if value.startswith("urn:oid:") or system == "urn:dicom:uid":
            uid = value.removeprefix("urn:oid:")
            case = cases.filter(study__study_instance_uid=replacement_uid(secret, uid)).first()
        elif "ACSN" in codes or "accession" in system.lower():
            token = pseudonym(secret, "accession", value)
            case = cases.filter(study__accession_pseudonym=token).first()
        if case is not None:
            patient = case.study.patient
            subject = getattr(resource.subject, "reference", None)
            if subject and subject not in context.patients:
                context.patients[str(subject)] = patient
            return {"status": "imported", "case_id": case.pk}
    return {"status": "unmatched", "reason": "no study with this Study Instance UID or accession"}


def _observation(context: _Context, resource: Any, full_url: str) -> dict[str, Any]:
    patient = _patient_for(context, resource.subject)
    coding = next(
        (c for c in (resource.code.coding or []) if c.system == LOINC),
        (resource.code.coding or [None])[0],
    )
    # Codes, names, units and text values are text like any other: scrubbed.
    code = context.scrub(patient, str(getattr(coding, "code", "") or ""))[:32]
    name = str(getattr(coding, "display", "") or resource.code.text or code)
    name = context.scrub(patient, name)[:120]
    quantity = resource.valueQuantity
    value = float(quantity.value) if quantity is not None and quantity.value is not None else None
    unit = str((quantity.unit or quantity.code or "") if quantity is not None else "")
    unit = context.scrub(patient, unit)[:32]
    value_text = context.scrub(patient, str(resource.valueString or ""))[:120]
    low = high = None
    for reference in resource.referenceRange or []:
        low = (
            float(reference.low.value) if reference.low and reference.low.value is not None else low
        )
        high = (
            float(reference.high.value)
            if reference.high and reference.high.value is not None
            else high
        )
    observed = _shift(patient, resource.effectiveDateTime)
    cases = context.cases(patient)
    if not cases:
        raise InvalidInput("the patient has no case")
    added = 0
    for case in cases:
        held = context.labs_of(case)
        if (code, observed) in held:
            continue  # re-import: already there
        LabResult.objects.create(
            case=case,
            code=code,
            name=name or code,
            value=value,
            value_text=value_text,
            unit=unit,
            reference_low=low,
            reference_high=high,
            observed_at=observed,
        )
        held.add((code, observed))
        added += 1
    return {"status": "imported", "case_id": cases[0].pk, "labs_added": added}


def _append_text(case: Case, field_name: str, text: str) -> bool:
    current = getattr(case, field_name) or ""
    if not text or text in current.split("\n"):
        return False
    setattr(case, field_name, f"{current}\n{text}".strip())
    case.save(update_fields=[field_name])
    return True


def _text_resource(context: _Context, patient: Patient, text: str, field_name: str) -> dict:
    cases = context.cases(patient)
    if not cases:
        raise InvalidInput("the patient has no case")
    clean = context.scrub(patient, text)
    for case in cases:
        _append_text(case, field_name, clean[:2000])
    return {"status": "imported", "case_id": cases[0].pk, "field": field_name}


def _concept_text(concept: Any) -> str:
    if concept is None:
        return ""
    return str(concept.text or next((c.display for c in concept.coding or [] if c.display), ""))


def _condition(context: _Context, resource: Any, full_url: str) -> dict[str, Any]:
    patient = _patient_for(context, resource.subject)
    return _text_resource(context, patient, _concept_text(resource.code), "history")


def _diagnostic_report(context: _Context, resource: Any, full_url: str) -> dict[str, Any]:
    patient = _patient_for(context, resource.subject)
    text = str(resource.conclusion or "") or _concept_text(resource.code)
    return _text_resource(context, patient, text, "history")


def _document_reference(context: _Context, resource: Any, full_url: str) -> dict[str, Any]:
    patient = _patient_for(context, resource.subject)
    parts = []
    for content in resource.content or []:
        attachment = content.attachment
        if (
            attachment is not None
            and attachment.data
            and str(attachment.contentType or "").startswith("text/")
        ):
            # fhir.resources decodes base64Binary on validation (bytes); a str is still base64.
            data = attachment.data
            raw = data if isinstance(data, bytes) else base64.b64decode(str(data))
            parts.append(raw.decode("utf-8", errors="replace"))
    text = " ".join(parts) or str(resource.description or "")
    return _text_resource(context, patient, text, "indication")


def _consent(context: _Context, resource: Any, full_url: str) -> dict[str, Any]:
    patient = _patient_for(context, resource.patient)
    denied = resource.provision is not None and resource.provision.type == "deny"
    status = resource.status
    withdrawn = status in ("rejected", "inactive") or (status == "active" and denied)
    if status not in ("active", "rejected", "inactive"):
        return {"status": "skipped", "reason": f"Consent status {status} is not a decision"}
    shifted = _shift(patient, resource.dateTime)
    day = shifted.date() if shifted is not None else None
    if withdrawn:
        consent.withdraw(patient=patient, source=ConsentSource.FHIR, consent_date=day)
        return {"status": "imported", "consent": "withdrawn"}
    if patient.consent_status == "withdrawn":
        return {"status": "skipped", "reason": "the patient withdrew consent; that is final"}
    consent.set_consent(
        patient=patient, status="consented", source=ConsentSource.FHIR, consent_date=day
    )
    return {"status": "imported", "consent": "consented"}


HANDLERS = {
    "Patient": _patient,
    "ImagingStudy": _imaging_study,
    "Observation": _observation,
    "Condition": _condition,
    "DiagnosticReport": _diagnostic_report,
    "DocumentReference": _document_reference,
    "Consent": _consent,
}


# --- pulling from a FHIR server ---------------------------------------------------------------

MAX_PAGES = 1000
PULL_TIMEOUT_SECONDS = 30


class FhirServerUnavailable(DomainError):
    """The FHIR server could not be reached or answered with an error (HTTP 502)."""

    status_code = 502
    code = "fhir_server_unavailable"


def _page(session: requests.Session, url: str) -> dict[str, Any]:
    try:
        answer = session.get(
            url, headers={"Accept": "application/fhir+json"}, timeout=PULL_TIMEOUT_SECONDS
        )
    except requests.RequestException as exc:
        raise FhirServerUnavailable(
            f"FHIR server at {url}: cannot be reached ({type(exc).__name__}).", url=url
        ) from exc
    if answer.status_code != 200:
        raise FhirServerUnavailable(
            f"FHIR server at {url}: HTTP {answer.status_code}.",
            url=url,
            http_status=answer.status_code,
        )
    try:
        body = answer.json()
    except ValueError as exc:
        raise FhirServerUnavailable(f"FHIR server at {url}: the answer is not JSON.") from exc
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise FhirServerUnavailable(f"FHIR server at {url}: the answer is not a Bundle.")
    return body


def pull_fhir(
    *, project: Project, search_url: str, actor: User | None = None, max_pages: int = MAX_PAGES
) -> IngestBatch:
    """Run a FHIR search (``search_url``, e.g. ``https://ehr/fhir/Observation?patient=...`` or
    a ``Patient/$everything``) and follow its ``next`` links, then import every entry as one
    Bundle (:func:`import_fhir`). Every page is fetched before anything is written, so an
    unreachable server (FhirServerUnavailable, 502) or one that fails midway leaves nothing
    behind. The server must pass the same address check as a DICOMweb PACS
    (MEDLOOP_PACS_ALLOWED_NETWORKS)."""
    from django.conf import settings

    from annotations.dicom.dicomweb import PacsUnavailable, check_target

    ethics.require_current_approval(project=project, actor=actor, activity="ingest")
    entries: list[Any] = []
    url: str | None = search_url
    pages = 0
    with requests.Session() as session:
        while url and pages < max_pages:
            try:
                check_target(url, settings.MEDLOOP_PACS_ALLOWED_NETWORKS)
            except PacsUnavailable as exc:
                raise FhirServerUnavailable(f"FHIR server at {url}: {exc.message}") from exc
            body = _page(session, url)
            pages += 1
            entries.extend(body.get("entry") or [])
            url = next(
                (
                    str(link.get("url"))
                    for link in body.get("link") or []
                    if isinstance(link, dict) and link.get("relation") == "next"
                ),
                None,
            )
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    return import_fhir(project=project, data=json.dumps(bundle).encode(), actor=actor)
