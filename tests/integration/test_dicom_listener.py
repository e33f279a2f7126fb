"""The C-STORE receiver against dcmtk's echoscu and storescu (and pynetdicom as a sender of
bad data): images land de-identified in the project of the called AE title, re-sending stores
nothing new, bad data and unknown AE titles are refused with the right status."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from django.conf import settings
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom import _config as pynetdicom_config
from pynetdicom.transport import ThreadedAssociationServer

from active_learning.ml import synthetic
from annotations.dicom.scp import ListenerConfig, start_listener
from annotations.models import Case, IngestBatch, Instance, Project
from annotations.services.ingest import storage_path
from tests.integration.conftest import REPO, current_database_url, wait_for
from tests.support.tools import dcmtk, missing_dcmtk, require

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
# Real-world files with distinct SOP Instance UIDs, one per interesting transfer syntax.
CORPUS = [
    "CT_small.dcm",  # explicit VR little endian
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "SC_rgb_rle.dcm",  # RLE lossless
    "image_dfl.dcm",  # deflated explicit VR little endian
]
PROJECT_AET = "CHESTPACS"


@pytest.fixture(autouse=True)
def needs_dcmtk() -> None:
    require(missing_dcmtk("storescu", "echoscu"), "the C-STORE listener tests")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def routed_project(project: Project) -> Project:
    project.dicom_ae_title = PROJECT_AET
    project.save(update_fields=["dicom_ae_title"])
    return project


@pytest.fixture
def start_scp() -> Iterator[Callable[..., int]]:
    """start_scp(**config) -> port of an in-process listener on 127.0.0.1."""
    servers: list[ThreadedAssociationServer] = []

    def start(**config: object) -> int:
        port = _free_port()
        server = start_listener(ListenerConfig(host="127.0.0.1", port=port, **config))  # type: ignore[arg-type]
        servers.append(server)
        return port

    yield start
    for server in servers:
        server.shutdown()
        for assoc in server.ae.active_associations:
            assoc.abort()


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one of dcmtk's tools (by absolute path, see tests.support.tools)."""
    return subprocess.run(
        (dcmtk(tool), *args), capture_output=True, text=True, timeout=120, check=False
    )


UNCOMPRESSED = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]


def _storescu(port: int, called: str, files: list[Path]) -> subprocess.CompletedProcess[str]:
    """storescu in one association; a configuration profile proposes each file's own transfer
    syntax, so compressed files travel compressed (storescu's -x options allow only one)."""
    headers = [pydicom.dcmread(path, stop_before_pixels=True) for path in files]
    syntaxes = sorted({str(ds.file_meta.TransferSyntaxUID) for ds in headers} - set(UNCOMPRESSED))
    classes = sorted({str(ds.SOPClassUID) for ds in headers})
    groups = {"Uncompressed": UNCOMPRESSED, **{f"TS{i}": [uid] for i, uid in enumerate(syntaxes)}}
    lines = ["[[TransferSyntaxes]]"]
    for name, uids in groups.items():
        lines += [f"[{name}]", *(f"TransferSyntax{i} = {uid}" for i, uid in enumerate(uids, 1))]
    lines += ["[[PresentationContexts]]", "[MedLoop]"]
    contexts = [f"{sop}\\{name}" for sop in classes for name in groups]
    lines += [f"PresentationContext{i} = {ctx}" for i, ctx in enumerate(contexts, 1)]
    lines += ["[[Profiles]]", "[MedLoop]", "PresentationContexts = MedLoop"]
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as handle:
        handle.write("\n".join(lines) + "\n")
    try:
        return _run("storescu", "-xf", handle.name, "MedLoop", "-aet", "MODALITY",
                    "-aec", called, "127.0.0.1", str(port), *map(str, files))  # fmt: skip
    finally:
        os.unlink(handle.name)


def _finished_batches(project: Project) -> list[IngestBatch]:
    return list(
        IngestBatch.objects.filter(
            project=project, source="cstore", finished_at__isnull=False
        ).order_by("created_at")
    )


def _synthetic_files(directory: Path) -> list[Path]:
    return [directory / item["file"] for item in synthetic.load_manifest(directory)]


def _corpus_files() -> list[Path]:
    return [Path(get_testdata_file(name)) for name in CORPUS]  # type: ignore[arg-type]


def test_echoscu_is_answered_on_listener_and_project_titles(routed_project, start_scp):
    port = start_scp(ae_title="MEDLOOP")
    for called in ("MEDLOOP", PROJECT_AET):
        result = _run("echoscu", "-aec", called, "127.0.0.1", str(port))
        assert result.returncode == 0, result.stderr


