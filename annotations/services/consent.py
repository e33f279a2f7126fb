"""Patient consent and withdrawal (issue 17, section 2).

Each patient's consent is consented, withdrawn or unknown, with a date and a source (a FHIR
Consent, a CSV import or a lead's entry), audited. A project chooses whether cases of patients
whose consent is unknown may be labelled (``Project.label_unknown_consent``).

A withdrawal takes effect at once, in one transaction: the patient's cases leave every queue
(``servable_cases``), held leases are released, open workspaces get ``ConsentWithdrawn`` (410)
on their next request, exports and every future label snapshot leave the labels out, and the
loop is told (``patient_withdrawn``, a signal the active-learning app receives in the same
transaction to flag the model versions trained on those labels). Files and clinical text are
deleted after ``MEDLOOP_WITHDRAWAL_RETENTION_DAYS`` (0: at the next run) by the beat task
``annotations.purge_withdrawn_patients``; audit events name the patient by pseudonym only.

The purge leaves nothing of the patient but the withdrawal record (the Patient row: pseudonym,
consent, withdrawal and purge dates) and the pseudonymous audit trail. It deletes the stored
images, the cached renderings and thumbnails, the cached slice headers, and the rows of the
patient's studies with all that hangs off them: series, images, cases, clinical text, lab
results, labels and their revisions, boxes, shown and stored suggestions, image features and
embeddings, skips, double reads and test-set draws. Ingest reports keep their counts but lose the
lines of the patient's files. The loop is told first (``patient_purging``) to delete what it
derived on disk (explanation overlays). The ids of what was deleted (plain numbers) stay in the
``patient.purge`` event, so that the data-use report still names who viewed the patient's data
and which snapshots and versions used their labels."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal
from django.http import HttpRequest
from django.utils import timezone

from annotations.dicom.deidentify import pseudonym as keyed_pseudonym
from annotations.models import (
    Annotation,
    AuditEvent,
    Case,
    Consent,
    ConsentSource,
    IngestBatch,
    Instance,
    Patient,
    Project,
    Study,
)
from annotations.services import audit
from annotations.services.errors import DomainError, InvalidInput
from medloop.celery import send_after_commit

logger = logging.getLogger(__name__)

# Sent inside the withdrawal's transaction: patient, case_ids, actor.
patient_withdrawn = Signal()
# Sent inside the purge's transaction, before the rows go: patient, case_ids, instance_ids,
# annotation_ids. Receivers delete what they derived from them.
patient_purging = Signal()


class ConsentWithdrawn(DomainError):
    """The case's patient withdrew consent (HTTP 410): the case has left the queue."""

    status_code = 410
    code = "consent_withdrawn"


def servable() -> Q:
    """Cases whose patient's consent allows them to be handed out and labelled: consented, or
    unknown where the project lets unknown consent be labelled. Never withdrawn."""
    return Q(study__patient__consent_status=Consent.CONSENTED) | Q(
        study__patient__consent_status=Consent.UNKNOWN, project__label_unknown_consent=True
    )


def withdrawn_cases() -> Q:
    return Q(study__patient__consent_status=Consent.WITHDRAWN)


def check_case_open(case: Case) -> None:
    """Raise ConsentWithdrawn when ``case``'s patient withdrew consent."""
    study = case._state.fields_cache.get("study")
    if study is not None and "patient" in study._state.fields_cache:
        # Read with the case in this request (select_related): no second look-up.
        status: str | None = study.patient.consent_status
    else:
        rows = Patient.objects.filter(studies__case=case).values_list("consent_status", flat=True)
        status = next(iter(rows), None)
    if status == Consent.WITHDRAWN:
        raise ConsentWithdrawn(
            f"The patient of case {case.pk} withdrew consent: the case has left every queue and "
            "its labels are no longer used. Nothing more can be saved; ask for the next case.",
            case=case.pk,
        )


