"""The patient data-use report (issue 17, section 2; right to information), for a data
protection officer: which cases and images of the patient are held, who viewed them and when
(the audit trail), which label snapshots and model versions used them, and whether the patient
withdrew and was purged. Asked by pseudonym or by the source identifier, which is hashed with
the project's key and never stored (the request is audited by pseudonym only)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from django.utils import timezone

from active_learning.models import ModelVersion, RetrainingCycle
from active_learning.services.withdrawals import _snapshot_ids
from annotations.models import Annotation, AuditEvent, Case, Instance, Project
from annotations.services import audit, consent
from annotations.services.errors import DomainError
from annotations.services.ingest import storage_path

# Audit actions that are someone looking at the patient's data.
VIEW_ACTIONS_PREFIXES = ("case.", "instance.", "annotation.", "admin.view", "suggestion.")


class PatientNotFound(DomainError):
    status_code = 404
    code = "not_found"


def report(
    *,
    project: Project,
    pseudonym: str = "",
    identifier: str = "",
    actor: User | AnonymousUser | None = None,
    request: HttpRequest | None = None,
) -> dict[str, Any]:
    """The data-use report of one patient of ``project`` as JSON-ready data."""
    patient = consent.patient_by(project=project, pseudonym=pseudonym, identifier=identifier)
    if patient is None:
        raise PatientNotFound("No patient of this project has that pseudonym or identifier.")
    cases = list(Case.objects.filter(study__patient=patient).select_related("study").order_by("pk"))
    instances = list(
        Instance.objects.filter(series__study__patient=patient)
        .select_related("series__study__case")
        .order_by("pk")
    )
    annotations = list(
        Annotation.objects.filter(case__study__patient=patient)
        .select_related("annotator")
        .order_by("pk")
    )
    # After the purge the rows are gone; their ids stay in the purge's audit event.
    purged = consent.purged_ids(project.pk, patient.pk)
    annotation_ids = {a.pk for a in annotations} | purged["annotations"]
    targets = (
        [("annotations.Case", str(pk)) for pk in {c.pk for c in cases} | purged["cases"]]
        + [
            ("annotations.Instance", str(pk))
            for pk in {i.pk for i in instances} | purged["instances"]
        ]
        + [("annotations.Annotation", str(pk)) for pk in annotation_ids]
    )
    viewers = []
    for object_type in {t for t, _ in targets}:
        ids = [pk for t, pk in targets if t == object_type]
        events = AuditEvent.objects.filter(object_type=object_type, object_id__in=ids).order_by(
            "created_at", "id"
        )
        for event in events:
            if not event.action.startswith(VIEW_ACTIONS_PREFIXES):
                continue
            viewers.append(
                {
                    "user": event.actor_username or None,
                    "action": event.action,
                    "at": event.created_at.isoformat(),
                    "object_type": object_type.split(".")[-1].lower(),
                    "object_id": int(event.object_id),
                    "address": event.ip_address,
                }
            )
    viewers.sort(key=lambda row: (row["at"], row["action"]))
    versions = [
        {
            "model_version": version.number,
            "status": version.status,
            "created_at": version.created_at.isoformat(),
            "labels_used": sorted(_snapshot_ids(version) & annotation_ids),
        }
        for version in ModelVersion.objects.filter(project=project).order_by("number")
        if _snapshot_ids(version) & annotation_ids
    ]
    snapshots = [
        {
            "cycle": cycle.pk,
            "created_at": cycle.created_at.isoformat(),
            "status": cycle.status,
            "labels_used": sorted(
                {int(item[0]) for item in cycle.label_snapshot if item} & annotation_ids
            ),
        }
        for cycle in RetrainingCycle.objects.filter(project=project).order_by("pk")
        if isinstance(cycle.label_snapshot, list)
        and {int(item[0]) for item in cycle.label_snapshot if item} & annotation_ids
    ]
    body = {
        "generated_at": timezone.now().isoformat(),
        "project": {"id": project.pk, "name": project.name},
        "patient": {
            "pseudonym": patient.pseudonym,
            "consent_status": patient.consent_status,
            "consent_date": patient.consent_date.isoformat() if patient.consent_date else None,
            "consent_source": patient.consent_source or None,
            "withdrawn": patient.consent_status == "withdrawn",
            "withdrawn_at": patient.withdrawn_at.isoformat() if patient.withdrawn_at else None,
            "purged": patient.purged_at is not None,
            "purged_at": patient.purged_at.isoformat() if patient.purged_at else None,
        },
        "cases": [
            {
                "case": case.pk,
                "study_date_shifted": case.study.study_date.isoformat()
                if case.study.study_date
                else None,
                "age_band": case.study.age_band,
                "state": case.state,
                "held_out": case.held_out,
                "images": [
                    {
                        "image": instance.pk,
                        "file_held": storage_path(instance.file_path).exists(),
                    }
                    for instance in instances
                    if instance.series.study.case.pk == case.pk
                ],
                "labels": [
                    {
                        "annotation": a.pk,
                        "annotator": a.annotator.get_username(),
                        "status": a.status,
                    }
                    for a in annotations
                    if a.case_id == case.pk
                ],
            }
            for case in cases
        ],
        "deleted_by_purge": {
            "cases": sorted(purged["cases"]),
            "images": sorted(purged["instances"]),
            "labels": sorted(purged["annotations"]),
        },
        "viewed_by": viewers,
        "label_snapshots": snapshots,
        "model_versions": versions,
    }
    audit.record(
        action="patient.data_use_report",
        actor=actor,
        target=patient,
        project_id=project.pk,
        request=request,
        detail={"pseudonym": patient.pseudonym},
    )
    return body
