"""FHIR R4 import (issue 17, section 1): a Bundle with labs, notes, a consent and an
ImagingStudy lands on the right case; a malformed resource is reported by position and the rest
is imported; FHIR and DICOM dates of one patient shift identically; nothing identifying is
stored; re-import is idempotent."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, date, datetime

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from active_learning.ml import synthetic
from annotations.models import Case, IngestBatch, LabResult, Patient
from annotations.services.fhir_import import import_fhir
from tests.support.fhir_server import paged_search

pytestmark = pytest.mark.django_db
MARKER = "ZQXMARKER"


def _bundle(item: dict, *, bad_value: bool = True) -> dict:
    text = base64.b64encode(b"Cough for two weeks, fever.").decode()
    entries = [
        {
            "fullUrl": "urn:uuid:patient-1",
            "resource": {
                "resourceType": "Patient",
                "id": "p1",
                "identifier": [{"system": "urn:mrn", "value": item["patient_id"]}],
                "name": [{"family": MARKER, "given": ["Anna"]}],
                "birthDate": "1960-02-03",
            },
        },
        {
            "resource": {
                "resourceType": "ImagingStudy",
                "id": "s1",
                "status": "available",
                "subject": {"reference": "Patient/p1"},
                "identifier": [
                    {"system": "urn:dicom:uid", "value": f"urn:oid:{item['study_instance_uid']}"}
                ],
            }
        },
        {
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "1988-5"}]},
                "subject": {"reference": "Patient/p1"},
                "valueQuantity": {"value": "abc" if bad_value else 5, "unit": "mg/L"},
            }
        },
        {
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/"
                                "observation-category",
                                "code": "laboratory",
                            }
                        ]
                    }
                ],
                "code": {
                    "coding": [
                        {"system": "http://loinc.org", "code": "2276-4", "display": "Ferritin"}
                    ]
                },
                "subject": {"reference": "urn:uuid:patient-1"},
                "effectiveDateTime": "2024-03-01T10:00:00+00:00",
                "valueQuantity": {"value": 11.2, "unit": "g/dL"},
                "referenceRange": [{"low": {"value": 12}, "high": {"value": 16}}],
            }
        },
        {
            "resource": {
                "resourceType": "Condition",
                "subject": {"reference": "Patient/p1"},
                "code": {"text": f"COPD since 2015, followed by Dr. {MARKER}"},
            }
        },
        {
            "resource": {
                "resourceType": "DocumentReference",
                "status": "current",
                "subject": {"reference": "Patient/p1"},
                "content": [{"attachment": {"contentType": "text/plain", "data": text}}],
            }
        },
        {
            "resource": {
                "resourceType": "Consent",
                "status": "active",
                "scope": {"coding": [{"code": "research"}]},
                "category": [{"coding": [{"code": "research"}]}],
                "patient": {"reference": "Patient/p1"},
                "dateTime": "2024-02-01",
                "policyRule": {"text": "study consent"},
                "provision": {"type": "permit"},
            }
        },
    ]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def test_a_bundle_with_labs_notes_consent_and_study_lands_on_the_right_case(
    project, cases, synthetic_dir
):
    item = synthetic.load_manifest(synthetic_dir)[4]
    case = Case.objects.get(pk=cases[4].pk)
    batch = import_fhir(project=project, data=json.dumps(_bundle(item)).encode())

    lines = {line["position"]: line for line in batch.items}
    # The malformed resource (entry 3) is reported by position with the validator's message.
    assert lines[3]["status"] == "refused"
    assert lines[3]["reason"].startswith("entry 3:") and "valueQuantity" in lines[3]["reason"]
    # ...and the rest of the bundle is imported, onto the study's case.
    assert [lines[p]["status"] for p in (1, 2, 4, 5, 6, 7)] == ["imported"] * 6
    assert lines[2]["case_id"] == case.pk
    lab = LabResult.objects.get(case=case, code="2276-4")
    assert (lab.name, lab.value, lab.unit) == ("Ferritin", 11.2, "g/dL")
    assert (lab.reference_low, lab.reference_high) == (12, 16) and lab.out_of_range
    case.refresh_from_db()
    assert "COPD since 2015" in case.history
    assert "Cough for two weeks" in case.indication
    patient = Patient.objects.get(studies__case=case)
    assert (patient.consent_status, patient.consent_source) == ("consented", "fhir")
    assert LabResult.objects.filter(code="2276-4").count() == 1  # no other case touched

    # Dates in FHIR and DICOM of one patient shift identically.
    original = pydicom.dcmread(synthetic_dir / item["file"], stop_before_pixels=True).StudyDate
    dicom_shift = date(int(original[:4]), int(original[4:6]), int(original[6:8])) - (
        case.study.study_date
    )
    fhir_shift = datetime(2024, 3, 1, 10, 0, tzinfo=UTC) - lab.observed_at
    assert fhir_shift == dicom_shift and dicom_shift.days >= 1
    assert patient.consent_date == date(2024, 2, 1) - dicom_shift

    # Nothing identifying is stored: the name and the identifier are nowhere.
    stored = json.dumps(
        [
            list(Case.objects.values()),
            list(Patient.objects.values()),
            list(LabResult.objects.values()),
            list(IngestBatch.objects.values("items")),
        ],
        default=str,
    )
    assert MARKER not in stored and item["patient_id"] not in stored

    # Re-import is idempotent.
    again = import_fhir(project=project, data=json.dumps(_bundle(item)).encode())
    assert again.stored == batch.stored
    assert LabResult.objects.filter(case=case, code="2276-4").count() == 1
    history = case.history
    case.refresh_from_db()
    assert case.history == history


def test_ndjson_through_the_api_and_the_command(
    project, cases, synthetic_dir, member, api_for, tmp_path
):
    item = synthetic.load_manifest(synthetic_dir)[5]
    resources = [e["resource"] for e in _bundle(item, bad_value=False)["entry"]]
    resources[3]["subject"] = {"reference": "Patient/p1"}  # NDJSON has no fullUrl
    ndjson = "\n".join(json.dumps(r) for r in resources).encode()
    lead = api_for(member("lena", "lead"))
    answer = lead.post(
        f"/api/projects/{project.pk}/fhir-imports/",
        {"file": SimpleUploadedFile("extract.ndjson", ndjson)},
        format="multipart",
    )
    assert answer.status_code == 201, answer.json()
    assert answer.json()["refused"] == 0 and answer.json()["stored"] == 7
    path = tmp_path / "bad.ndjson"
    path.write_bytes(b'{"resourceType": "Nope"}\n' + ndjson)
    call_command("import_fhir", str(project.pk), str(path))
    last = IngestBatch.objects.order_by("-pk").first()
    assert last.items[0]["status"] == "refused" and "Nope" in last.items[0]["reason"]


def test_a_paged_search_is_followed_and_an_unreachable_server_is_a_clean_error(
    project, cases, synthetic_dir
):
    from annotations.services.fhir_import import FhirServerUnavailable, pull_fhir

    item = synthetic.load_manifest(synthetic_dir)[6]
    entries = _bundle(item, bad_value=False)["entry"]
    with paged_search(entries, first_page=3) as search_url:
        batch = pull_fhir(project=project, search_url=search_url)
    assert batch.stored == 7 and batch.refused == 0  # both pages
    assert LabResult.objects.filter(case=cases[6], code="2276-4").exists()

    # The server is gone now: a clean error naming the address, nothing written.
    before = IngestBatch.objects.count()
    with pytest.raises(FhirServerUnavailable, match="cannot be reached"):
        pull_fhir(project=project, search_url=search_url)
    assert IngestBatch.objects.count() == before


def test_a_lab_repeated_in_one_bundle_is_stored_once_around_a_refused_resource(
    project, cases, synthetic_dir
):
    """The import reads each patient's cases and labs once and remembers what it adds; a lab
    that comes twice in one bundle (a refused resource between them) is still one row."""
    item = synthetic.load_manifest(synthetic_dir)[2]
    bundle = _bundle(item, bad_value=False)
    ferritin = copy.deepcopy(bundle["entry"][3])
    refused = copy.deepcopy(bundle["entry"][3])
    refused["resource"]["subject"] = {"reference": "Patient/nobody"}
    bundle["entry"] += [ferritin, refused, ferritin]
    batch = import_fhir(project=project, data=json.dumps(bundle).encode())
    lines = {line["position"]: line for line in batch.items}
    last = len(bundle["entry"])
    assert lines[last - 1]["status"] == "refused"
    assert lines[last - 2]["labs_added"] == 0 and lines[last]["labs_added"] == 0
    case = Case.objects.get(pk=lines[4]["case_id"])
    assert LabResult.objects.filter(case=case, code="2276-4").count() == 1
    assert lines[4]["labs_added"] == 1