def patient_by(*, project: Project, pseudonym: str = "", identifier: str = "") -> Patient | None:
    """The patient named by pseudonym, or by the source identifier (Patient ID as in the DICOM
    header), hashed with the project's key exactly as at ingest and never stored."""
    if identifier:
        pseudonym = keyed_pseudonym(project.pseudonym_secret, "patient", identifier.strip())
    if not pseudonym:
        raise InvalidInput("Name the patient by 'pseudonym' or by 'patient_id'.")
    return Patient.objects.filter(project=project, pseudonym=pseudonym.strip().upper()).first()


@dataclass(frozen=True)
class Withdrawal:
    patient: Patient
    case_ids: list[int]
    leases_released: int


def set_consent(
    *,
    patient: Patient,
    status: str,
    source: str,
    consent_date: date | None = None,
    actor: User | AnonymousUser | None = None,
    request: HttpRequest | None = None,
) -> Withdrawal | None:
    """Record ``patient``'s consent ``status`` (see :class:`Consent`) from ``source`` (see
    :class:`ConsentSource`), audited as ``patient.consent``. A withdrawal goes through
    :func:`withdraw` and is returned; a withdrawn patient stays withdrawn."""
    if status not in Consent.values:
        raise InvalidInput(f"status must be one of {sorted(Consent.values)}, got {status!r}.")
    if source not in ConsentSource.values:
        raise InvalidInput(f"source must be one of {sorted(ConsentSource.values)}.")
    if status == Consent.WITHDRAWN:
        return withdraw(
            patient=patient, source=source, consent_date=consent_date, actor=actor, request=request
        )
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        if locked.consent_status == Consent.WITHDRAWN:
            raise InvalidInput(
                f"Patient {locked.pseudonym} withdrew consent on "
                f"{(locked.consent_date or locked.withdrawn_at)}; a withdrawal is final here."
            )
        Patient.objects.filter(pk=patient.pk).update(
            consent_status=status, consent_date=consent_date, consent_source=source
        )
        audit.record(
            action="patient.consent",
            actor=actor,
            target=patient,
            project_id=patient.project_id,
            request=request,
            detail={
                "pseudonym": patient.pseudonym,
                "status": status,
                "date": consent_date.isoformat() if consent_date else None,
                "source": source,
            },
        )
    patient.refresh_from_db()
    return None


def withdraw(
    *,
    patient: Patient,
    source: str,
    consent_date: date | None = None,
    actor: User | AnonymousUser | None = None,
    request: HttpRequest | None = None,
) -> Withdrawal:
    """Withdraw ``patient``, in one transaction (see the module docstring). Idempotent: a
    patient already withdrawn keeps their first withdrawal."""
    now = timezone.now()
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        cases = Case.objects.filter(study__patient=locked)
        case_ids = list(cases.order_by("pk").values_list("pk", flat=True))
        if locked.consent_status == Consent.WITHDRAWN:
            return Withdrawal(patient=locked, case_ids=case_ids, leases_released=0)
        released = cases.filter(leased_to__isnull=False).update(
            leased_to=None, lease_expires_at=None
        )
        Patient.objects.filter(pk=locked.pk).update(
            consent_status=Consent.WITHDRAWN,
            consent_date=consent_date or now.date(),
            consent_source=source,
            withdrawn_at=now,
        )
        locked.refresh_from_db()
        audit.record(
            action="patient.withdraw",
            actor=actor,
            target=locked,
            project_id=locked.project_id,
            request=request,
            detail={
                "pseudonym": locked.pseudonym,
                "source": source,
                "cases": case_ids,
                "leases_released": released,
            },
        )
        patient_withdrawn.send(sender=Patient, patient=locked, case_ids=case_ids, actor=actor)
        if retention_days() == 0:
            send_after_commit("annotations.purge_withdrawn_patients")
    patient.refresh_from_db()
    return Withdrawal(patient=locked, case_ids=case_ids, leases_released=released)


def retention_days() -> int:
    return int(settings.MEDLOOP_WITHDRAWAL_RETENTION_DAYS)


@dataclass(frozen=True)
class Purged:
    """What a purge deleted: files, and the ids (plain numbers) of the rows."""

    files_deleted: int
    case_ids: list[int]
    instance_ids: list[int]
    annotation_ids: list[int]

    def detail(self) -> dict[str, object]:
        return {
            "files_deleted": self.files_deleted,
            "cases": self.case_ids,
            "instances": self.instance_ids,
            "annotations": self.annotation_ids,
        }


