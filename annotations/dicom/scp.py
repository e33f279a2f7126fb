"""The DICOM C-STORE receiver: a pynetdicom Storage SCP that files incoming images into projects.

Routing is by the called AE title: a project whose ``dicom_ae_title`` equals it receives the
images; the listener's own AE title routes to the default project (if one is given). Any other
called AE title is rejected at association time (A-ASSOCIATE-RJ, "called AE title not
recognised"), so nothing is received for nobody. A project may also list the calling AE titles
(the senders) it accepts (``Project.dicom_calling_ae_titles``; empty: any): another sender is
rejected with "calling AE title not recognised", and the refusal is logged with its address.
C-ECHO is answered on every accepted association.

Each received dataset is encoded as a Part 10 byte stream in memory (``encoded_dataset()``, the
original is never written to disk) and goes through ``ingest_dicom_bytes``. Statuses: 0x0000 for
stored and duplicate instances (re-sending is harmless), 0xA700 for an instance over the size
limit, 0xC000 for one that cannot be ingested (not DICOM, no pixels, ...), 0xC001 when no
project receives the called AE title, 0xC211 for an unexpected failure. The refusal reason is
logged, sent back as the Error Comment, and recorded in the association's IngestBatch.

pynetdicom runs handlers in its own threads; Django database connections are per thread, so
every handler releases stale connections before and after its work, and the connection of an
association's thread is closed when the association ends."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from pydicom import uid as uids
from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom import _config as pynetdicom_config
from pynetdicom.association import Association
from pynetdicom.events import Event
from pynetdicom.pdu_primitives import A_ASSOCIATE
from pynetdicom.transport import ThreadedAssociationServer

from annotations.models import IngestBatch, Project
from annotations.services.pacs import BatchReport

logger = logging.getLogger(__name__)

# The transfer syntaxes MedLoop decodes (pydicom with the pylibjpeg plugins). Only these are
# accepted, so a sender holding another encoding transcodes instead of having images refused.
TRANSFER_SYNTAXES = [
    uids.ExplicitVRLittleEndian,
    uids.ImplicitVRLittleEndian,
    uids.DeflatedExplicitVRLittleEndian,
    uids.ExplicitVRBigEndian,
    uids.JPEGBaseline8Bit,
    uids.JPEGExtended12Bit,
    uids.JPEGLossless,
    uids.JPEGLosslessSV1,
    uids.JPEGLSLossless,
    uids.JPEGLSNearLossless,
    uids.JPEG2000Lossless,
    uids.JPEG2000,
    uids.HTJ2KLossless,
    uids.HTJ2KLosslessRPCL,
    uids.HTJ2K,
    uids.RLELossless,
]

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
NO_PROJECT = 0xC001
PROCESSING_FAILURE = 0xC211
VERIFICATION = "1.2.840.10008.1.1"  # Verification SOP Class (C-ECHO)
_ERROR_COMMENT_LENGTH = 64  # (0000,0902) is LO


@dataclass(frozen=True)
class ListenerConfig:
    """How the listener presents itself. ``max_pdu`` 0 means unlimited; ``max_instance_bytes``
    None means settings.MEDLOOP_MAX_INSTANCE_BYTES."""

    ae_title: str = "MEDLOOP"
    host: str = "127.0.0.1"
    port: int = 11112
    default_project_id: int | None = None
    max_pdu: int = 16382
    max_instance_bytes: int | None = None
    max_associations: int = 10


@dataclass
class _Session:
    """One accepted association: where its images go and what became of them."""

    project: Project | None
    called_ae_title: str
    calling_ae_title: str
    report: BatchReport | None = None
    received: int = 0


def _with_database(handler: Callable[[Event], Any]) -> Callable[[Event], Any]:
    def wrapped(event: Event) -> Any:
        close_old_connections()
        try:
            return handler(event)
        finally:
            close_old_connections()

    wrapped.__name__ = handler.__name__
    return wrapped


def _status(code: int, comment: str = "") -> Dataset:
    status = Dataset()
    status.Status = code
    if comment:
        status.ErrorComment = comment[:_ERROR_COMMENT_LENGTH]
    return status


class StorageSCP:
    """A Storage SCP and Verification SCP for MedLoop; ``start()`` runs it."""

    def __init__(self, config: ListenerConfig) -> None:
        self.config = config
        self._sessions: dict[Association, _Session] = {}
        self._lock = threading.Lock()

    @property
    def max_instance_bytes(self) -> int:
        if self.config.max_instance_bytes is not None:
            return self.config.max_instance_bytes
        return int(getattr(settings, "MEDLOOP_MAX_INSTANCE_BYTES", 256 * 1024 * 1024))

    def build_ae(self) -> AE:
        # Received datasets stay in memory: the chunked mode would write originals to disk.
        pynetdicom_config.STORE_RECV_CHUNKED_DATASET = False
        ae = AE(ae_title=self.config.ae_title)
        ae.maximum_pdu_size = self.config.max_pdu
        ae.maximum_associations = self.config.max_associations
        # Routing is ours (EVT_REQUESTED): pynetdicom compares the called title with the
        # acceptor title we set there, and rejects a title we did not recognise.
        ae.require_called_aet = True
        for context in AllStoragePresentationContexts:
            if context.abstract_syntax is not None:
                ae.add_supported_context(context.abstract_syntax, TRANSFER_SYNTAXES)
        ae.add_supported_context(VERIFICATION, TRANSFER_SYNTAXES[:4])
        return ae

    def handlers(self) -> list[tuple[Any, Callable[[Event], Any]]]:
        return [
            (evt.EVT_REQUESTED, _with_database(self._on_requested)),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, _with_database(self._on_store)),
            (evt.EVT_RELEASED, self._on_end),
            (evt.EVT_ABORTED, self._on_end),
            (evt.EVT_CONN_CLOSE, self._on_end),
        ]

    def start(self, *, block: bool = False) -> ThreadedAssociationServer | None:
        """Listen on (host, port). Non-blocking: returns the server (``shutdown()`` stops it)."""
        ae = self.build_ae()
        logger.info(
            "DICOM listener %s on %s:%s (default project %s)",
            self.config.ae_title,
            self.config.host,
            self.config.port,
            self.config.default_project_id,
        )
        return ae.start_server(
            (self.config.host, self.config.port),
            block=block,
            evt_handlers=self.handlers(),  # type: ignore[arg-type]
        )

    # -- routing ------------------------------------------------------------------------------
    def project_for_called_aet(self, called: str) -> tuple[bool, Project | None]:
        """(recognised, project) for a called AE title."""
        project = Project.objects.filter(dicom_ae_title=called).first()
        if project is not None:
            return True, project
        if called == self.config.ae_title.strip():
            default = self.config.default_project_id
            return True, (Project.objects.filter(pk=default).first() if default else None)
        return False, None

    def _on_requested(self, event: Event) -> None:
        assoc = event.assoc
        request = assoc.requestor.primitive
        if not isinstance(request, A_ASSOCIATE):
            return
        called = str(request.called_ae_title).strip()
        calling = str(request.calling_ae_title).strip()
        recognised, project = self.project_for_called_aet(called)
        if not recognised:
            logger.warning(
                "Rejecting association from %s (%s): called AE title %r routes to no project",
                calling,
                event.assoc.requestor.address,
                called,
            )
            connection.close()  # no release event follows a rejection
            return  # acceptor title stays ours: pynetdicom rejects with "not recognised"
        allowed = list(project.dicom_calling_ae_titles or []) if project is not None else []
        if allowed and calling not in {str(title).strip() for title in allowed}:
            logger.warning(
                "Rejecting association from %s (%s) to %r: calling AE title not in project "
                "%s's allow-list",
                calling,
                event.assoc.requestor.address,
                called,
                project.pk if project is not None else None,
            )
            # A-ASSOCIATE-RJ: rejected-permanent, service-user, calling AE title not recognised.
            assoc.acse.send_reject(0x01, 0x01, 0x03)
            # As pynetdicom does after its own rejections: waits until the PDU is sent.
            assoc.kill()
            connection.close()  # no release event follows a rejection
            return
        assoc.acceptor.ae_title = called
        with self._lock:
            self._sessions[assoc] = _Session(
                project=project, called_ae_title=called, calling_ae_title=calling
            )

    def _session(self, assoc: Association) -> _Session | None:
        with self._lock:
            return self._sessions.get(assoc)

    # -- services -----------------------------------------------------------------------------
    def _on_echo(self, event: Event) -> int:
        return SUCCESS

    def _on_store(self, event: Event) -> Dataset:
        session = self._session(event.assoc)
        if session is None:  # cannot happen after EVT_REQUESTED accepted it
            return _status(PROCESSING_FAILURE, "association not registered")
        session.received += 1
        name = f"C-STORE {session.received} from {session.calling_ae_title}"
        if session.project is None:
            reason = f"no project receives images sent to AE title {session.called_ae_title}"
            logger.warning("%s refused: %s", name, reason)
            return _status(NO_PROJECT, reason)
        if session.report is None:
            session.report = BatchReport(project=session.project, source=IngestBatch.Source.CSTORE)
        report = session.report
        try:
            data = event.encoded_dataset()
            if len(data) > self.max_instance_bytes:
                reason = f"{name}: {len(data)} bytes is over the limit of {self.max_instance_bytes}"
                report.refuse(source_name=name, reason=reason)
                logger.warning("%s refused: %s", name, reason)
                return _status(OUT_OF_RESOURCES, "instance over the size limit")
            outcome = report.ingest(data=data, source_name=name)
        except Exception:  # the sender gets a failure, the listener keeps serving
            logger.exception("%s into project %s failed", name, session.project.pk)
            try:
                report.refuse(source_name=name, reason="internal error while storing")
            except Exception:
                logger.exception("could not record the failure of %s", name)
            return _status(PROCESSING_FAILURE, "internal error while storing")
        if outcome.status == "refused":
            logger.warning("%s refused: %s", name, outcome.reason)
            code = outcome.error.code if outcome.error is not None else ""
            status = OUT_OF_RESOURCES if code == "too_large" else CANNOT_UNDERSTAND
            return _status(status, outcome.reason)
        instance = outcome.instance
        logger.info(
            "%s into project %s: %s instance %s%s",
            name,
            session.project.pk,
            outcome.status,
            instance.pk if instance is not None else "?",
            " (quarantined)" if instance is not None and instance.quarantined else "",
        )
        return _status(SUCCESS)

    def _on_end(self, event: Event) -> None:
        with self._lock:
            session = self._sessions.pop(event.assoc, None)
        try:
            if session is not None and session.report is not None:
                close_old_connections()
                batch = session.report.finish()
                if batch is not None:
                    logger.info(
                        "Association from %s ended: batch %s, %s stored, %s duplicates, %s refused",
                        session.calling_ae_title,
                        batch.pk,
                        batch.stored,
                        batch.duplicates,
                        batch.refused,
                    )
        except Exception:
            logger.exception("could not finish the batch of an association")
        finally:
            connection.close()


def start_listener(config: ListenerConfig) -> ThreadedAssociationServer:
    """Start the listener in background threads; call ``shutdown()`` on the result to stop."""
    server = StorageSCP(config).start(block=False)
    assert server is not None  # non-blocking start returns the server
    return server
