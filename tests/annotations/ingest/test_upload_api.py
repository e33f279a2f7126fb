"""Uploads through the API: DICOM files and zip archives, the per-file report, size limits
and hostile archives; nothing already stored is lost."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from active_learning.ml import synthetic
from annotations.models import AuditEvent, IngestBatch, Instance
from annotations.services.source_names import source_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead(member, api_for):
    return api_for(member("lena", "lead"))


def _files(synthetic_dir: Path, count: int) -> list[Path]:
    return [synthetic_dir / item["file"] for item in synthetic.load_manifest(synthetic_dir)[:count]]


def _upload(client, project, *files):
    return client.post(
        f"/api/projects/{project.pk}/uploads/", {"files": list(files)}, format="multipart"
    )


def _zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_upload_stores_files_and_reports_each_one(lead, project, synthetic_dir):
    paths = _files(synthetic_dir, 3)
    uploads = [SimpleUploadedFile(p.name, p.read_bytes()) for p in paths]
    uploads.append(SimpleUploadedFile("notes.txt", b"not an image"))
    response = _upload(lead, project, *uploads)
    assert response.status_code == 201, response.content
    report = response.json()
    assert (report["stored"], report["refused"]) == (3, 1)
    statuses = {line["source_key"]: line["status"] for line in report["items"]}
    assert statuses[source_key(project, "notes.txt")] == "refused"
    refused = next(line for line in report["items"] if line["status"] == "refused")
    assert "not a DICOM file" in refused["reason"]
    again = _upload(lead, project, *[SimpleUploadedFile(p.name, p.read_bytes()) for p in paths])
    assert again.json()["duplicates"] == 3
    assert Instance.objects.count() == 3
    assert IngestBatch.objects.count() == 2
    assert AuditEvent.objects.filter(action="instance.ingest").count() == 3


def test_zip_upload_ingests_members_and_refuses_traversal_and_bombs(lead, project, synthetic_dir):
    good = {f"study/{p.name}": p.read_bytes() for p in _files(synthetic_dir, 2)}
    hostile = {
        "../../etc/evil.dcm": _files(synthetic_dir, 3)[2].read_bytes(),
        "bomb.dcm": b"\0" * (8 * 1024 * 1024),
    }
    archive = _zip({**good, **hostile})
    response = _upload(lead, project, SimpleUploadedFile("batch.zip", archive))
    report = response.json()
    by_name = {line["source_key"]: line for line in report["items"]}
    evil = by_name[source_key(project, "batch.zip/../../etc/evil.dcm")]
    assert evil["status"] == "refused"
    assert "path traversal" in evil["reason"]
    assert "compression ratio" in by_name[source_key(project, "batch.zip/bomb.dcm")]["reason"]
    assert report["stored"] == 2


def test_truncated_and_pixel_less_files_are_refused_with_precise_reasons(
    lead, project, synthetic_dir
):
    data = _files(synthetic_dir, 1)[0].read_bytes()
    no_pixels = pydicom.dcmread(io.BytesIO(data))
    del no_pixels.PixelData
    buffer = io.BytesIO()
    no_pixels.save_as(buffer)
    response = _upload(
        lead,
        project,
        SimpleUploadedFile("truncated.dcm", data[: len(data) // 2]),
        SimpleUploadedFile("nopixels.dcm", buffer.getvalue()),
    )
    reasons = {line["source"]: line["reason"] for line in response.json()["items"]}
    truncated, no_pixels = response.json()["items"]
    assert "no pixel data" in no_pixels["reason"]
    # Reasons name the file by its label (position and keyed hash), never by its name.
    assert truncated["reason"].startswith(f"{truncated['source']}:")
    assert truncated["source"].startswith("file 1 (") and no_pixels["source"].startswith("file 2")
    assert not any("truncated.dcm" in reason for reason in reasons.values())
    assert Instance.objects.count() == 0


def test_upload_over_the_limit_is_refused_with_413_before_reading(
    lead, project, settings, synthetic_dir
):
    settings.MEDLOOP_MAX_UPLOAD_BYTES = 1000
    path = _files(synthetic_dir, 1)[0]
    response = _upload(lead, project, SimpleUploadedFile(path.name, path.read_bytes()))
    assert response.status_code == 413
    assert "limit" in response.json()["message"]
    assert Instance.objects.count() == 0


def test_instance_over_the_size_limit_is_refused_in_the_report(
    lead, project, settings, synthetic_dir
):
    settings.MEDLOOP_MAX_INSTANCE_BYTES = 1000
    path = _files(synthetic_dir, 1)[0]
    report = _upload(lead, project, SimpleUploadedFile(path.name, path.read_bytes())).json()
    assert report["refused"] == 1
    assert "over the limit" in report["items"][0]["reason"]


def test_only_leads_and_admins_upload(member, api_for, project, synthetic_dir):
    annotator = api_for(member("ann", "annotator"))
    path = _files(synthetic_dir, 1)[0]
    response = _upload(annotator, project, SimpleUploadedFile(path.name, path.read_bytes()))
    assert response.status_code == 403


def test_upload_without_files_is_a_clear_400(lead, project):
    response = lead.post(f"/api/projects/{project.pk}/uploads/", {}, format="multipart")
    assert response.status_code == 400
    assert "files" in response.json()["message"]
