"""The loop's side of a patient's withdrawal of consent (issue 17, section 2): labels of
withdrawn patients are in no future label snapshot, and the model versions trained on them are
flagged "trained on withdrawn data" (computed from their snapshots, so the flag is never stale;
the withdrawal itself records one ``model_version.trained_on_withdrawn_data`` audit event per
version it touched, in its own transaction). Retraining without them is one click: a new
cycle's snapshot leaves them out. After the purge the labels' rows are gone; their ids stay in
the purge's audit event, so the flag stays. The purge also deletes the explanation overlays the
versions drew for the patient's cases, and takes the patient's cases out of the frozen copies
verification keeps (locked test sets, validation reports): erasure wins over regenerating an
old report exactly, and the redacted copies say which cases were taken out."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from active_learning.models import ModelVersion
from active_learning.services import case_inputs
from annotations.models import Annotation, Consent, Patient, Project
from annotations.services import audit, consent


def training_annotations(project: Project, *, validation: bool = False) -> QuerySet[Annotation]:
    """:func:`case_inputs.training_annotations` without the labels of patients who withdrew."""
    return case_inputs.training_annotations(project, validation=validation).exclude(
        case__study__patient__consent_status=Consent.WITHDRAWN
    )


def _snapshot_ids(version: ModelVersion) -> set[int]:
    ids = set()
    for item in version.label_snapshot if isinstance(version.label_snapshot, list) else []:
        if isinstance(item, list | tuple) and item and isinstance(item[0], int):
            ids.add(item[0])
    return ids


def withdrawn_labels_per_version(project: Project) -> dict[int, int]:
    """{model version id: how many of its training labels belong to withdrawn patients}, only
    the versions with at least one (purged labels counted from the purges' audit events)."""
    withdrawn = set(
        Annotation.objects.filter(
            case__project=project, case__study__patient__consent_status=Consent.WITHDRAWN
        ).values_list("pk", flat=True)
    )
    withdrawn |= consent.purged_ids(project.pk)["annotations"]
    if not withdrawn:
        return {}
    counts = {}
    for version in ModelVersion.objects.filter(project=project).only("pk", "label_snapshot"):
        used = len(_snapshot_ids(version) & withdrawn)
        if used:
            counts[version.pk] = used
    return counts


def versions_using(patient: Patient) -> list[ModelVersion]:
    """The model versions whose label snapshot holds a label of ``patient``'s cases."""
    ids = set(Annotation.objects.filter(case__study__patient=patient).values_list("pk", flat=True))
    ids |= consent.purged_ids(patient.project_id, patient.pk)["annotations"]
    if not ids:
        return []
    return [
        version
        for version in ModelVersion.objects.filter(project_id=patient.project_id).order_by("number")
        if _snapshot_ids(version) & ids
    ]


def delete_explanations_on_purge(
    sender: Any, *, patient: Patient, case_ids: list[int], **_: Any
) -> int:
    """Receiver of ``annotations.services.consent.patient_purging``: the explanation overlays
    of the purged patient's cases go with them, and their entries in the frozen copies of
    verification are redacted (:func:`redact_verification`)."""
    from active_learning.services.explanations import delete_overlays

    redact_verification(patient.project_id, set(case_ids))
    return delete_overlays(case_ids)


def redact_verification(project_id: int, case_ids: set[int]) -> int:
    """Take ``case_ids`` (cases of project ``project_id``) out of the project's locked test
    sets' content (their study UID and reference label) and out of the per-case texts
    (reference report and draft) of every validation report on those test sets.
    The case ids stay, marked redacted, so counts and the purge's trail still line up; the
    locked hash still names what a report used then. Returns the rows changed."""
    from active_learning.models import LockedTestSet, ValidationReport

    if not case_ids:
        return 0
    changed = 0
    for locked in LockedTestSet.objects.filter(project_id=project_id).order_by("pk"):
        cases = locked.content.get("cases", [])
        if not any(entry.get("case_id") in case_ids for entry in cases):
            continue
        locked.content = {
            **locked.content,
            "cases": [
                {"case_id": e["case_id"], "label": None, "redacted": True}
                if e.get("case_id") in case_ids
                else e
                for e in cases
            ],
            "redacted_cases": sorted(
                set(locked.content.get("redacted_cases", [])) | (case_ids & _ids(cases))
            ),
        }
        locked.save(update_fields=["content"])
        changed += 1
    reports = ValidationReport.objects.filter(test_set__project_id=project_id).exclude(result={})
    for report in reports.order_by("pk"):
        outcomes = report.result.get("outcomes") or {}
        ids = outcomes.get("case_ids") or []
        texts = outcomes.get("report_texts")
        hit = [i for i, case_id in enumerate(ids) if case_id in case_ids]
        if not hit or not texts:
            continue
        texts = {key: list(values) for key, values in texts.items()}
        for i in hit:
            for values in texts.values():
                values[i] = None
        report.result = {
            **report.result,
            "outcomes": {**outcomes, "report_texts": texts},
            "redacted_cases": sorted(set(report.result.get("redacted_cases", [])) | {
                ids[i] for i in hit
            }),
        }  # fmt: skip
        report.save(update_fields=["result"])
        changed += 1
    return changed


def _ids(cases: list[dict[str, Any]]) -> set[int]:
    return {int(entry["case_id"]) for entry in cases if entry.get("case_id") is not None}


def flag_versions_on_withdrawal(
    sender: Any, *, patient: Patient, actor: Any = None, **_: Any
) -> None:
    """Receiver of ``annotations.services.consent.patient_withdrawn`` (inside the withdrawal's
    transaction): one audit event per version trained on the patient's labels."""
    for version in versions_using(patient):
        audit.record(
            action="model_version.trained_on_withdrawn_data",
            actor=actor,
            target=version,
            project_id=patient.project_id,
            detail={"pseudonym": patient.pseudonym, "model_version": version.number},
        )
