"""Which labels an export holds: the final label per case, as it was submitted.

A case's final label is its latest accepted annotation, else its latest submitted one. Content
always comes from the annotation's :class:`~annotations.models.AnnotationRevision` (what was
submitted, frozen), never from the working copy, so an export of today's labels and an export
of a model version's label snapshot read the same thing the same way."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.db.models import OuterRef, Subquery

from annotations.models import (
    Annotation,
    AnnotationRevision,
    Case,
    Consent,
    DoubleRead,
    Project,
)
from annotations.services.errors import DomainError

EXPORTED_STATUSES = (Annotation.Status.ACCEPTED, Annotation.Status.SUBMITTED)
_CHUNK = 500


class UnknownModelVersion(DomainError):
    """``version=N`` names no model version of the project."""

    status_code = 404
    code = "not_found"


@dataclass(frozen=True)
class LabelBox:
    """One box in pixels of the stored image: left, top, width, height; frame is 1-based."""

    instance_id: int
    frame: int
    x: float
    y: float
    width: float
    height: float
    finding: str
    origin: str
    # A 3D box: its series, slices (first, last; 1-based in position order) and its
    # coordinates in mm ({"min", "max", "center", "size"}, LPS); None for a 2D box.
    series_id: int | None = None
    slices: tuple[int, int] | None = None
    patient_mm: dict[str, list[float]] | None = None


@dataclass(frozen=True)
class FinalLabel:
    """One case's final label: the annotation, the version its content was frozen at, and that
    content (findings ``{key: present|absent|uncertain}``, report ``{section: text}``, boxes)."""

    case: Case
    annotation_id: int
    annotator: str
    status: str
    version: int
    findings: dict[str, str]
    report: dict[str, str]
    boxes: tuple[LabelBox, ...]


@dataclass(frozen=True)
class LabelSet:
    """The labels of one export; ``missing`` lists snapshot pairs that could not be found."""

    labels: list[FinalLabel]
    model_version: int | None = None
    missing: tuple[tuple[int, int], ...] = ()


def final_annotations(project: Project) -> models.QuerySet[Annotation]:
    """Per case of ``project``: an adjudicator's final label, else the latest accepted
    annotation, else the latest submitted one; double-read cases awaiting adjudication have no
    final label yet and are left out."""
    ranked = (
        Annotation.objects.filter(case=OuterRef("case"), status__in=EXPORTED_STATUSES)
        .annotate(
            accepted_first=models.Case(
                models.When(status=Annotation.Status.ACCEPTED, then=models.Value(0)),
                default=models.Value(1),
                output_field=models.IntegerField(),
            )
        )
        .order_by("-is_adjudication", "accepted_first", "-updated_at", "-pk")
        .values("pk")[:1]
    )
    return (
        Annotation.objects.filter(
            case__project=project, status__in=EXPORTED_STATUSES, pk=Subquery(ranked)
        )
        .exclude(case__double_read__status=DoubleRead.Status.PENDING)
        # A patient who withdrew consent is in no export (annotations.services.consent).
        .exclude(case__study__patient__consent_status=Consent.WITHDRAWN)
        .order_by("case_id")
    )


def current_labels(project: Project) -> LabelSet:
    """The project's final labels now."""
    pairs = list(final_annotations(project).values_list("pk", "version"))
    labels, _ = _labels_at(project, pairs, from_snapshot=False)
    return LabelSet(labels=labels)


# Reads a model version's label snapshot ([annotation id, version] pairs), None when the project
# has no version ``number``. The loop owns model versions and registers the reader when it
# starts (active_learning.apps), so that exports import nothing of the loop.
SnapshotReader = Callable[[Project, int], Any]
_snapshot_readers: list[SnapshotReader] = []


def register_snapshot_reader(reader: SnapshotReader) -> None:
    """Make ``reader`` the source of model versions' label snapshots (replacing any earlier)."""
    _snapshot_readers[:] = [reader]


