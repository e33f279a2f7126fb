"""Labels as DICOM Structured Reports: one Comprehensive 3D SR per case holding a TID 1500
Measurement Report, written with highdicom.

Content of each report:

- Imaging Measurements: per box a TID 1410 Planar ROI group whose region is a closed
  rectangular SCOORD POLYLINE on the de-identified source image (frame given for multi-frame
  images), with the box's finding as finding type and as a qualitative evaluation ("Finding" =
  the finding); a 3D box (a CT or MR series' slice range) is instead a TID 1411 Volumetric ROI
  group whose region is a SCOORD3D volume surface in the series' frame of reference: the six
  faces of the box in patient coordinates (mm), each a closed POLYGON; then one TID 1501 group
  holding the case-level findings as qualitative evaluations (finding = Present / Absent /
  Uncertain).
- The report text, one TEXT item per section, in TID 1500's document-level "Qualitative
  Evaluations" container (row 12, which holds CODE and TEXT items). highdicom's
  ``MeasurementReport`` has no argument for that container, so it is appended to the root
  container after the template is built.

Findings and report sections come from each project's own label schema; no standard code
registry covers them, so they are coded in a local (private) coding scheme, ``99MEDLOOP``
(designators starting with "99" are reserved for such local schemes), identified in the
report's Coding Scheme Identification Sequence. Code values are the schema keys (findings) and
``section:`` + key (report sections); code meanings are the schema's display names.

Patient and study attributes come from the stored files, which hold only de-identified data;
the annotator is the person observer, by user name."""

from __future__ import annotations

import io
import warnings
import zipfile
from typing import IO, Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from annotations.models import Instance, Project
from annotations.services.errors import Conflict
from annotations.services.exports.labels import FinalLabel, LabelBox, LabelSet
from annotations.services.ingest import storage_path

LOCAL_SCHEME = "99MEDLOOP"
SR_SERIES_NUMBER = 9900
# Part of every generated UID's entropy: a change to what a report holds is a new instance.
SR_LAYOUT = "medloop-sr-1"

FINDING_VALUES = {
    "present": codes.SCT.Present,
    "absent": codes.SCT.Absent,
    "uncertain": codes.SCT.Uncertain,
}
QUALITATIVE_EVALUATIONS = hd.sr.CodedConcept("C0034375", "UMLS", "Qualitative Evaluations")


class StoredImageMissing(Conflict):
    """A label refers to an image whose stored file cannot be read."""


def _meaning(text: str) -> str:
    return text.strip()[:64] or "?"


def finding_code(project: Project, key: str) -> hd.sr.CodedConcept:
    names = {f["key"]: f.get("name", f["key"]) for f in project.label_schema.get("findings", [])}
    return hd.sr.CodedConcept(key, LOCAL_SCHEME, _meaning(names.get(key, key)))


def section_code(project: Project, key: str) -> hd.sr.CodedConcept:
    titles = {
        s["key"]: s.get("title", s["key"]) for s in project.label_schema.get("report_sections", [])
    }
    return hd.sr.CodedConcept(f"section:{key}", LOCAL_SCHEME, _meaning(titles.get(key, key)))


def _read_header(instance: Instance) -> Dataset:
    try:
        return pydicom.dcmread(storage_path(instance.file_path), stop_before_pixels=True)
    except (OSError, pydicom.errors.InvalidDicomError) as exc:
        raise StoredImageMissing(
            f"The stored file of image {instance.pk} (case data) cannot be read; "
            "ask an administrator.",
            instance_id=instance.pk,
        ) from exc


def _source_headers(label: FinalLabel) -> dict[int, Dataset]:
    """Headers of the images the report refers to: every boxed image, and the case's first
    image (the report inherits patient and study from it, and case findings refer to it)."""
    boxed = {box.instance_id for box in label.boxes}
    instances = Instance.objects.filter(series__study__case=label.case).order_by(
        "quarantined", "series__series_number", "series_id", "instance_number", "id"
    )
    first = instances.first()
    wanted = [i for i in instances if i.pk in boxed or (first is not None and i.pk == first.pk)]
    return {instance.pk: _read_header(instance) for instance in wanted}


def _uid(project: Project, label: FinalLabel, part: str) -> str:
    return str(
        generate_uid(
            prefix=None,
            entropy_srcs=[
                project.pseudonym_secret,
                SR_LAYOUT,
                part,
                str(label.annotation_id),
                str(label.version),
                label.status,
            ],
        )
    )


def _roi_identity(project: Project, label: FinalLabel, n: int, box: LabelBox) -> dict[str, Any]:
    """What a box's ROI group says of it: its tracking identifier and its finding (as finding
    type and as a qualitative evaluation, Present)."""
    finding = finding_code(project, box.finding)
    return {
        "tracking_identifier": hd.sr.TrackingIdentifier(
            uid=_uid(project, label, f"box-{n}"), identifier=f"box {n} {box.finding}"[:64]
        ),
        "finding_type": finding,
        "qualitative_evaluations": [hd.sr.QualitativeEvaluation(finding, codes.SCT.Present)],
    }


