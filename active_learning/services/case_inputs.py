"""Cases as the model sees them: :class:`~active_learning.ml.interface.CaseInput` from the
database and the de-identified DICOM store, and labelled cases streamed from annotations.

A model reads the case's first image (the first instance of the first series, by number, that
is not quarantined), first frame, as stored values; a colour image is reduced to luminance
(ITU-R BT.601) so that secondary captures can still be scored.

A model that reads volumes (``reads_volumes``, the 3D CT detector) gets the case's first series
that is a regular volume instead (:func:`volume_input`): its slices in position order
(``annotations.series_stacks``), rescaled to Hounsfield units, with the voxel spacing; its
labels are the annotation's boxes on that series, 3D boxes with their slice range and a box on
one slice as a box one slice deep (:class:`~active_learning.ml.volumes.LabelledVolume`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pydicom
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery

from active_learning.ml.interface import Box, CaseInput, CaseSource, LabelledCase, LabValue
from active_learning.ml.volumes import Box3D, LabelledVolume, VolumeInput
from active_learning.models import TestSetPlan
from annotations.dicom.pixels import decode_frame
from annotations.models import Annotation, Case, DoubleRead, Instance, LabResult, Project, Series
from annotations.services.ingest import storage_path
from annotations.services.volume_boxes import SeriesVolume, series_volume

FINDING_STATES = {"present": True, "absent": False, "uncertain": None}
# Statuses whose labels the model learns from: reviewed work, and submitted work not yet
# reviewed (a return takes it out again at the next cycle).
TRAINING_STATUSES = (Annotation.Status.ACCEPTED, Annotation.Status.SUBMITTED)


class CaseNotReadable(ValueError):
    """The case has no image the model can read."""


def first_instance(case: Case) -> Instance:
    instance = (
        Instance.objects.filter(series__study__case=case, quarantined=False)
        .order_by("series__series_number", "series_id", "instance_number", "id")
        .first()
    )
    if instance is None:
        raise CaseNotReadable(f"case {case.pk} has no image that is not quarantined")
    return instance


def instance_pixels(instance: Instance) -> np.ndarray:
    """Frame 1 of the instance as stored values, ``(rows, columns)``."""
    dataset = pydicom.dcmread(storage_path(instance.file_path))
    pixels = decode_frame(dataset, 0)
    if pixels.ndim == 3:
        pixels = pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return pixels


def _labs(results: Sequence[LabResult]) -> tuple[LabValue, ...]:
    return tuple(
        LabValue(
            code=lab.code,
            value=lab.value,
            low=lab.reference_low,
            high=lab.reference_high,
            unit=lab.unit,
            name=lab.name,
        )
        for lab in results
    )


def case_input(case: Case) -> CaseInput:
    """What the model reads of ``case`` (its first image, clinical text and labs)."""
    instance = first_instance(case)
    return CaseInput(
        case_id=str(case.pk),
        image=instance_pixels(instance),
        indication=case.indication,
        history=case.history,
        labs=_labs(list(case.lab_results.all())),
    )


def reads_volumes(model: object) -> bool:
    """Whether ``model`` (an instance or a kind) reads a case's volume, not its first image."""
    return bool(getattr(model, "reads_volumes", False))


def case_volume(case: Case) -> tuple[Series, SeriesVolume]:
    """The case's first series (by number) that is a regular volume of two or more slices,
    with its stack and geometry; CaseNotReadable says why none is."""
    problems = []
    for series in Series.objects.filter(study__case=case).order_by("series_number", "pk"):
        volume = series_volume(series.pk)
        if volume.geometry is not None:
            return series, volume
        problems.append(
            f"series {series.pk}: " + (" ".join(volume.stack.problems) or "under two slices")
        )
    detail = "; ".join(problems) or "it has no series"
    raise CaseNotReadable(f"case {case.pk} has no series that is a regular volume ({detail})")


def _hounsfield(instance: Instance) -> np.ndarray:
    """Frame 1 of a slice after its modality rescale (Hounsfield units for CT)."""
    dataset = pydicom.dcmread(storage_path(instance.file_path))
    pixels = decode_frame(dataset, 0).astype(np.float32)
    slope = float(dataset.get("RescaleSlope", 1) or 1)
    intercept = float(dataset.get("RescaleIntercept", 0) or 0)
    return pixels * slope + intercept


def volume_input(case: Case) -> VolumeInput:
    """What a volume-reading model reads of ``case``: its first regular series as a volume
    ``(slices, rows, columns)`` in position order, rescaled, with its spacing (mm)."""
    series, volume = case_volume(case)
    return VolumeInput(
        case_id=str(case.pk),
        image=_volume_pixels(volume),
        indication=case.indication,
        history=case.history,
        voxel_spacing_mm=_spacing(volume),
        series_id=str(series.pk),
    )