def snapshot_labels(project: Project, number: int) -> LabelSet:
    """The labels model version ``number`` was trained on (its ``label_snapshot`` of
    [annotation id, version] pairs), each as submitted at that version, whatever happened to
    the annotation since. Raises UnknownModelVersion when the project has no such version."""
    snapshot = _snapshot_readers[0](project, number) if _snapshot_readers else None
    if snapshot is None:
        raise UnknownModelVersion(f"Project {project.pk} has no model version {number}.")
    pairs = _snapshot_pairs(snapshot)
    labels, missing = _labels_at(project, pairs, from_snapshot=True)
    return LabelSet(labels=labels, model_version=number, missing=tuple(missing))


def _snapshot_pairs(raw: Any) -> list[tuple[int, int]]:
    pairs = []
    for item in raw if isinstance(raw, list) else []:
        if (
            isinstance(item, list | tuple)
            and len(item) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) for n in item)
        ):
            pairs.append((item[0], item[1]))
    return pairs


def _labels_at(
    project: Project, pairs: Sequence[tuple[int, int]], *, from_snapshot: bool
) -> tuple[list[FinalLabel], list[tuple[int, int]]]:
    """Each (annotation id, version) as its latest revision at or before that version.

    Accepting bumps an annotation's version without a new revision (the content is unchanged),
    so a snapshot's version may be one past its revision: that pair was accepted by then."""
    labels: list[FinalLabel] = []
    missing: list[tuple[int, int]] = []
    for start in range(0, len(pairs), _CHUNK):
        chunk = pairs[start : start + _CHUNK]
        ids = [pk for pk, _ in chunk]
        annotations = {
            a.pk: a
            for a in Annotation.objects.filter(pk__in=ids, case__project=project).select_related(
                "case__study__patient", "annotator"
            )
        }
        revisions: dict[int, list[AnnotationRevision]] = {}
        for revision in AnnotationRevision.objects.filter(annotation_id__in=ids).order_by(
            "annotation_id", "version"
        ):
            revisions.setdefault(revision.annotation_id, []).append(revision)
        for pk, version in chunk:
            annotation = annotations.get(pk)
            frozen = [r for r in revisions.get(pk, []) if r.version <= version]
            if annotation is None or not frozen:
                missing.append((pk, version))
                continue
            if annotation.case.study.patient.consent_status == Consent.WITHDRAWN:
                continue  # withdrawn: in no export, a version's snapshot included
            revision = frozen[-1]
            if from_snapshot:
                status = "submitted" if revision.version == version else "accepted"
            else:
                status = annotation.status
            labels.append(_label(annotation, revision, status))
    labels.sort(key=lambda label: (label.case.pk, label.annotation_id))
    return labels, missing


def _label(annotation: Annotation, revision: AnnotationRevision, status: str) -> FinalLabel:
    content = revision.content if isinstance(revision.content, dict) else {}
    return FinalLabel(
        case=annotation.case,
        annotation_id=annotation.pk,
        annotator=annotation.annotator.get_username(),
        status=status,
        version=revision.version,
        findings=_text_map(content.get("findings")),
        report=_text_map(content.get("report")),
        boxes=tuple(_boxes(content.get("boxes"))),
    )


def _text_map(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, str)}


def _boxes(raw: Any) -> Iterable[LabelBox]:
    for box in raw if isinstance(raw, list) else []:
        try:
            yield LabelBox(
                instance_id=int(box["instance_id"]),
                frame=int(box.get("frame", 1)),
                x=float(box["x"]),
                y=float(box["y"]),
                width=float(box["width"]),
                height=float(box["height"]),
                finding=str(box["finding"]),
                origin=str(box.get("origin", "")),
                **_volume_fields(box),
            )
        except (KeyError, TypeError, ValueError):  # never written by annotate.snapshot
            continue


def _volume_fields(box: dict[str, Any]) -> dict[str, Any]:
    """A 3D box's series, slice range and patient coordinates as a revision stores them."""
    slices = box.get("slices")
    if not (isinstance(slices, list) and len(slices) == 2 and box.get("patient_mm")):
        return {}
    return {
        "series_id": int(box["series_id"]),
        "slices": (int(slices[0]), int(slices[1])),
        "patient_mm": box["patient_mm"],
    }
