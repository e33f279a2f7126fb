"""Images that arrive over the network: a batch report for each C-STORE association and each
DICOMweb pull, and the pull itself (QIDO-RS search, WADO-RS retrieve, ingest one by one).

Every instance goes through ``ingest.ingest_dicom_bytes`` (de-identified, stored atomically,
idempotent); one bad instance is recorded in the batch and the rest goes on. Batch items never
carry original UIDs or names: only positions, the sending AE and the stored (pseudonymous) ids.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from annotations.dicom.dicomweb import PacsClient, RemoteInstance
from annotations.models import Case, IngestBatch, Instance, Project
from annotations.services import ethics, ingest, loop_signals
from annotations.services.errors import DomainError, InvalidInput

logger = logging.getLogger(__name__)

DEFAULT_PULL_LIMIT = 100  # studies per pull


@dataclass(frozen=True)
class Outcome:
    """What became of one instance: ``status`` is "stored", "duplicate" or "refused"."""

    status: str
    reason: str = ""
    error: DomainError | None = None
    instance: Instance | None = None


class BatchReport:
    """Builds one IngestBatch item by item; the row is created on the first item (or by
    ``open()``) and saved after each, so a crash leaves an accurate partial report."""

    def __init__(self, *, project: Project, source: str, actor: User | None = None) -> None:
        self.project = project
        self.source = source
        self.actor = actor
        self.batch: IngestBatch | None = None

    def open(self) -> IngestBatch:
        if self.batch is None:
            self.batch = IngestBatch.objects.create(
                project=self.project, source=self.source, created_by=self.actor
            )
        return self.batch

    def ingest(self, *, data: bytes, source_name: str) -> Outcome:
        """Ingest one Part 10 byte stream and record what happened to it."""
        try:
            result = ingest.ingest_dicom_bytes(
                project=self.project, data=data, source_name=source_name, actor=self.actor
            )
        except DomainError as exc:
            return self.refuse(source_name=source_name, reason=exc.message, error=exc)
        status = "stored" if result.created else "duplicate"
        outcome = Outcome(status=status, instance=result.instance)
        self._record(source_name, outcome)
        return outcome

    def refuse(self, *, source_name: str, reason: str, error: DomainError | None = None) -> Outcome:
        """Record an instance (or a whole study) that was not stored, and why."""
        outcome = Outcome(status="refused", reason=reason, error=error)
        self._record(source_name, outcome)
        return outcome

    def _record(self, source_name: str, outcome: Outcome) -> None:
        batch = self.open()
        instance = outcome.instance
        quarantined = bool(instance is not None and instance.quarantined)
        case_id = None
        if instance is not None:
            case_id = (
                Case.objects.filter(study__series__instances=instance)
                .values_list("pk", flat=True)
                .first()
            )
        batch.items.append(
            {
                "source": source_name,
                "status": outcome.status,
                "reason": outcome.reason,
                "instance_id": instance.pk if instance is not None else None,
                "case_id": case_id,
                "quarantined": quarantined,
            }
        )
        if outcome.status == "stored":
            batch.stored += 1
            batch.quarantined += int(quarantined)
        elif outcome.status == "duplicate":
            batch.duplicates += 1
        else:
            batch.refused += 1
        batch.save(update_fields=["items", "stored", "duplicates", "refused", "quarantined"])

    def finish(self) -> IngestBatch | None:
        """Mark the batch finished (no-op when nothing was recorded)."""
        if self.batch is not None and self.batch.finished_at is None:
            self.batch.finished_at = timezone.now()
            self.batch.save(update_fields=["finished_at"])
            if self.batch.stored:
                loop_signals.reorder_queue(self.batch.project_id)
        return self.batch


def batch_summary(batch: IngestBatch) -> dict[str, object]:
    """The JSON a command or API caller sees for one batch."""
    return {
        "batch_id": batch.pk,
        "project_id": batch.project_id,
        "source": batch.source,
        "stored": batch.stored,
        "duplicates": batch.duplicates,
        "refused": batch.refused,
        "quarantined": batch.quarantined,
        "finished_at": batch.finished_at.isoformat() if batch.finished_at else None,
        "items": batch.items,
    }


def pull_studies(
    *,
    project: Project,
    study_instance_uids: Sequence[str] | None = None,
    query: Mapping[str, str] | None = None,
    actor: User | None = None,
    limit: int = DEFAULT_PULL_LIMIT,
    client: PacsClient | None = None,
) -> IngestBatch:
    """Pull studies from the project's DICOMweb PACS into the project.

    Give either ``study_instance_uids`` or a QIDO-RS ``query`` (e.g. {"PatientID": "X",
    "StudyDate": "20240101-"}); at most ``limit`` studies are pulled. All instance lists are
    fetched first, so a PACS that cannot be reached raises ``PacsUnavailable`` (naming the
    URL and HTTP status) before anything is written. Then each instance is retrieved and
    ingested; per-instance failures are recorded as refused items and the rest goes on.
    Returns the finished IngestBatch (source "dicomweb")."""
    ethics.require_current_approval(project=project, actor=actor, activity="ingest")
    if not study_instance_uids and not query:
        raise InvalidInput("Give study_instance_uids or a query to pull.")
    if limit < 1:
        raise InvalidInput("limit must be at least 1.")
    if client is None:
        if not project.dicomweb_url:
            raise InvalidInput(f"Project {project.pk} has no DICOMweb URL configured.")
        client = PacsClient(
            project.dicomweb_url, allowed_networks=settings.MEDLOOP_PACS_ALLOWED_NETWORKS
        )

    if study_instance_uids:
        uids = list(dict.fromkeys(str(uid).strip() for uid in study_instance_uids if uid))
        uids = uids[:limit]
    else:
        uids = client.find_studies(dict(query or {}), limit=limit)
    plan: list[tuple[str, list[RemoteInstance]]] = []
    for position, uid in enumerate(uids, start=1):
        plan.append((f"study {position} of {len(uids)}", client.list_instances(uid)))

    report = BatchReport(project=project, source=IngestBatch.Source.DICOMWEB, actor=actor)
    report.open()
    for study_label, instances in plan:
        if not instances:
            report.refuse(source_name=study_label, reason="no instances found on the PACS")
            continue
        for number, remote in enumerate(instances, start=1):
            name = f"{study_label}, instance {number} of {len(instances)}"
            try:
                data = client.retrieve_part10(remote)
            except DomainError as exc:
                report.refuse(source_name=name, reason=exc.message, error=exc)
                continue
            outcome = report.ingest(data=data, source_name=name)
            if outcome.status == "refused":
                logger.warning("DICOMweb pull into project %s: %s", project.pk, outcome.reason)
    batch = report.finish()
    assert batch is not None  # opened above
    logger.info(
        "DICOMweb pull into project %s from %s: %s stored, %s duplicates, %s refused",
        project.pk,
        client.url,
        batch.stored,
        batch.duplicates,
        batch.refused,
    )
    return batch
