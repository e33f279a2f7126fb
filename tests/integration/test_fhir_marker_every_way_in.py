"""The FHIR twin of test_marker_every_way_in.py: a marker (the patient's name, and an identifier
of theirs) in every string field of every resource type the FHIR import reads (Patient,
Observation, Condition, DiagnosticReport, DocumentReference, ImagingStudy, Consent), and the
marker date in their dates, sent every way in (API upload, the import_fhir command, a pull from
a FHIR server with paging), appears nowhere afterwards: not in stored files, not in any database
row, not in API responses, not in exports, not in logs. The import still lands what it should
(labs, clinical text, consent) on the patient's case."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from active_learning.ml import synthetic
from annotations.models import Case, LabResult, Patient
from annotations.services.fhir_import import pull_fhir
from tests.support.fhir_server import paged_search
from tests.support.leak_scan import marker_leaks
from tests.support.markers import MARKER_DATE, leaks

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MARKER = "ZqFhirMarker4711"
DAY = f"{MARKER_DATE[:4]}-{MARKER_DATE[4:6]}-{MARKER_DATE[6:]}"
WAYS = ("upload", "command", "server")
DCM = "http://dicom.nema.org/resources/ontology/DCM"


def _text(words: str) -> str:
    """Free text that names the patient, titled and not, and carries the marker date."""
    return f"{words}; seen with {MARKER} on {DAY}, Patient: {MARKER}, MRN {MARKER}-77"


def _narrative() -> dict[str, str]:
    return {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{MARKER}</div>',
    }


def _concept(words: str) -> dict[str, Any]:
    return {
        "text": _text(words),
        "coding": [{"system": f"urn:{MARKER}", "code": MARKER, "display": _text(words)}],
    }


def _resources(patient_id: str, study_uid: str) -> list[dict[str, Any]]:
    note = [{"text": _text("note"), "authorString": MARKER}]
    who = {"display": MARKER, "identifier": {"system": f"urn:{MARKER}", "value": MARKER}}
    subject = {"reference": "Patient/p1", "display": MARKER}
    mark_id = [{"system": f"urn:{MARKER}", "value": MARKER}]
    attachment = base64.b64encode(_text("Cough for two weeks").encode()).decode()
    return [
        {
            "resourceType": "Patient",
            "id": "p1",
            "text": _narrative(),
            "identifier": [
                {"system": "urn:mrn", "value": patient_id},
                {"system": f"urn:{MARKER}", "value": MARKER},
            ],
            "name": [
                {
                    "text": f"{MARKER} Anna",
                    "family": MARKER,
                    "given": [MARKER, "Anna"],
                    "prefix": [MARKER],
                }
            ],
            "telecom": [
                {"system": "phone", "value": f"{MARKER}-555"},
                {"system": "email", "value": f"{MARKER}@example.org"},
            ],
            "gender": "female",
            "birthDate": DAY,
            "address": [
                {
                    "text": MARKER,
                    "line": [f"1 {MARKER} Road"],
                    "city": MARKER,
                    "district": MARKER,
                    "postalCode": MARKER,
                    "country": MARKER,
                }
            ],
            "maritalStatus": _concept("married"),
            "contact": [{"name": {"family": MARKER}, "telecom": [{"value": MARKER}]}],
            "communication": [{"language": _concept("language")}],
            "generalPractitioner": [{"display": MARKER}],
        },
        {
            "resourceType": "ImagingStudy",
            "id": "s1",
            "text": _narrative(),
            "status": "available",
            "subject": subject,
            "identifier": [
                {"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"},
                *mark_id,
            ],
            "started": f"{DAY}T10:00:00+00:00",
            "description": _text("chest"),
            "referrer": who,
            "note": note,
            "procedureCode": [_concept("procedure")],
            "reasonCode": [_concept("reason")],
            "series": [
                {
                    "uid": "1.2.3",
                    "modality": {
                        "system": "http://dicom.nema.org/resources/ontology/DCM",
                        "code": "DX",
                    },
                    "description": _text("series"),
                    "bodySite": {"display": MARKER},
                }
            ],
        },
        {
            "resourceType": "Observation",
            "text": _narrative(),
            "identifier": mark_id,
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "laboratory",
                        }
                    ],
                    "text": _text("laboratory"),
                }
            ],
            "code": {
                "coding": [
                    {"system": "http://loinc.org", "code": "2276-4", "display": _text("Ferritin")}
                ],
                "text": _text("Ferritin"),
            },
            "subject": subject,
            "effectiveDateTime": f"{DAY}T10:00:00+00:00",
            "issued": f"{DAY}T11:00:00+00:00",
            "performer": [who],
            "valueQuantity": {"value": 11.2, "unit": f"g/dL {MARKER}", "system": f"urn:{MARKER}"},
            "interpretation": [_concept("low")],
            "note": note,
            "method": _concept("method"),
            "referenceRange": [
                {"low": {"value": 12}, "high": {"value": 16}, "text": _text("range")}
            ],
        },
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
            "subject": subject,
            "effectiveDateTime": DAY,
            "valueString": _text("tall"),
        },
        {
            "resourceType": "Condition",
            "text": _narrative(),
            "identifier": mark_id,
            "subject": subject,
            "code": _concept("COPD since 2015"),
            "bodySite": [_concept("lung")],
            "onsetString": _text("onset"),
            "recordedDate": DAY,
            "recorder": who,
            "note": note,
        },
        {
            "resourceType": "DiagnosticReport",
            "text": _narrative(),
            "identifier": mark_id,
            "status": "final",
            "code": _concept("Chest radiograph"),
            "subject": subject,
            "effectiveDateTime": DAY,
            "issued": f"{DAY}T12:00:00+00:00",
            "performer": [who],
            "conclusion": _text("No consolidation"),
            "conclusionCode": [_concept("normal")],
            "presentedForm": [{"contentType": "text/plain", "data": attachment, "title": MARKER}],
        },
        {
            "resourceType": "DocumentReference",
            "text": _narrative(),
            "identifier": mark_id,
            "status": "current",
            "type": _concept("referral"),
            "subject": subject,
            "date": f"{DAY}T09:00:00+00:00",
            "author": [who],
            "description": _text("referral letter"),
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain",
                        "data": attachment,
                        "title": MARKER,
                        "url": f"http://{MARKER}.example/letter",
                    }
                }
            ],
        },
        {
            "resourceType": "Consent",
            "text": _narrative(),
            "identifier": mark_id,
            "status": "active",
            "scope": {"coding": [{"code": "research"}], "text": _text("research")},
            "category": [_concept("research")],
            "patient": subject,
            "dateTime": f"{DAY}T08:00:00+00:00",
            "performer": [who],
            "organization": [{"display": MARKER}],
            "sourceAttachment": {"title": MARKER, "url": f"http://{MARKER}.example/form"},
            "policyRule": _concept("study consent"),
            "provision": {
                "type": "permit",
                "actor": [{"role": _concept("role"), "reference": who}],
            },
        },
    ]


def _import_every_way(project, lead_api, tmp_path: Path, items: list[dict[str, Any]]) -> None:
    def resources(way: str) -> list[dict[str, Any]]:
        item = items[WAYS.index(way)]
        return _resources(item["patient_id"], item["study_instance_uid"])

    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources("upload")],
    }
    answer = lead_api.post(
        f"/api/projects/{project.pk}/fhir-imports/",
        {"file": SimpleUploadedFile(f"{MARKER}.json", json.dumps(bundle).encode())},
        format="multipart",
    )
    assert answer.status_code == 201, answer.content
    assert answer.json()["refused"] == 0, answer.json()

    path = tmp_path / f"{MARKER}.ndjson"
    path.write_text("\n".join(json.dumps(r) for r in resources("command")))
    call_command("import_fhir", str(project.pk), str(path), stdout=io.StringIO())

    entries = [{"fullUrl": f"urn:uuid:{MARKER}", "resource": r} for r in resources("server")]
    with paged_search(entries, first_page=4) as search_url:
        batch = pull_fhir(project=project, search_url=search_url)
    assert batch.refused == 0, batch.items


def test_a_fhir_marker_sent_every_way_in_appears_nowhere(
    project, cases, synthetic_dir, member, api_for, tmp_path, captured_logs
) -> None:
    lead = member("fhirlead", "lead", "annotator", "model_owner")
    api = api_for(lead)
    items = synthetic.load_manifest(synthetic_dir)[: len(WAYS)]
    _import_every_way(project, api, tmp_path, items)

    # Every way landed on its patient's case: labs, clinical text and consent.
    for case in cases[: len(WAYS)]:
        case.refresh_from_db()
        assert LabResult.objects.filter(case=case, code="2276-4").exists()
        assert "COPD since 2015" in case.history and "Cough for two weeks" in case.indication
        assert "[NAME]" in case.history
        assert Patient.objects.get(studies__case=case).consent_status == "consented"

    case_ids = [c.pk for c in Case.objects.filter(project=project)]
    urls = [f"/api/projects/{project.pk}/consent/", *(f"/api/cases/{pk}/" for pk in case_ids)]
    problems = marker_leaks(api, project, MARKER, urls=urls, logs=captured_logs)
    assert not problems, problems


def test_a_refused_resource_is_reported_without_the_value_it_refused(
    project, cases, api_for, member
):
    lead = api_for(member("fhirlead", "lead"))
    bad = {
        "resourceType": "Observation",
        "status": f"final {MARKER}",
        "code": {"text": "x"},
        "valueQuantity": {"value": MARKER},
    }
    answer = lead.post(
        f"/api/projects/{project.pk}/fhir-imports/",
        {"file": SimpleUploadedFile("bad.json", json.dumps(bad).encode())},
        format="multipart",
    )
    assert answer.status_code == 201, answer.content
    line = answer.json()["items"][0]
    assert line["status"] == "refused" and line["reason"].startswith("entry 1: ")
    assert "valueQuantity.value" in line["reason"]
    assert not leaks(answer.content, MARKER)