def _volume_pixels(volume: SeriesVolume) -> np.ndarray:
    slices = Instance.objects.in_bulk(volume.stack.instance_ids)
    return np.stack([_hounsfield(slices[pk]) for pk in volume.stack.instance_ids])


def _spacing(volume: SeriesVolume) -> tuple[float, float, float]:
    assert volume.geometry is not None
    rows, columns = volume.geometry.pixel_spacing
    return (float(volume.geometry.slice_spacing), float(rows), float(columns))


def labelled_volume(annotation: Annotation) -> LabelledVolume:
    """The annotation as training data for a volume-reading model: the boxes on the case's
    volume (:func:`case_volume`) in its voxels (z, depth in slices, 0-based), findings and
    report as :func:`labelled_case`."""
    case = annotation.case
    series, volume = case_volume(case)
    place = {pk: k for k, pk in enumerate(volume.stack.instance_ids)}
    boxes = []
    for box in annotation.boxes.all():
        if box.slice_first is not None and box.slice_last is not None:
            if box.series_id != series.pk:
                continue
            z, depth = box.slice_first - 1, box.slice_last - box.slice_first + 1
        elif box.instance_id in place:
            z, depth = place[box.instance_id], 1
        else:
            continue
        boxes.append(Box3D(box.finding, box.x, box.y, box.width, box.height, z=z, depth=depth))
    return LabelledVolume(
        case_id=str(case.pk),
        image=_volume_pixels(volume),
        indication=case.indication,
        history=case.history,
        boxes=tuple(boxes),
        findings={k: FINDING_STATES.get(v) for k, v in annotation.findings.items()},
        report={k: v for k, v in annotation.report.items() if isinstance(v, str)},
        voxel_spacing_mm=_spacing(volume),
        series_id=str(series.pk),
    )


def labelled_case(annotation: Annotation) -> LabelledCase:
    """The annotation as training data: boxes on the case's first image (frame 1), findings
    (uncertain -> None, not learnt from) and the report by section."""
    case = annotation.case
    instance = first_instance(case)
    boxes = tuple(
        Box(box.finding, box.x, box.y, box.width, box.height)
        for box in annotation.boxes.all()
        if box.instance_id == instance.pk and box.frame == 1
    )
    return LabelledCase(
        case_id=str(case.pk),
        image=instance_pixels(instance),
        indication=case.indication,
        history=case.history,
        labs=_labs(list(case.lab_results.all())),
        boxes=boxes,
        findings={k: FINDING_STATES.get(v) for k, v in annotation.findings.items()},
        report={k: v for k, v in annotation.report.items() if isinstance(v, str)},
    )


def case_labels(cases: QuerySet[Case]) -> QuerySet[Annotation]:
    """The label of each of ``cases`` that has one: an adjudicator's final label, else the most
    recently updated one that counts. Double-read cases awaiting adjudication are left out: their
    two reads disagree and neither is the label yet."""
    latest = (
        Annotation.objects.filter(case=OuterRef("case"), status__in=TRAINING_STATUSES)
        .order_by("-is_adjudication", "-updated_at", "-pk")
        .values("pk")[:1]
    )
    return (
        Annotation.objects.filter(case__in=cases, status__in=TRAINING_STATUSES, pk=Subquery(latest))
        .exclude(case__double_read__status=DoubleRead.Status.PENDING)
        .order_by("case_id")
    )


def training_annotations(project: Project, *, validation: bool = False) -> QuerySet[Annotation]:
    """The annotations a cycle learns from (``validation=False``) or evaluates on and sets
    operating thresholds with (the project's fixed validation cases), one per case
    (:func:`case_labels`). Cases held out in the locked test set are in neither: a model is
    never trained, promoted or thresholded on them (``active_learning.services.test_sets``)."""
    cases = Case.objects.filter(project=project, is_validation=validation).exclude(
        test_set_draw__held_out=True
    )
    if not validation and TestSetPlan.objects.filter(project=project).exists():
        # A case ingested since the last draw may yet be held out: it waits for the draw.
        cases = cases.filter(test_set_draw__held_out=False)
    return case_labels(cases)


def labelled_source(annotation_ids: Sequence[int], *, volumes: bool = False) -> CaseSource:
    """A re-iterable stream of the annotations ``annotation_ids`` as labelled cases (a fixed
    snapshot: later edits do not leak into a cycle that is running); as labelled volumes
    (:func:`labelled_volume`) for a model that reads volumes."""
    ids = list(annotation_ids)
    read = labelled_volume if volumes else labelled_case

    def stream() -> Iterator[LabelledCase]:
        for start in range(0, len(ids), 50):
            chunk = (
                Annotation.objects.filter(pk__in=ids[start : start + 50])
                .select_related("case")
                .prefetch_related("boxes", Prefetch("case__lab_results"))
                .order_by("pk")
            )
            for annotation in chunk:
                try:
                    yield read(annotation)
                except CaseNotReadable:
                    continue

    return stream
