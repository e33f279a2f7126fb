"""Mutated DICOM (tests.support.mutations: truncated at several offsets, corrupt and odd
lengths, wrong VRs, no DICM, no or short pixel data, bad transfer syntaxes, deflated garbage,
empty, PNG and text files) through every ingest path: the service, the upload API (files and a
zip), `manage.py import_dicom`, the C-STORE listener and the DICOMweb pull. Each file is
refused with a reason naming the fault, nothing crashes, nothing already stored changes
(counts and file checksums), and each path stores the valid file sent after the bad ones."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pydicom
import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pynetdicom import AE
from pynetdicom import _config as pynetdicom_config
from pynetdicom.transport import ThreadedAssociationServer

from annotations.dicom import pixels
from annotations.dicom.scp import ListenerConfig, start_listener
from annotations.models import Case, IngestBatch, Instance, Patient, Project, Series, Study
from annotations.services import batches, ingest, pacs
from annotations.services.errors import InvalidInput
from annotations.services.source_names import source_key
from tests.conftest import IN_CI, ingest_synthetic
from tests.integration.conftest import wait_for
from tests.support import mutations as mut
from tests.support.orthanc import OrthancPeer, missing_tools, orthanc_on_loopback

MUTATIONS = {m.name: m for m in mut.mutations()}


def _snapshot() -> dict[str, Any]:
    """Row counts and the checksum of every stored file, as found on disk."""
    return {
        "counts": {
            model.__name__: model.objects.count()
            for model in (Patient, Study, Series, Instance, Case)
        },
        "files": {
            i.file_path: hashlib.sha256(ingest.storage_path(i.file_path).read_bytes()).hexdigest()
            for i in Instance.objects.all()
        },
    }


def _unchanged_except_new(before: dict[str, Any], after: dict[str, Any], new: int) -> None:
    """Everything stored before is still there, byte for byte; ``new`` instances were added."""
    assert {k: v for k, v in after["files"].items() if k in before["files"]} == before["files"]
    assert after["counts"]["Instance"] == before["counts"]["Instance"] + new
    if new == 0:
        assert after == before


@pytest.fixture
def stored(project: Project, synthetic_dir: Path) -> dict[str, Any]:
    """Three instances already in the project; returns the snapshot taken after them."""
    ingest_synthetic(project, synthetic_dir, count=3)
    return _snapshot()


def _assert_refused_with_reason(name: str, line: dict[str, Any]) -> None:
    expected = MUTATIONS[name].reason
    assert line["status"] == "refused", (name, line)
    assert expected.lower() in line["reason"].lower(), (name, line["reason"])


# --- the service ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(MUTATIONS))
def test_service_refuses_each_mutated_file_with_a_reason_naming_the_fault(
    project: Project, stored: dict[str, Any], name: str
) -> None:
    mutation = MUTATIONS[name]
    with pytest.raises(InvalidInput) as refused:
        ingest.ingest_dicom_bytes(project=project, data=mutation.data, source_name=name)
    assert refused.value.message.startswith(f"{name}: ")
    assert mutation.reason.lower() in refused.value.message.lower()
    _unchanged_except_new(stored, _snapshot(), new=0)


_CT = mut.corpus_bytes(mut.CT)
_DATASET_START = mut.meta_end(_CT)


@st.composite
def damaged_ct(draw: st.DrawFn) -> bytes:
    """CT_small with random damage: cut short, bytes overwritten (often in element headers,
    where lengths and VRs live), or a chunk of the data set deleted."""
    data = bytearray(_CT)
    kind = draw(st.sampled_from(["truncate", "overwrite", "overwrite-header", "delete"]))
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if kind == "delete":
        start = draw(st.integers(_DATASET_START, len(data) - 2))
        length = draw(st.integers(1, min(512, len(data) - start - 1)))
        return bytes(data[:start] + data[start + length :])
    # Headers of the first elements after the meta group: tags, VRs and lengths.
    high = _DATASET_START + 600 if kind == "overwrite-header" else len(data) - 1
    for _ in range(draw(st.integers(1, 6))):
        offset = draw(st.integers(0 if kind == "overwrite" else _DATASET_START, high))
        data[offset] = draw(st.integers(0, 255))
    return bytes(data)


@pytest.mark.django_db
@settings(
    max_examples=300,
    derandomize=True,  # the same files every run: a failure reproduces
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=damaged_ct())
def test_randomly_damaged_files_are_stored_intact_or_refused_never_a_crash(
    project: Project, stored: dict[str, Any], data: bytes
) -> None:
    """Through a batch, as uploads and imports go: its report line is saved to the database."""
    before = _snapshot()
    batch = batches.ingest_sources(
        project=project,
        sources=[batches.SourceFile("damaged", lambda: data)],
        source=IngestBatch.Source.UPLOAD,
    )
    [line] = IngestBatch.objects.get(pk=batch.pk).items  # any exception fails the test
    if line["status"] == "refused":
        # The reason names the file by its label (position and keyed hash), never its name.
        label = line["source"]
        assert line["reason"].startswith(f"{label}: ") and len(line["reason"]) > len(label) + 2
        assert "damaged" not in line["reason"], line
        _unchanged_except_new(before, _snapshot(), new=0)
        return
    # Damage that leaves a valid file (a changed pixel, a changed name) may be stored; what is
    # stored reads back and decodes.
    _unchanged_except_new(before, _snapshot(), new=int(line["status"] == "stored"))
    instance = Instance.objects.get(pk=line["instance_id"])
    pixels.decode_frame(pydicom.dcmread(ingest.storage_path(instance.file_path)), 0)


# --- the upload API ---------------------------------------------------------------------------


def _upload(client: Any, project: Project, files: list[SimpleUploadedFile]) -> dict[str, Any]:
    response = client.post(
        f"/api/projects/{project.pk}/uploads/", {"files": files}, format="multipart"
    )
    assert response.status_code == 201, response.content
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.django_db
def test_upload_refuses_each_mutated_file_and_stores_the_valid_one_after_them(
    project: Project, stored: dict[str, Any], member: Callable[..., Any], api_for: Any
) -> None:
    client = api_for(member("lena", "lead"))
    valid_name, valid_data = mut.valid_file()
    files = [SimpleUploadedFile(m.name, m.data) for m in MUTATIONS.values()]
    report = _upload(client, project, [*files, SimpleUploadedFile(valid_name, valid_data)])

    # Lines carry no file name, only its keyed hash (issue 15, finding 4).
    lines = {line["source_key"]: line for line in report["items"]}
    assert set(lines) == {source_key(project, n) for n in [*MUTATIONS, valid_name]}
    for name in MUTATIONS:
        _assert_refused_with_reason(name, lines[source_key(project, name)])
    assert lines[source_key(project, valid_name)]["status"] == "stored"
    assert (report["stored"], report["refused"]) == (1, len(MUTATIONS))
    _unchanged_except_new(stored, _snapshot(), new=1)


@pytest.mark.django_db
def test_zip_of_mutated_files_is_reported_member_by_member(
    project: Project, stored: dict[str, Any], member: Callable[..., Any], api_for: Any
) -> None:
    import zipfile

    client = api_for(member("lena", "lead"))
    valid_name, valid_data = mut.valid_file()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for m in MUTATIONS.values():
            archive.writestr(f"bad/{m.name}", m.data)
        archive.writestr(f"good/{valid_name}", valid_data)
    report = _upload(client, project, [SimpleUploadedFile("batch.zip", buffer.getvalue())])

    lines = {line["source_key"]: line for line in report["items"]}
    for name in MUTATIONS:
        line = lines[source_key(project, f"batch.zip/bad/{name}")]
        assert line["status"] == "refused"
        assert MUTATIONS[name].reason.lower() in line["reason"].lower(), line
    assert lines[source_key(project, f"batch.zip/good/{valid_name}")]["status"] == "stored"
    _unchanged_except_new(stored, _snapshot(), new=1)


# --- manage.py import_dicom -------------------------------------------------------------------


@pytest.mark.django_db
def test_import_command_refuses_each_mutated_file_and_imports_the_valid_one(
    project: Project, stored: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    for m in MUTATIONS.values():
        (folder / m.name).write_bytes(m.data)
    valid_name, valid_data = mut.valid_file()
    (folder / f"zz-{valid_name}").write_bytes(valid_data)  # sorted last: after the bad ones
    out = io.StringIO()
    call_command("import_dicom", str(folder), "--project", str(project.pk), "--quiet", stdout=out)

    batch = IngestBatch.objects.get(project=project, source="command")
    lines = {line["source_key"]: line for line in batch.items}
    for name in MUTATIONS:
        _assert_refused_with_reason(name, lines[source_key(project, name)])
    assert lines[source_key(project, f"zz-{valid_name}")]["status"] == "stored"
    summary = out.getvalue()
    assert f"1 stored, 0 already stored, {len(MUTATIONS)} refused" in summary
    assert summary.count("refused  ") == len(MUTATIONS)
    _unchanged_except_new(stored, _snapshot(), new=1)


# --- the C-STORE listener ---------------------------------------------------------------------

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"  # image_dfl.dcm, the deflated source
# Damage before the data set: a DICOM sender cannot propose these files at all (no meta header
# to say what they are), so no C-STORE can carry them. Their data set is what a sender could
# send instead: PNG, text and nothing, behind a valid meta header (BODIES below).
NOT_SENDABLE = {
    "zero-byte.dcm",
    "image.png",
    "notes.txt",
    "cut-in-preamble.dcm",
    "cut-after-dicm.dcm",
    "cut-in-meta.dcm",
    "dicm-corrupted.dcm",
}
# Transfer syntaxes the listener does not accept: refused at association (the presentation
# context is rejected), see test_unknown_transfer_syntax_is_refused_at_association.
REJECTED_SYNTAX = {"transfer-syntax-unknown.dcm", "transfer-syntax-not-a-uid.dcm"}
BODIES = {  # name -> (data set bytes behind CT_small's meta header, what the refusal says)
    "png-as-data-set": (MUTATIONS["image.png"].data, "corrupt length"),
    "text-as-data-set": (MUTATIONS["notes.txt"].data, "truncated"),
    "empty-data-set": (b"", "truncated"),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def listener(project: Project) -> Iterator[int]:
    """An in-process C-STORE listener on 127.0.0.1 whose own title routes to ``project``."""
    port = _free_port()
    server: ThreadedAssociationServer = start_listener(
        ListenerConfig(host="127.0.0.1", port=port, default_project_id=project.pk)
    )
    yield port
    server.shutdown()
    for assoc in server.ae.active_associations:
        assoc.abort()


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _sender(*syntaxes: str) -> AE:
    ae = AE(ae_title="FUZZSCU")
    for sop_class in (CT_IMAGE_STORAGE, MR_IMAGE_STORAGE, SECONDARY_CAPTURE):
        for syntax in syntaxes:
            ae.add_requested_context(sop_class, syntax)
    return ae


def _cstore_batches(project: Project) -> list[IngestBatch]:
    return list(
        IngestBatch.objects.filter(
            project=project, source="cstore", finished_at__isnull=False
        ).order_by("created_at")
    )


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_listener_refuses_each_mutated_data_set_and_stores_the_valid_one_after_them(
    project: Project,
    stored: dict[str, Any],
    listener: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Files are sent as their raw bytes after the meta header: the damage reaches the listener.
    monkeypatch.setattr(pynetdicom_config, "STORE_SEND_CHUNKED_DATASET", True)
    sendable = [m for m in MUTATIONS.values() if m.name not in NOT_SENDABLE | REJECTED_SYNTAX]
    expected = [(m.name, m.reason) for m in sendable]
    paths = [_file(tmp_path, m.name, m.data) for m in sendable]
    for name, (body, reason) in BODIES.items():
        paths.append(
            _file(tmp_path, name, mut.with_meta_of(MUTATIONS["cut-after-meta.dcm"].data, body))
        )
        expected.append((name, reason))
    valid_name, valid_data = mut.valid_file()
    paths.append(_file(tmp_path, valid_name, valid_data))

    ae = _sender(
        pydicom.uid.ExplicitVRLittleEndian,
        pydicom.uid.DeflatedExplicitVRLittleEndian,
        pydicom.uid.JPEGBaseline8Bit,
    )
    assoc = ae.associate("127.0.0.1", listener, ae_title="MEDLOOP")
    assert assoc.is_established
    try:
        statuses = [assoc.send_c_store(path) for path in paths]
    finally:
        assoc.release()

    for (name, _), status in zip(expected, statuses, strict=False):
        assert status.Status == 0xC000, (name, status)
        assert str(status.get("ErrorComment", "")), name
    assert statuses[-1].Status == 0x0000  # the valid file, after all the bad ones
    wait_for(lambda: len(_cstore_batches(project)) == 1, timeout=30, what="the batch")
    [batch] = _cstore_batches(project)
    assert (batch.stored, batch.refused) == (1, len(expected))
    for (name, reason), line in zip(expected, batch.items, strict=False):
        assert line["status"] == "refused", (name, line)
        assert reason.lower() in line["reason"].lower(), (name, line["reason"])
    _unchanged_except_new(stored, _snapshot(), new=1)

    # The listener still serves: a new association is accepted and answers C-ECHO.
    echo = AE(ae_title="FUZZSCU")
    echo.add_requested_context("1.2.840.10008.1.1")
    again = echo.associate("127.0.0.1", listener, ae_title="MEDLOOP")
    assert again.is_established and again.send_c_echo().Status == 0x0000
    again.release()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_unknown_transfer_syntax_is_refused_at_association(
    project: Project, stored: dict[str, Any], listener: int, tmp_path: Path
) -> None:
    ae = _sender("1.2.3.4.5.6.7.8.9", pydicom.uid.ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", listener, ae_title="MEDLOOP")
    assert assoc.is_established
    try:
        rejected = [cx for cx in assoc.rejected_contexts if cx.transfer_syntax]
        assert {str(cx.transfer_syntax[0]) for cx in rejected} == {"1.2.3.4.5.6.7.8.9"}
        # pynetdicom's sender refuses to send without an accepted context.
        with pytest.raises(ValueError, match=r"presentation context|not a transfer syntax"):
            assoc.send_c_store(
                _file(tmp_path, "bad-ts.dcm", MUTATIONS["transfer-syntax-unknown.dcm"].data)
            )
        valid_name, valid_data = mut.valid_file()
        assert assoc.send_c_store(_file(tmp_path, valid_name, valid_data)).Status == 0x0000
    finally:
        assoc.release()
    _unchanged_except_new(stored, _snapshot(), new=1)


# --- the DICOMweb pull ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancPeer]:
    missing = missing_tools()
    if missing:
        if IN_CI:
            pytest.fail(f"Orthanc test peer needs {missing}")
        pytest.skip(f"Orthanc test peer needs {missing}")
    with orthanc_on_loopback(tmp_path_factory.mktemp("orthanc-mutated")) as peer:
        yield peer


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_dicomweb_pull_refuses_what_orthanc_accepts_of_the_mutated_files(
    project: Project, stored: dict[str, Any], orthanc: OrthancPeer
) -> None:
    """Orthanc refuses most broken files itself (they never reach MedLoop); every one it
    keeps is pulled by MedLoop and refused with a reason, and the valid study still lands."""
    accepted: dict[str, str] = {}  # mutation name -> study instance UID on the PACS
    refused_by_pacs = []
    for m in MUTATIONS.values():
        response = requests.post(f"{orthanc.http_url}/instances", data=m.data, timeout=30)
        if response.status_code != 200:
            refused_by_pacs.append(m.name)
            continue
        study = requests.get(
            f"{orthanc.http_url}/studies/{response.json()['ParentStudy']}", timeout=30
        ).json()
        accepted[m.name] = study["MainDicomTags"]["StudyInstanceUID"]
    _, valid_data = mut.valid_file()
    requests.post(f"{orthanc.http_url}/instances", data=valid_data, timeout=30).raise_for_status()
    valid_study = str(pydicom.dcmread(io.BytesIO(valid_data)).StudyInstanceUID)
    print(f"Orthanc refused {sorted(refused_by_pacs)}; accepted {sorted(accepted)}")
    assert "zero-byte.dcm" in refused_by_pacs and "image.png" in refused_by_pacs

    project.dicomweb_url = orthanc.dicomweb_url
    project.save(update_fields=["dicomweb_url"])
    batch = pacs.pull_studies(
        project=project, study_instance_uids=[*accepted.values(), valid_study]
    )
    assert batch.stored == 1, batch.items
    assert batch.refused == len(accepted), batch.items
    for name, line in zip(accepted, batch.items, strict=False):
        _assert_refused_with_reason(name, line)
    assert batch.items[-1]["status"] == "stored"
    _unchanged_except_new(stored, _snapshot(), new=1)


# What the refusal says when the DICOMweb client's own parse of the part fails first (it reads
# strictly: no DICM prefix is an error there).
PARSED_BY_THE_CLIENT = {
    "zero-byte.dcm": "DICM",
    "image.png": "DICM",
    "notes.txt": "DICM",
    "cut-in-preamble.dcm": "DICM",
    "dicm-corrupted.dcm": "DICM",
    "transfer-syntax-jpeg-on-native.dcm": "encapsulated",
}


class _RawDicomWeb(BaseHTTPRequestHandler):
    """A DICOMweb origin server that answers with the stored bytes exactly as they are (a PACS
    less strict than Orthanc): QIDO-RS lists one instance per study, WADO-RS returns it."""

    files: ClassVar[dict[str, bytes]] = {}  # study UID -> Part 10 bytes

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")  # dicom-web/studies/S[/series/E/instances/I]
        study = parts[2] if len(parts) > 2 else ""
        if study not in self.files:
            self.send_error(404)
        elif parts[-1] == "instances":  # QIDO-RS: the study's one instance (one page)
            offset = int(parse_qs(url.query).get("offset", ["0"])[0])
            items = (
                []
                if offset
                else [
                    {
                        "0020000D": {"vr": "UI", "Value": [study]},
                        "0020000E": {"vr": "UI", "Value": [f"{study}.1"]},
                        "00080018": {"vr": "UI", "Value": [f"{study}.1.1"]},
                        "00080016": {"vr": "UI", "Value": [CT_IMAGE_STORAGE]},
                    }
                ]
            )
            self._answer("application/dicom+json", json.dumps(items).encode())
        else:  # WADO-RS: the instance, in a multipart/related body
            body = (
                b"--medloop\r\nContent-Type: application/dicom\r\n\r\n"
                + self.files[study]
                + b"\r\n--medloop--\r\n"
            )
            kind = 'multipart/related; type="application/dicom"; boundary=medloop'
            self._answer(kind, body)

    def _answer(self, content_type: str, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def raw_dicomweb() -> Iterator[tuple[str, dict[str, bytes]]]:
    """(DICOMweb URL, study UID -> bytes to serve) of a raw origin server on 127.0.0.1."""
    files: dict[str, bytes] = {}
    handler = type("Handler", (_RawDicomWeb,), {"files": files})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/dicom-web", files
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.mark.django_db
def test_dicomweb_pull_refuses_mutated_files_a_pacs_serves_byte_for_byte(
    project: Project, stored: dict[str, Any], raw_dicomweb: tuple[str, dict[str, bytes]]
) -> None:
    """Every mutated file, as a lax PACS would serve it: no crash, each refused with a
    reason, the valid study after them stored."""
    url, files = raw_dicomweb
    studies = {f"1.2.826.0.1.3680043.9.{index}": m for index, m in enumerate(MUTATIONS.values())}
    files.update({uid: m.data for uid, m in studies.items()})
    files["1.2.826.0.1.3680043.9.999"] = mut.valid_file()[1]
    project.dicomweb_url = url
    project.save(update_fields=["dicomweb_url"])

    batch = pacs.pull_studies(project=project, study_instance_uids=list(files))

    assert (batch.stored, batch.refused) == (1, len(MUTATIONS)), batch.items
    for m, line in zip(studies.values(), batch.items, strict=False):
        assert line["status"] == "refused", (m.name, line)
        expected = PARSED_BY_THE_CLIENT.get(m.name, m.reason)
        assert expected.lower() in line["reason"].lower(), (m.name, line["reason"])
    assert batch.items[-1]["status"] == "stored"
    _unchanged_except_new(stored, _snapshot(), new=1)
