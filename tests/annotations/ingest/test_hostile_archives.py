"""Zip archives that would tie up the server are refused from their directory, before
anything is decompressed or parsed (issue 15, finding 9)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from active_learning.ml import synthetic
from annotations.models import Instance
from annotations.services import batches

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024


@pytest.fixture
def lead(member, api_for):
    return api_for(member("lena", "lead"))


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _upload(client, project, name: str, data: bytes):
    return client.post(
        f"/api/projects/{project.pk}/uploads/",
        {"files": [SimpleUploadedFile(name, data)]},
        format="multipart",
    )


def _dicom(synthetic_dir: Path, index: int = 0) -> bytes:
    item = synthetic.load_manifest(synthetic_dir)[index]
    return (synthetic_dir / item["file"]).read_bytes()


def test_a_thousand_zero_filled_members_are_refused_as_a_zip_bomb(lead, project):
    zero = b"\0" * MIB
    archive = _zip({f"slice_{i:04d}.dcm": zero for i in range(1000)})
    assert len(archive) < 2 * MIB  # about a megabyte that declares a gibibyte
    response = _upload(lead, project, "series.zip", archive)
    assert response.status_code == 201, response.content
    report = response.json()
    assert report["stored"] == 0 and report["refused"] >= 1
    reasons = [line["reason"] for line in report["items"]]
    assert all("compression ratio" in reason and "zip bomb" in reason for reason in reasons)
    assert "whole archive" in reasons[0]
    assert Instance.objects.count() == 0


def test_every_member_has_its_compression_ratio_checked_whatever_its_size(
    lead, project, synthetic_dir
):
    # Next to a real image the archive as a whole is within the ratio, but the small zero
    # member (64 KiB, far under the old 1 MiB threshold) alone is not.
    good = _dicom(synthetic_dir)
    archive = _zip({"a.dcm": good, "small_bomb.dcm": b"\0" * (64 * 1024)})
    report = _upload(lead, project, "mixed.zip", archive).json()
    statuses = [(line["status"], line.get("reason", "")) for line in report["items"]]
    assert statuses[0][0] == "stored"
    assert statuses[1][0] == "refused" and "compression ratio" in statuses[1][1]


def test_members_over_the_member_limit_refuse_the_archive(lead, project, settings, synthetic_dir):
    settings.MEDLOOP_MAX_ARCHIVE_MEMBERS = 3
    data = _dicom(synthetic_dir)
    archive = _zip({f"copy_{i}.dcm": data for i in range(4)})
    report = _upload(lead, project, "many.zip", archive).json()
    assert [line["status"] for line in report["items"]] == ["refused"]
    assert "4 members is over the limit of 3" in report["items"][0]["reason"]


def test_non_dicom_members_are_refused_by_their_first_bytes(lead, project, synthetic_dir):
    text = ("lorem ipsum " * 40).encode()  # compresses well, within the ratio
    archive = _zip({"notes.txt": text, "scan.dcm": _dicom(synthetic_dir)})
    report = _upload(lead, project, "study.zip", archive).json()
    refused = report["items"][0]
    assert refused["status"] == "refused"
    assert (
        "no 'DICM' prefix" in refused["reason"] and "not decompressed further" in refused["reason"]
    )
    assert report["items"][1]["status"] == "stored"


def test_the_dicom_head_check_accepts_part10_and_bare_data_sets(synthetic_dir):
    part10 = _dicom(synthetic_dir)
    assert batches.looks_like_dicom(part10[: batches.DICOM_HEAD_BYTES])
    bare = part10[132:]  # file meta (group 0002) first
    assert batches.looks_like_dicom(bare[: batches.DICOM_HEAD_BYTES])
    assert not batches.looks_like_dicom(b"\0" * batches.DICOM_HEAD_BYTES)
    assert not batches.looks_like_dicom(b"PK\x03\x04" + b"\0" * 128)
    assert not batches.looks_like_dicom(b"%PDF-1.7\n" + b"x" * 123)