def purge_due(*, now: datetime | None = None) -> list[int]:
    """Delete everything held of each patient withdrawn at least the retention ago and not yet
    purged (see the module docstring); return their ids. Idempotent (a file already gone is no
    error); each purge is audited by pseudonym and the ids of what it deleted."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=retention_days())
    due = Patient.objects.filter(
        consent_status=Consent.WITHDRAWN, withdrawn_at__lte=cutoff, purged_at=None
    ).order_by("pk")
    purged = []
    for patient in due:
        with transaction.atomic():
            locked = Patient.objects.select_for_update().filter(pk=patient.pk, purged_at=None)
            if not locked.exists():
                continue
            done = _purge_patient(patient)
            Patient.objects.filter(pk=patient.pk).update(purged_at=now, sex="")
            audit.record(
                action="patient.purge",
                target=patient,
                project_id=patient.project_id,
                detail={"pseudonym": patient.pseudonym, **done.detail()},
            )
        purged.append(patient.pk)
    return purged


def purged_ids(project_id: int, patient_id: int | None = None) -> dict[str, set[int]]:
    """The ids of the cases, images and labels the purges deleted in the project (of one
    patient when ``patient_id``), read from their ``patient.purge`` audit events."""
    events = AuditEvent.objects.filter(action="patient.purge", project_id=project_id)
    if patient_id is not None:
        events = events.filter(object_type="annotations.Patient", object_id=str(patient_id))
    found: dict[str, set[int]] = {"cases": set(), "instances": set(), "annotations": set()}
    for detail in events.values_list("detail", flat=True):
        for key, ids in found.items():
            ids.update(int(pk) for pk in (detail or {}).get(key, []))
    return found


def _purge_patient(patient: Patient) -> Purged:
    from annotations.series_stacks import CACHE_PREFIX
    from annotations.services.ingest import storage_path

    images = list(
        Instance.objects.filter(series__study__patient=patient)
        .order_by("pk")
        .values_list("pk", "file_path", "sha256")
    )
    case_ids = list(
        Case.objects.filter(study__patient=patient).order_by("pk").values_list("pk", flat=True)
    )
    annotation_ids = list(
        Annotation.objects.filter(case_id__in=case_ids).order_by("pk").values_list("pk", flat=True)
    )
    instance_ids = [pk for pk, _path, _sha in images]
    patient_purging.send(
        sender=Patient,
        patient=patient,
        case_ids=case_ids,
        instance_ids=instance_ids,
        annotation_ids=annotation_ids,
    )
    deleted = 0
    for _pk, path, _sha in images:
        file = storage_path(path)
        if file.exists():
            file.unlink()
            deleted += 1
    if images:
        # Rendered PNGs (views and thumbnails) are cached by a hash of their parameters, not by
        # image: the cache is derived data, emptied whole so that no rendering survives.
        shutil.rmtree(Path(settings.STORAGE_DIR) / "renders", ignore_errors=True)
        cache.delete_many([CACHE_PREFIX + sha for _pk, _path, sha in images])
    _forget_in_ingest_reports(patient.project_id, set(case_ids), set(instance_ids))
    # The studies, and with them series, images, cases and all that hangs off a case.
    Study.objects.filter(patient=patient).delete()
    return Purged(deleted, case_ids, instance_ids, annotation_ids)


def _forget_in_ingest_reports(project_id: int, case_ids: set[int], instance_ids: set[int]) -> None:
    """Ingest reports keep their counts; the lines of the patient's files lose their source
    name, reason and ids."""
    for batch in IngestBatch.objects.filter(project_id=project_id).only("pk", "items"):
        items = batch.items if isinstance(batch.items, list) else []
        changed = False
        for index, item in enumerate(items):
            if isinstance(item, dict) and (
                item.get("case_id") in case_ids or item.get("instance_id") in instance_ids
            ):
                items[index] = {"status": item.get("status", ""), "purged": True}
                changed = True
        if changed:
            IngestBatch.objects.filter(pk=batch.pk).update(items=items)