def test_storescu_files_land_deidentified_and_a_resend_stores_nothing_new(
    routed_project, start_scp, synthetic_dir
):
    port = start_scp(ae_title="MEDLOOP")
    files = _synthetic_files(synthetic_dir) + _corpus_files()
    originals = [pydicom.dcmread(path) for path in files]

    result = _storescu(port, PROJECT_AET, files)
    assert result.returncode == 0, result.stderr

    wait_for(lambda: len(_finished_batches(routed_project)) == 1, timeout=30, what="the batch")
    [batch] = _finished_batches(routed_project)
    assert (batch.stored, batch.duplicates, batch.refused) == (len(files), 0, 0), batch.items
    instances = Instance.objects.filter(series__study__project=routed_project)
    assert instances.count() == len(files)
    studies = {str(ds.StudyInstanceUID) for ds in originals}
    assert Case.objects.filter(project=routed_project).count() == len(studies)
    assert {item["case_id"] for item in batch.items} == set(
        Case.objects.filter(project=routed_project).values_list("pk", flat=True)
    )

    names = {str(ds.PatientName) for ds in originals if str(ds.get("PatientName", ""))}
    patient_ids = {str(ds.PatientID) for ds in originals if str(ds.get("PatientID", ""))}
    original_sops = {str(ds.SOPInstanceUID) for ds in originals}
    for instance in instances:
        data = storage_path(instance.file_path).read_bytes()
        stored = pydicom.dcmread(storage_path(instance.file_path))
        assert str(stored.get("PatientName", "")) not in names
        assert instance.sop_instance_uid not in original_sops
        for identifier in names | patient_ids:
            assert identifier.encode() not in data
    compressed = {instance.transfer_syntax_uid for instance in instances} & {
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.5",
    }
    assert len(compressed) == 3  # JPEG, JPEG-LS and RLE arrived as sent

    again = _storescu(port, PROJECT_AET, files)
    assert again.returncode == 0, again.stderr
    wait_for(lambda: len(_finished_batches(routed_project)) == 2, timeout=30, what="batch 2")
    second = _finished_batches(routed_project)[1]
    assert (second.stored, second.duplicates, second.refused) == (0, len(files), 0)
    assert {item["status"] for item in second.items} == {"duplicate"}
    assert Instance.objects.filter(series__study__project=routed_project).count() == len(files)
    assert "Failed" not in again.stderr + again.stdout


def _send(port: int, called: str, payload: Dataset | Path) -> Dataset:
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(CT_IMAGE_STORAGE, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    assert assoc.is_established
    try:
        status = assoc.send_c_store(payload)
    finally:
        assoc.release()
    return status


def _ct_without_pixels() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Garbage^Gus"
    ds.Modality = "CT"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _garbage_file(tmp_path: Path) -> Path:
    """A valid file meta header (so the sender can propose it) followed by noise."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    header = Dataset()
    header.file_meta = meta
    path = tmp_path / "garbage.dcm"
    header.save_as(path, enforce_file_format=True)
    with path.open("ab") as handle:
        handle.write(b"\x08\x00\x16\x00UI\xff\xff" + os.urandom(4096))
    return path


def test_bad_datasets_are_refused_with_a_failure_status_and_nothing_is_stored(
    routed_project, start_scp, tmp_path, monkeypatch
):
    port = start_scp(ae_title="MEDLOOP")
    # Send files as raw bytes after their meta header, so noise reaches the listener as is.
    monkeypatch.setattr(pynetdicom_config, "STORE_SEND_CHUNKED_DATASET", True)

    no_pixels = _send(port, PROJECT_AET, _ct_without_pixels())
    assert no_pixels.Status == 0xC000
    assert "pixel" in str(no_pixels.ErrorComment)

    garbage = _send(port, PROJECT_AET, _garbage_file(tmp_path))
    assert garbage.Status == 0xC000

    small = start_scp(ae_title="MEDLOOP", max_instance_bytes=2000)
    too_large = _send(small, PROJECT_AET, Path(get_testdata_file("CT_small.dcm")))  # type: ignore[arg-type]
    assert too_large.Status == 0xA700

    assert not Instance.objects.filter(series__study__project=routed_project).exists()
    wait_for(lambda: len(_finished_batches(routed_project)) == 3, timeout=30, what="batches")
    assert all(b.refused == 1 and b.stored == 0 for b in _finished_batches(routed_project))
    reasons = [b.items[0]["reason"] for b in _finished_batches(routed_project)]
    assert "no pixel data" in reasons[0]
    assert "over the limit" in reasons[2]


def test_unknown_called_ae_title_is_rejected_at_association(
    routed_project, start_scp, synthetic_dir
):
    port = start_scp(ae_title="MEDLOOP")
    files = _synthetic_files(synthetic_dir)[:2]

    result = _storescu(port, "NOBODY", files)
    assert result.returncode != 0
    assert "Called AE Title Not Recognized" in result.stderr + result.stdout

    echo = _run("echoscu", "-aec", "NOBODY", "127.0.0.1", str(port))
    assert echo.returncode != 0
    assert not Instance.objects.exists()
    assert not IngestBatch.objects.exists()


def test_listener_title_without_a_default_project_refuses_images(routed_project, start_scp):
    port = start_scp(ae_title="MEDLOOP")  # no --project: MEDLOOP itself routes nowhere
    status = _send(port, "MEDLOOP", Path(get_testdata_file("CT_small.dcm")))  # type: ignore[arg-type]
    assert status.Status == 0xC001
    assert not Instance.objects.exists()


def test_manage_py_dicom_listener_receives_storescu_and_stops_on_ctrl_c(
    project, synthetic_dir, tmp_path
):
    port = _free_port()
    log = tmp_path / "listener.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "medloop.settings.local",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": current_database_url(),
        "MEDLOOP_VAR_DIR": str(tmp_path / "var"),
        "MEDLOOP_STORAGE_DIR": str(settings.STORAGE_DIR),
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "dicom_listener", "--ae-title", "MEDLOOP",
         "--port", str(port), "--project", str(project.pk)],
        cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(
            lambda: b"Listening as MEDLOOP" in log.read_bytes() or process.poll() is not None,
            timeout=60,
            what="the listener to start",
        )
        assert process.poll() is None, log.read_text()
        files = _synthetic_files(synthetic_dir)[:3]
        result = _storescu(port, "MEDLOOP", files)
        assert result.returncode == 0, result.stderr
        wait_for(
            lambda: Instance.objects.filter(series__study__project=project).count() == 3,
            timeout=30,
            what="three instances",
        )
        assert Case.objects.filter(project=project).count() == 3
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    output = log.read_text()
    assert code == 0, output
    assert output.count("stored instance") == 3, output
    assert "Listener stopped." in output
    [batch] = IngestBatch.objects.filter(project=project, source="cstore")
    assert batch.stored == 3 and batch.finished_at is not None
