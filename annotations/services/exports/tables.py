"""Labels as files other tools read: COCO JSON of boxes, a CSV of case-level findings, JSON
Lines of reports. Each writer takes a :class:`LabelSet` and writes UTF-8 bytes to ``out``.

Images and studies are named only by their de-identified UIDs and pseudonyms."""

from __future__ import annotations

import csv
import io
import json
from typing import IO, Any

from annotations.models import Instance, Project
from annotations.services.exports.labels import FinalLabel, LabelSet


def _image_instances(labels: list[FinalLabel]) -> list[Instance]:
    """Every image of the labelled cases (images without boxes are the negatives a detector
    needs); a quarantined one only when a box was drawn on it."""
    case_ids = {label.case.pk for label in labels}
    boxed = {box.instance_id for label in labels for box in label.boxes}
    instances = Instance.objects.filter(series__study__case__in=case_ids).order_by(
        "series__study__case", "series__series_number", "series_id", "instance_number", "id"
    )
    return [
        i
        for i in instances.select_related("series__study__case")
        if not i.quarantined or i.pk in boxed
    ]


def coco_dataset(project: Project, label_set: LabelSet) -> dict[str, Any]:
    """The boxes as a COCO detection data set (``bbox`` is [x, y, width, height] in pixels).

    Categories are the project's findings in schema order (ids from 1); a box whose finding
    has since left the schema gets a category of its own after them. One image per frame,
    ``file_name`` ``<de-identified SOP Instance UID>_<frame>``. Images and annotations
    carry MedLoop's ids in extra fields (``case_id``, ``instance_id``, ``frame``;
    ``medloop_annotation_id``, ``medloop_version``)."""
    labels = label_set.labels
    schema = project.label_schema.get("findings", [])
    categories = [
        {"id": n, "name": f["key"], "display_name": f.get("name", f["key"]), "supercategory": ""}
        for n, f in enumerate(schema, start=1)
    ]
    category_of = {c["name"]: c["id"] for c in categories}
    images: list[dict[str, Any]] = []
    image_of: dict[tuple[int, int], int] = {}
    for instance in _image_instances(labels):
        for frame in range(1, instance.number_of_frames + 1):
            image_id = len(images) + 1
            image_of[(instance.pk, frame)] = image_id
            images.append(
                {
                    "id": image_id,
                    "file_name": f"{instance.sop_instance_uid}_{frame}",
                    "width": instance.columns,
                    "height": instance.rows,
                    "sop_instance_uid": instance.sop_instance_uid,
                    "frame": frame,
                    "instance_id": instance.pk,
                    "case_id": instance.series.study.case.pk,
                }
            )
    annotations: list[dict[str, Any]] = []
    for label in labels:
        for box in label.boxes:
            box_image = image_of.get((box.instance_id, box.frame))
            if box_image is None:  # its image was deleted since: nothing to point at
                continue
            if box.finding not in category_of:
                category_of[box.finding] = len(categories) + 1
                categories.append(
                    {
                        "id": category_of[box.finding],
                        "name": box.finding,
                        "display_name": box.finding,
                        "supercategory": "",
                    }
                )
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": box_image,
                    "category_id": category_of[box.finding],
                    "bbox": [box.x, box.y, box.width, box.height],
                    "area": box.width * box.height,
                    "iscrowd": 0,
                    "case_id": label.case.pk,
                    "medloop_annotation_id": label.annotation_id,
                    "medloop_version": label.version,
                    "annotator": label.annotator,
                    "origin": box.origin,
                }
            )
    return {
        "info": {
            "description": f"MedLoop project {project.pk} ({project.name}): final labels",
            # COCO boxes are 2D: a 3D box appears as its rectangle on the slice it was drawn
            # on. Its slice range and patient coordinates are in the monai-detection export.
            "boxes": "2D only: a 3D box is given as its rectangle on the slice it was drawn on;"
            " the monai-detection and sr-zip exports hold 3D boxes",
            "model_version": label_set.model_version,
            "cases": len(labels),
            "missing_labels": [list(pair) for pair in label_set.missing],
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def write_coco(project: Project, label_set: LabelSet, out: IO[bytes]) -> None:
    out.write(json.dumps(coco_dataset(project, label_set), ensure_ascii=False).encode())


IDENTITY_COLUMNS = (
    "case_id",
    "patient_pseudonym",
    "study_instance_uid",
    "accession_pseudonym",
    "annotation_id",
    "annotator",
    "status",
    "version",
)


def _identity_columns(label: FinalLabel) -> dict[str, Any]:
    """Who and what a row is about; ``version`` is the submitted revision's."""
    study = label.case.study
    return {
        "case_id": label.case.pk,
        "patient_pseudonym": study.patient.pseudonym,
        "study_instance_uid": study.study_instance_uid,
        "accession_pseudonym": study.accession_pseudonym,
        "annotation_id": label.annotation_id,
        "annotator": label.annotator,
        "status": label.status,
        "version": label.version,
    }


def _spreadsheet_safe(value: object) -> object:
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection): text starting
    with = + - @ or a tab/carriage return gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_findings_csv(project: Project, label_set: LabelSet, out: IO[bytes]) -> None:
    """One row per case: who labelled it, and one column per finding key of the schema
    (present, absent, uncertain, or empty when not given)."""
    keys = project.finding_keys
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    try:
        writer = csv.DictWriter(text, fieldnames=[*IDENTITY_COLUMNS, *keys], extrasaction="ignore")
        writer.writeheader()
        for label in label_set.labels:
            row = {**_identity_columns(label), **{k: label.findings.get(k, "") for k in keys}}
            writer.writerow({k: _spreadsheet_safe(v) for k, v in row.items()})
    finally:
        text.detach()  # leave ``out`` open for the caller


def write_reports_jsonl(project: Project, label_set: LabelSet, out: IO[bytes]) -> None:
    """One JSON object per line and case: ids, annotator, status, version and ``sections``
    (``{section key: text}``, schema order first)."""
    order = project.report_section_keys
    for label in label_set.labels:
        sections = {k: label.report[k] for k in order if k in label.report}
        sections.update({k: v for k, v in label.report.items() if k not in sections})
        line = {**_identity_columns(label), "sections": sections}
        out.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
