"""A marker in every text-like attribute, private tag, the file meta and the preamble, sent
through every way into MedLoop (upload, zip upload, the import command, C-STORE from dcmtk's
storescu, DICOMweb pull from Orthanc), appears nowhere afterwards: not in stored files, not in
any database row, not in API responses, not in exports, not in logs."""

from __future__ import annotations

import io
import socket
import subprocess
import zipfile
from pathlib import Path

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from pydicom.uid import generate_uid

from annotations.dicom.scp import ListenerConfig, start_listener
from annotations.models import Case, Instance, Project
from annotations.services import annotate, pacs, queue
from tests.integration.conftest import wait_for
from tests.support.leak_scan import marker_leaks
from tests.support.markers import encoded, leaks, marked_dataset
from tests.support.orthanc import missing_tools, orthanc_on_loopback
from tests.support.tools import dcmtk, missing_dcmtk, require

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MARKER = "ZqLeakMarker4711"
WAYS = ("upload", "zip", "command", "cstore", "dicomweb")


def _file_for(way: str) -> bytes:
    """The marked image with UIDs of its own, so each way in makes a new case."""
    dataset = marked_dataset(MARKER)
    dataset.StudyInstanceUID = generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dataset.PatientID = f"{MARKER}-{way}"
    dataset.BurnedInAnnotation = "NO"  # so the case is served, not held for review
    return encoded(dataset)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ingest_every_way(project: Project, lead_api, tmp_path: Path) -> None:
    response = lead_api.post(
        f"/api/projects/{project.pk}/uploads/",
        {"files": [SimpleUploadedFile("upload.dcm", _file_for("upload"))]},
        format="multipart",
    )
    assert response.status_code in (200, 201), response.content

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("study/zip.dcm", _file_for("zip"))
    response = lead_api.post(
        f"/api/projects/{project.pk}/uploads/",
        {"files": [SimpleUploadedFile("batch.zip", archive.getvalue())]},
        format="multipart",
    )
    assert response.status_code in (200, 201), response.content

    folder = tmp_path / "import"
    folder.mkdir()
    (folder / "command.dcm").write_bytes(_file_for("command"))
    call_command("import_dicom", str(folder), "--project", str(project.pk), "--quiet")

    sent = tmp_path / "cstore.dcm"
    sent.write_bytes(_file_for("cstore"))
    project.dicom_ae_title = "LEAKTEST"
    project.save(update_fields=["dicom_ae_title"])
    port = _free_port()
    server = start_listener(ListenerConfig(host="127.0.0.1", port=port, ae_title="MEDLOOP"))
    try:
        before = Instance.objects.filter(series__study__project=project).count()
        result = subprocess.run(
            (
                dcmtk("storescu"),
                "-aet",
                "MODALITY",
                "-aec",
                "LEAKTEST",
                "127.0.0.1",
                str(port),
                str(sent),
            ),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        wait_for(
            lambda: Instance.objects.filter(series__study__project=project).count() > before,
            timeout=60,
            what="the C-STORE instance",
        )
    finally:
        server.shutdown()

    with orthanc_on_loopback(tmp_path / "orthanc") as peer:
        data = _file_for("dicomweb")
        stored = requests.post(f"{peer.http_url}/instances", data=data, timeout=60)
        stored.raise_for_status()
        study_uid = requests.get(
            f"{peer.http_url}/instances/{stored.json()['ID']}/simplified-tags", timeout=30
        ).json()["StudyInstanceUID"]
        project.dicomweb_url = peer.dicomweb_url
        project.save(update_fields=["dicomweb_url"])
        batch = pacs.pull_studies(project=project, study_instance_uids=[study_uid])
        assert batch.stored == 1, batch.report


def _label_every_case(project: Project, reader) -> None:
    """A submitted read per case, so that the exports hold every case."""
    finding = project.finding_keys[0]
    while (case := queue.lease_next_case(project=project, annotator=reader)) is not None:
        annotation = annotate.start_annotation(case=case, annotator=reader)
        instance = Instance.objects.filter(series__study__case=case).first()
        assert instance is not None
        annotate.submit(
            annotation=annotation,
            actor=reader,
            expected_version=annotation.version,
            findings={finding: "present"},
            report={key: "Small rounded opacity." for key in project.report_section_keys},
            boxes=[
                annotate.BoxInput(
                    instance_id=instance.pk, x=10, y=12, width=20, height=18, finding=finding
                )
            ],
        )


def test_a_marker_sent_every_way_in_appears_nowhere(
    project, member, api_for, tmp_path, captured_logs
) -> None:
    require(missing_dcmtk("storescu") + missing_tools(), "the every-way-in marker test")
    lead = member("leaklead", "lead", "annotator", "model_owner")
    api = api_for(lead)

    _ingest_every_way(project, api, tmp_path)

    cases = list(Case.objects.filter(project=project))
    instances = list(Instance.objects.filter(series__study__project=project))
    assert len(cases) == len(WAYS) and len(instances) == len(WAYS)
    problems: dict[str, list[str]] = {}
    next_case = api.post(f"/api/projects/{project.pk}/next-case/")
    assert next_case.status_code == 200
    if leaks(next_case.content, MARKER):
        problems["POST next-case"] = leaks(next_case.content, MARKER)
    _label_every_case(project, lead)

    problems.update(
        marker_leaks(
            api,
            project,
            MARKER,
            urls=[
                f"/api/projects/{project.pk}/quarantine/",
                f"/api/projects/{project.pk}/dashboard/queue/",
                *(f"/api/cases/{case.pk}/" for case in cases),
                *(f"/api/instances/{instance.pk}/file/" for instance in instances),
            ],
            logs=captured_logs,
        )
    )
    assert not problems, problems
