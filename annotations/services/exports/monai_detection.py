"""Boxes as the JSON data list MONAI's detection uses (as in its LUNA16 data lists): per
series one item with its boxes in world coordinates, ``cccwhd`` (centre x, y, z and width,
height, depth, mm) and their labels (class indices).

World coordinates are DICOM's patient coordinates (LPS, mm), as in the LUNA16 lists MONAI
builds from annotations.csv; MONAI's ``AffineBoxToWorldCoordinated`` / ``ConvertBoxModed``
with ``affine_lps_to_ras=True`` read them so. Only 3D boxes (a CT or MR series' slice range)
are written; 2D boxes have no depth and stay in the COCO export. ``image`` names the series
by its de-identified Series Instance UID (a NIfTI path is for the exporter of the volume)."""

from __future__ import annotations

import json
from typing import IO, Any

from annotations.models import Project, Series
from annotations.services.exports.labels import LabelSet


def detection_data_list(project: Project, label_set: LabelSet) -> dict[str, Any]:
    """``{"box_mode": "cccwhd", "coordinates": ..., "labels": {index: finding}, "training":
    [{"image", "series_id", "case_id", "box": [[cx, cy, cz, w, h, d], ...], "label": [...]}]}``;
    label indices are the schema's findings in order, from 0."""
    keys = [f["key"] for f in project.label_schema.get("findings", [])]
    index = {key: n for n, key in enumerate(keys)}
    items: dict[int, dict[str, Any]] = {}
    for label in label_set.labels:
        for box in label.boxes:
            if box.series_id is None or box.patient_mm is None:
                continue
            if box.finding not in index:  # a finding that has since left the schema
                index[box.finding] = len(keys)
                keys.append(box.finding)
            item = items.setdefault(
                box.series_id,
                {"case_id": label.case.pk, "series_id": box.series_id, "box": [], "label": []},
            )
            item["box"].append([*box.patient_mm["center"], *box.patient_mm["size"]])
            item["label"].append(index[box.finding])
    uids = dict(Series.objects.filter(pk__in=items).values_list("pk", "series_instance_uid"))
    training = [{"image": uids.get(pk, ""), **item} for pk, item in sorted(items.items())]
    return {
        "box_mode": "cccwhd",
        "coordinates": "world: DICOM patient coordinates (LPS), mm",
        "labels": {str(n): key for n, key in enumerate(keys)},
        "model_version": label_set.model_version,
        "training": training,
    }


def write_monai_detection(project: Project, label_set: LabelSet, out: IO[bytes]) -> None:
    out.write(json.dumps(detection_data_list(project, label_set), ensure_ascii=False).encode())
