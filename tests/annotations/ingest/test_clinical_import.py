"""Clinical context import from CSV and JSON keyed by accession number or patient ID."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from active_learning.ml import synthetic
from annotations.models import Case, LabResult
from annotations.services import ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(project, synthetic_dir):
    manifest = synthetic.load_manifest(synthetic_dir)[:4]
    for item in manifest:
        ingest.ingest_dicom_path(project=project, path=synthetic_dir / item["file"])
    return manifest


def test_csv_by_accession_sets_text_and_labs_and_reports_unmatched_rows(
    project, imported, member, api_for
):
    first, second = imported[0], imported[1]
    csv_text = (
        "accession_number,patient_id,indication,history,lab_code,lab_name,lab_value,lab_unit,"
        "reference_low,reference_high,observed_at\n"
        f"{first['accession_number']},,Fever and cough,Smoker,1988-5,CRP,87,mg/L,0,5,"
        "2024-03-01T08:00:00+00:00\n"
        f"{first['accession_number']},,,,6690-2,WBC,14.2,10*3/uL,4,11,\n"
        f"{first['accession_number']},,,,718-7,Hb,13,g/dL,twelve,16,\n"
        f",{second['patient_id']},Dyspnoea,,,,,,,,\n"
        "NOPE-1,,Unknown,,,,,,,,\n"
    )
    client = api_for(member("lena", "lead"))
    response = client.post(
        f"/api/projects/{project.pk}/clinical-imports/",
        {"file": SimpleUploadedFile("context.csv", csv_text.encode())},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    report = response.json()
    assert report["stored"] == 2
    statuses = sorted(line["status"] for line in report["items"])
    assert statuses == ["matched", "matched", "refused", "unmatched"]
    refused = next(line for line in report["items"] if line["status"] == "refused")
    assert refused["source"] == "row 4" and "reference_low 'twelve'" in refused["reason"]
    case = Case.objects.get(study__accession_pseudonym__isnull=False, indication="Fever and cough")
    labs = {lab.code: lab for lab in LabResult.objects.filter(case=case)}
    assert set(labs) == {"1988-5", "6690-2"}
    assert labs["1988-5"].out_of_range and labs["1988-5"].unit == "mg/L"
    assert Case.objects.filter(indication="Dyspnoea").count() == 1


def test_json_import_scrubs_identifiers_from_free_text(project, imported):
    item = imported[2]
    payload = {
        "cases": [
            {
                "accession_number": item["accession_number"],
                "indication": "Mr John Smith, MRN 12345678, call 555-123-4567. Cough.",
                "history": "Seen by Dr Jones.",
                "labs": [{"code": "1988-5", "name": "CRP", "value": 3, "unit": "mg/L"}],
            }
        ]
    }
    out = io.StringIO()
    from tempfile import NamedTemporaryFile

    with NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump(payload, handle)
        handle.flush()
        call_command("import_clinical", handle.name, "--project", str(project.pk), stdout=out)
    assert "1 cases updated" in out.getvalue()
    case = Case.objects.exclude(indication="").get()
    for secret in ("John", "Smith", "12345678", "555-123-4567", "Jones"):
        assert secret not in case.indication + case.history
    assert "Cough" in case.indication


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("x.csv", b"foo,bar\n1,2\n", "accession_number or patient_id column"),
        ("x.json", b"{not json", "invalid JSON"),
        ("x.json", b"[1, 2]", "every item must be an object"),
        ("x.csv", b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_malformed_files_are_refused_with_a_message(project, member, api_for, name, data, message):
    client = api_for(member("lena", "lead"))
    response = client.post(
        f"/api/projects/{project.pk}/clinical-imports/",
        {"file": SimpleUploadedFile(name, data)},
        format="multipart",
    )
    assert response.status_code == 400
    assert message in response.json()["message"]