def _box_group(
    project: Project, label: FinalLabel, n: int, box: LabelBox, header: Dataset
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    frames = [box.frame] if int(header.get("NumberOfFrames", 1) or 1) > 1 else None
    left, top = box.x, box.y
    right, bottom = box.x + box.width, box.y + box.height
    corners = np.array(
        [[left, top], [right, top], [right, bottom], [left, bottom], [left, top]],
        dtype=np.float32,
    )
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        **_roi_identity(project, label, n, box),
        referenced_region=hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=corners,
            source_image=hd.sr.SourceImageForRegion.from_source_image(
                header, referenced_frame_numbers=frames
            ),
        ),
    )


def _volume_box_group(
    project: Project, label: FinalLabel, n: int, box: LabelBox, header: Dataset
) -> hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations:
    """TID 1411: the 3D box as the six faces of its extent in patient coordinates (SCOORD3D
    POLYGONs in the series' frame of reference), the slice it was drawn on as source image."""
    assert box.patient_mm is not None
    low, high = np.asarray(box.patient_mm["min"]), np.asarray(box.patient_mm["max"])
    faces = []
    for axis in range(3):
        u, v = [a for a in range(3) if a != axis]
        for end in (low[axis], high[axis]):
            square = [(low[u], low[v]), (high[u], low[v]), (high[u], high[v]), (low[u], high[v])]
            face = np.zeros((5, 3), dtype=np.float64)
            face[:, axis] = end
            face[:4, [u, v]] = square
            face[4] = face[0]  # closed
            faces.append(face)
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        **_roi_identity(project, label, n, box),
        referenced_volume_surface=hd.sr.VolumeSurface(
            graphic_type=hd.sr.GraphicTypeValues3D.POLYGON,
            graphic_data=faces,
            frame_of_reference_uid=header.FrameOfReferenceUID,
            source_images=[hd.sr.SourceImageForSegmentation.from_source_image(header)],
        ),
    )


def _case_findings_group(
    project: Project, label: FinalLabel, first: Dataset
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    order = [k for k in project.finding_keys if k in label.findings]
    order += sorted(k for k in label.findings if k not in order)
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=_uid(project, label, "case-findings"), identifier="case findings"
        ),
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(finding_code(project, key), FINDING_VALUES[state])
            for key in order
            if (state := label.findings[key]) in FINDING_VALUES
        ],
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(first)],
    )


def _report_text(project: Project, label: FinalLabel) -> hd.sr.ContainerContentItem | None:
    order = [k for k in project.report_section_keys if k in label.report]
    order += sorted(k for k in label.report if k not in order)
    items = [
        hd.sr.TextContentItem(
            name=section_code(project, key),
            value=label.report[key],
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
        )
        for key in order
        if label.report[key].strip()
    ]
    if not items:
        return None
    container = hd.sr.ContainerContentItem(
        name=QUALITATIVE_EVALUATIONS, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )
    container.ContentSequence = hd.sr.ContentSequence(items)
    return container


def case_report(project: Project, label: FinalLabel) -> hd.sr.Comprehensive3DSR:
    """The case's final label as a Comprehensive 3D SR (TID 1500), in the case's study."""
    headers = _source_headers(label)
    if not headers:
        raise StoredImageMissing(f"Case {label.case.pk} has no stored image to report on.")
    first = next(iter(headers.values()))
    groups: list[
        hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
        | hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations
        | hd.sr.MeasurementsAndQualitativeEvaluations
    ] = [
        (
            _volume_box_group
            if box.patient_mm and "FrameOfReferenceUID" in headers[box.instance_id]
            else _box_group
        )(project, label, n, box, headers[box.instance_id])
        for n, box in enumerate(label.boxes, start=1)
        if box.instance_id in headers
    ]
    groups.append(_case_findings_group(project, label, first))
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            # A user name is one name component; the trailing caret says so (PS3.5 6.2).
            name=f"{label.annotator[:63]}^",
            login_name=label.annotator,
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=groups,
    )
    text = _report_text(project, label)
    if text is not None:
        report[0].ContentSequence.append(text)
    with warnings.catch_warnings():
        # The de-identified Patient's Name is a pseudonym, one name component by design;
        # highdicom warns about such names as it copies one into the report.
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person")
        sr = hd.sr.Comprehensive3DSR(
            evidence=list(headers.values()),
            content=report[0],
            series_instance_uid=_uid(project, label, "series"),
            series_number=SR_SERIES_NUMBER,
            sop_instance_uid=_uid(project, label, "instance"),
            instance_number=1,
            manufacturer="MedLoop",
            is_complete=True,
            is_final=label.status == "accepted",
            series_description="MedLoop labels",
        )
    # Report text is whatever the annotator typed; the source image's character set (often
    # Latin-1) cannot hold all of it, so the report is written in UTF-8.
    sr.SpecificCharacterSet = "ISO_IR 192"
    scheme = Dataset()
    scheme.CodingSchemeDesignator = LOCAL_SCHEME
    scheme.CodingSchemeName = "MedLoop project label schema"
    scheme.CodingSchemeResponsibleOrganization = "MedLoop"
    sr.CodingSchemeIdentificationSequence = [scheme]
    return sr


def sr_file_name(label: FinalLabel) -> str:
    return f"case-{label.case.pk}.dcm"


def write_sr_zip(project: Project, label_set: LabelSet, out: IO[bytes]) -> None:
    """A zip of one SR file per case (``case-<id>.dcm``, DICOM Part 10)."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for label in label_set.labels:
            buffer = io.BytesIO()
            case_report(project, label).save_as(buffer, enforce_file_format=True)
            archive.writestr(sr_file_name(label), buffer.getvalue())
