"""Original file names can name the patient; MedLoop keeps none (issue 15, finding 4). Report
lines carry a label and a keyed hash, and a COCO import still matches by the original name."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from active_learning.ml import synthetic
from annotations.models import Annotation, IngestBatch

pytestmark = pytest.mark.django_db

NAME = "DOE_JOHN_MRN-998877_DOB-1930-01-01.dcm"
TRACES = ("DOE_JOHN", "998877", "1930-01-01", "doe_john")


def _no_trace(text: str) -> None:
    found = [trace for trace in TRACES if trace in text]
    assert not found, f"{found} found in: {text[:400]}"


def _dicom(synthetic_dir: Path, index: int = 0) -> bytes:
    item = synthetic.load_manifest(synthetic_dir)[index]
    return (synthetic_dir / item["file"]).read_bytes()


def _coco(file_name: str, finding: str) -> bytes:
    document = {
        "images": [{"id": 1, "file_name": file_name, "width": 128, "height": 128}],
        "categories": [{"id": 1, "name": finding}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 12, 30, 20], "area": 600}
        ],
    }
    return json.dumps(document).encode()


def test_an_identifying_file_name_is_in_no_response_row_or_log_and_coco_still_matches(
    member, api_for, project, synthetic_dir, caplog
):
    caplog.set_level(logging.DEBUG)
    lead = api_for(member("lena", "lead"))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("DOE_JOHN_MRN-998877/notes.txt", b"Doe John, not an image " * 8)
    files = [
        SimpleUploadedFile(NAME, _dicom(synthetic_dir)),
        SimpleUploadedFile("DOE_JOHN_MRN-998877_DOB-1930-01-01.zip", archive.getvalue()),
        SimpleUploadedFile("DOE_JOHN_MRN-998877_cut.dcm", _dicom(synthetic_dir, 1)[:300]),
    ]
    upload = lead.post(f"/api/projects/{project.pk}/uploads/", {"files": files}, format="multipart")
    assert upload.status_code == 201, upload.content
    report = upload.json()
    assert [line["status"] for line in report["items"]] == ["stored", "refused", "refused"]
    assert report["items"][0]["source"].startswith("file 1 (")
    assert report["items"][0]["source"].endswith(".dcm)")
    _no_trace(upload.content.decode())

    batch = IngestBatch.objects.get(project=project)
    for url in (f"/api/projects/{project.pk}/ingest-batches/", f"/api/ingest-batches/{batch.pk}/"):
        response = lead.get(url)
        assert response.status_code == 200, url
        _no_trace(response.content.decode())

    clinical = lead.post(
        f"/api/projects/{project.pk}/clinical-imports/",
        {"file": SimpleUploadedFile("DOE_JOHN_MRN-998877_labs.csv", b"name,value\nx,1\n")},
        format="multipart",
    )
    assert clinical.status_code == 400
    _no_trace(clinical.content.decode())

    finding = project.finding_keys[0]
    coco = lead.post(
        f"/api/projects/{project.pk}/imports/coco/",
        {
            "file": SimpleUploadedFile(
                "instances.json", _coco(f"export/{NAME[:-4]}.png", finding), "application/json"
            )
        },
        format="multipart",
    )
    assert coco.status_code == 201, coco.content
    assert coco.json()["matched_by"]["source_name"] == 1
    annotation = Annotation.objects.get(case_id=report["items"][0]["case_id"])
    assert annotation.boxes.get().finding == finding

    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    _no_trace(dump.getvalue())
    _no_trace(caplog.text)


def test_file_names_are_matched_case_insensitively_through_the_keyed_hash(project):
    from annotations.services.source_names import source_key, source_label

    key = source_key(project, f"folder/{NAME}")
    assert key == source_key(project, NAME.lower().replace(".dcm", ".png"))
    label = source_label(4, key, NAME)
    assert label == f"file 4 ({key[:10]}.dcm)"
    _no_trace(key + label)


def test_names_in_reports_written_before_hashing_are_replaced_and_still_match(
    project, synthetic_dir
):
    from annotations.services import batches
    from annotations.services.imports.matching import match_images

    batch = batches.ingest_sources(
        project=project,
        sources=[batches.SourceFile(NAME, lambda: _dicom(synthetic_dir))],
        source=IngestBatch.Source.COMMAND,
    )
    line = batch.items[0]
    # As a report line was written before names were hashed.
    legacy = {k: v for k, v in line.items() if k != "source_key"} | {"source": NAME}
    refused = {"source": NAME, "status": "refused", "reason": f"{NAME}: not a DICOM file."}
    IngestBatch.objects.filter(pk=batch.pk).update(items=[legacy, refused])

    out = io.StringIO()
    call_command("hash_ingest_file_names", stdout=out)
    assert out.getvalue().startswith("2 report lines")
    items = IngestBatch.objects.get(pk=batch.pk).items
    _no_trace(json.dumps(items))
    assert items[1]["reason"].startswith(f"{items[1]['source']}: not a DICOM")
    matches, _ = match_images(project, {1: (f"{NAME[:-4]}.png", None)})
    assert matches[1].instance.pk == line["instance_id"]
    call_command("hash_ingest_file_names", stdout=out)  # idempotent
    assert IngestBatch.objects.get(pk=batch.pk).items == items
