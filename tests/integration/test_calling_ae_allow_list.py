"""C-STORE senders per project (issue 15, Low): a project that lists calling AE titles accepts
associations from those senders only; others are rejected at association ("calling AE title
not recognised") and the refusal is logged. An empty list accepts any sender. A real listener
on loopback and pynetdicom as the sender."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.transport import ThreadedAssociationServer

from annotations.dicom.scp import ListenerConfig, start_listener
from annotations.models import IngestBatch, Instance, Project, validate_ae_titles
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
PROJECT_AET = "CHESTPACS"
CT_SMALL = Path(get_testdata_file("CT_small.dcm"))  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def listener_port() -> Iterator[int]:
    port = _free_port()
    server: ThreadedAssociationServer = start_listener(
        ListenerConfig(host="127.0.0.1", port=port, ae_title="MEDLOOP")
    )
    yield port
    server.shutdown()
    for assoc in server.ae.active_associations:
        assoc.abort()


@pytest.fixture
def routed(project: Project) -> Callable[[list[str]], Project]:
    def route(calling_titles: list[str]) -> Project:
        project.dicom_ae_title = PROJECT_AET
        project.dicom_calling_ae_titles = calling_titles
        project.full_clean()
        project.save(update_fields=["dicom_ae_title", "dicom_calling_ae_titles"])
        return project

    return route


def _associate(port: int, calling: str):  # type: ignore[no-untyped-def]
    ae = AE(ae_title=calling)
    ae.add_requested_context(CT_IMAGE_STORAGE, ExplicitVRLittleEndian)
    return ae.associate("127.0.0.1", port, ae_title=PROJECT_AET)


def test_a_sender_missing_from_the_allow_list_is_rejected_and_logged(routed, listener_port, caplog):
    project = routed(["MODALITY1", "CR-ROOM-2"])
    with caplog.at_level(logging.WARNING, logger="annotations.dicom.scp"):
        assoc = _associate(listener_port, "INTRUDER")
        assert assoc.is_rejected and not assoc.is_established
        rejection = assoc.acceptor.primitive
        # Rejected permanent (1), by the service user (1), calling AE title not recognised (3).
        assert (rejection.result, rejection.result_source, rejection.diagnostic) == (1, 1, 3)
    assert any(
        "INTRUDER" in r.getMessage() and "allow-list" in r.getMessage() for r in caplog.records
    )
    assert not Instance.objects.exists() and not IngestBatch.objects.exists()

    allowed = _associate(listener_port, "CR-ROOM-2")
    assert allowed.is_established
    try:
        status = allowed.send_c_store(CT_SMALL)
    finally:
        allowed.release()
    assert status.Status == 0x0000
    assert Instance.objects.filter(series__study__project=project).count() == 1
    wait_for(
        lambda: IngestBatch.objects.filter(finished_at__isnull=False).exists(),
        timeout=30,
        what="the batch of the allowed association",
    )


def test_an_empty_allow_list_accepts_any_sender(routed, listener_port):
    routed([])
    assoc = _associate(listener_port, "ANYONE")
    assert assoc.is_established
    try:
        assert assoc.send_c_store(CT_SMALL).Status == 0x0000
    finally:
        assoc.release()


@pytest.mark.parametrize("bad", ["", "   ", "A" * 17, "BACK\\SLASH", "TAB\tX", 7])
def test_allow_list_entries_must_be_ae_titles(bad):
    with pytest.raises(ValidationError):
        validate_ae_titles([bad])
    with pytest.raises(ValidationError):
        validate_ae_titles("MODALITY1")
    validate_ae_titles(["MODALITY1", "CR ROOM 2"])
