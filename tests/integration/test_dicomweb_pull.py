"""Pulling studies over DICOMweb from a real Orthanc (QIDO-RS search, WADO-RS retrieve):
studies land de-identified with the pixels of the originals, a re-pull stores nothing new,
and a PACS that cannot be reached gives a clear error and writes nothing."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
from django.core.management import CommandError, call_command
from pydicom.data import get_testdata_file
from rest_framework.test import APIRequestFactory, force_authenticate

from active_learning.ml import synthetic
from annotations.api.pacs_views import PacsPullView
from annotations.dicom.dicomweb import PacsUnavailable
from annotations.models import Case, IngestBatch, Instance, Project
from annotations.services import pacs
from annotations.services.ingest import storage_path
from tests.conftest import IN_CI
from tests.support.orthanc import OrthancPeer, missing_tools, orthanc_on_loopback

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CORPUS = ["CT_small.dcm", "SC_rgb_jpeg_dcmtk.dcm"]  # uncompressed and JPEG baseline


@pytest.fixture(scope="module")
def pacs_files(synthetic_dir: Path) -> list[Path]:
    files = [synthetic_dir / item["file"] for item in synthetic.load_manifest(synthetic_dir)]
    return files + [Path(get_testdata_file(name)) for name in CORPUS]  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def orthanc(
    tmp_path_factory: pytest.TempPathFactory, pacs_files: list[Path]
) -> Iterator[OrthancPeer]:
    """One Orthanc for the module, holding the synthetic files and two corpus files."""
    missing = missing_tools()
    if missing:
        if IN_CI:
            pytest.fail(f"Orthanc test peer needs {missing}")
        pytest.skip(f"Orthanc test peer needs {missing}")
    with orthanc_on_loopback(tmp_path_factory.mktemp("orthanc")) as peer:
        for path in pacs_files:
            response = requests.post(
                f"{peer.http_url}/instances", data=path.read_bytes(), timeout=30
            )
            response.raise_for_status()
        yield peer


@pytest.fixture
def pacs_project(project: Project, orthanc: OrthancPeer) -> Project:
    project.dicomweb_url = orthanc.dicomweb_url
    project.save(update_fields=["dicomweb_url"])
    return project


def _instances(project: Project) -> list[Instance]:
    return list(Instance.objects.filter(series__study__project=project))


def _stored_pixels(instance: Instance) -> np.ndarray:
    return pydicom.dcmread(storage_path(instance.file_path)).pixel_array


def test_pull_by_study_uid_lands_each_study_with_the_original_pixels(pacs_project, pacs_files):
    for path in pacs_files[:2] + pacs_files[-2:]:
        original = pydicom.dcmread(path)
        before = {i.pk for i in _instances(pacs_project)}
        batch = pacs.pull_studies(
            project=pacs_project, study_instance_uids=[str(original.StudyInstanceUID)]
        )
        assert (batch.stored, batch.duplicates, batch.refused) == (1, 0, 0), batch.items
        assert batch.source == "dicomweb" and batch.finished_at is not None
        [new] = [i for i in _instances(pacs_project) if i.pk not in before]
        assert batch.items[0]["instance_id"] == new.pk
        assert batch.items[0]["case_id"] == new.series.study.case.pk
        assert new.transfer_syntax_uid == str(original.file_meta.TransferSyntaxUID)
        assert np.array_equal(_stored_pixels(new), original.pixel_array)
        stored = pydicom.dcmread(storage_path(new.file_path))
        assert str(stored.get("PatientName", "")) != str(original.get("PatientName", ""))
        assert new.sop_instance_uid != str(original.SOPInstanceUID)
    assert Case.objects.filter(project=pacs_project).count() == 4


def test_pull_by_query_then_repull_stores_nothing_new(pacs_project, synthetic_dir):
    manifest = synthetic.load_manifest(synthetic_dir)
    patient = manifest[3]["patient_id"]

    first = pacs.pull_studies(project=pacs_project, query={"PatientID": patient})
    assert (first.stored, first.refused) == (1, 0), first.items

    everything = pacs.pull_studies(
        project=pacs_project, query={"StudyDate": "19000101-"}, limit=100
    )
    studies = Case.objects.filter(project=pacs_project).count()
    assert studies == everything.stored + 1 == len(_instances(pacs_project))
    assert studies >= len(manifest)
    assert everything.duplicates == 1 and everything.refused == 0

    again = pacs.pull_studies(project=pacs_project, query={"StudyDate": "19000101-"}, limit=100)
    assert (again.stored, again.refused) == (0, 0)
    assert again.duplicates == studies
    assert Case.objects.filter(project=pacs_project).count() == studies


def test_unknown_study_is_reported_not_raised(pacs_project):
    batch = pacs.pull_studies(project=pacs_project, study_instance_uids=["1.2.3.4.5.6.7"])
    assert (batch.stored, batch.refused) == (0, 1)
    assert "no instances" in batch.items[0]["reason"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_pacs_gives_a_clear_error_and_writes_nothing(project, synthetic_dir):
    url = f"http://127.0.0.1:{_free_port()}/dicom-web"
    project.dicomweb_url = url
    project.save(update_fields=["dicomweb_url"])
    uid = synthetic.load_manifest(synthetic_dir)[0]["study_instance_uid"]

    with pytest.raises(PacsUnavailable) as raised:
        pacs.pull_studies(project=project, study_instance_uids=[uid])
    assert url in raised.value.message and "could not be reached" in raised.value.message
    assert raised.value.status_code == 502

    with pytest.raises(PacsUnavailable):
        pacs.pull_studies(project=project, query={"PatientID": "X"})
    assert not IngestBatch.objects.exists()
    assert not Instance.objects.exists()


def test_wrong_dicomweb_root_names_the_http_status(project, orthanc):
    project.dicomweb_url = f"{orthanc.http_url}/not-dicom-web"
    project.save(update_fields=["dicomweb_url"])
    with pytest.raises(PacsUnavailable) as raised:
        pacs.pull_studies(project=project, query={"PatientID": "X"})
    assert "HTTP 404" in raised.value.message
    assert raised.value.detail["http_status"] == 404
    assert not IngestBatch.objects.exists()


def test_pull_from_pacs_command_prints_a_summary(pacs_project, synthetic_dir):
    uid = synthetic.load_manifest(synthetic_dir)[5]["study_instance_uid"]
    out = StringIO()
    call_command("pull_from_pacs", "--project", str(pacs_project.pk), "--study", uid, stdout=out)
    assert "1 stored, 0 already there, 0 refused" in out.getvalue()

    with pytest.raises(CommandError, match="could not be reached"):
        call_command(
            "pull_from_pacs",
            "--project",
            str(pacs_project.pk),
            "--patient-id",
            "X",
            "--url",
            f"http://127.0.0.1:{_free_port()}/dicom-web",
        )


def test_pull_api_is_for_leads_and_returns_the_batch_summary(pacs_project, member, synthetic_dir):
    uid = synthetic.load_manifest(synthetic_dir)[7]["study_instance_uid"]
    view = PacsPullView.as_view()
    factory = APIRequestFactory()

    def post(user, body):
        request = factory.post("/pacs-pull/", body, format="json")
        force_authenticate(request, user=user)
        return view(request, project_pk=pacs_project.pk)

    annotator = member("ann", "annotator")
    assert post(annotator, {"study_instance_uids": [uid]}).status_code == 403
    lead = member("lea", "lead")
    assert post(lead, {}).status_code == 400
    assert post(lead, {"query": {"PatientName": "x", "Nonsense": "y"}}).status_code == 400
    response = post(lead, {"study_instance_uids": [uid]})
    assert response.status_code == 200, response.data
    assert response.data["stored"] == 1 and response.data["refused"] == 0
    assert response.data["items"][0]["status"] == "stored"
    assert IngestBatch.objects.get(pk=response.data["batch_id"]).created_by == lead
