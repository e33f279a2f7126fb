"""Exports of 3D lesion boxes (issue 21, part 6): the DICOM SR (TID 1500) holds a 3D box as a
TID 1411 volumetric ROI with SCOORD3D polygons in the series' frame of reference, which dcmtk's
dsrdump reads and highdicom reads back to the same patient coordinates; the MONAI detection JSON
gives the box in world coordinates (cccwhd, mm); COCO says it is 2D only."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile

import highdicom as hd
import numpy as np
import pydicom
import pytest

from annotations.models import Box
from annotations.series_stacks import stack_of
from annotations.services import annotate
from annotations.services.ingest import storage_path
from tests.annotations.test_exports import export_bytes
from tests.annotations.test_volume_boxes import _ingest
from tests.support.tools import dcmtk, missing_dcmtk, require

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled_ct(project, member, tmp_path):
    """A CT series read with one 3D nodule box (slices 3..8, drawn on slice 5) and one 2D mass
    box on slice 1."""
    _, case, series = _ingest(project, tmp_path)
    order = stack_of(series).instance_ids
    reader = member("reader", "annotator")
    annotation = annotate.start_annotation(case=case, annotator=reader)
    annotate.submit(
        annotation=annotation,
        actor=reader,
        expected_version=annotation.version,
        findings={"nodule": "present", "mass": "present"},
        report={"findings": "Nodule.", "impression": ""},
        boxes=[
            annotate.BoxInput(order[4], 10, 12, 8, 6, "nodule", slices=(3, 8)),
            annotate.BoxInput(order[0], 20, 20, 5, 5, "mass"),
        ],
    )
    return case, series, Box.objects.get(slice_first=3)


def test_sr_holds_a_3d_box_as_scoord3d_that_dsrdump_and_highdicom_read(
    labelled_ct, project, tmp_path
):
    require(missing_dcmtk("dsrdump"), "reading SR exports with dsrdump")
    case, _, box = labelled_ct
    archive = zipfile.ZipFile(io.BytesIO(export_bytes(project, "sr-zip")))
    archive.extractall(tmp_path)
    path = tmp_path / f"case-{case.pk}.dcm"

    dump = subprocess.run([dcmtk("dsrdump"), str(path)], capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    assert "SCOORD3D" in dump.stdout and "POLYGON" in dump.stdout
    # The box's six faces, each a closed polygon in the frame of reference, and the slice it
    # was drawn on as the source image.
    assert dump.stdout.count('SCOORD3D:(,,"Volume Surface")=(POLYGON') == 6
    assert 'IMAGE:(,,"Source Image for Segmentation")' in dump.stdout

    report = hd.sr.MeasurementReport.from_sequence(hd.sr.srread(path).content)
    (volume,) = report.get_volumetric_roi_measurement_groups()
    assert volume.finding_type.value == "nodule"
    surface = volume.roi
    source = pydicom.dcmread(storage_path(box.instance.file_path), stop_before_pixels=True)
    assert surface.frame_of_reference_uid == source.FrameOfReferenceUID
    points = np.concatenate([np.asarray(face) for face in surface.graphic_data])
    assert points.min(axis=0) == pytest.approx(box.patient_mm["min"], abs=1e-3)
    assert points.max(axis=0) == pytest.approx(box.patient_mm["max"], abs=1e-3)
    # The 2D box stays a planar ROI on its slice.
    (planar,) = report.get_planar_roi_measurement_groups()
    assert planar.finding_type.value == "mass"


def test_monai_detection_json_gives_3d_boxes_in_world_coordinates(labelled_ct, project):
    _, series, box = labelled_ct
    data = json.loads(export_bytes(project, "monai-detection"))

    assert data["box_mode"] == "cccwhd"
    assert data["labels"]["0"] == "nodule"
    (item,) = data["training"]
    assert item["image"] == series.series_instance_uid and item["series_id"] == series.pk
    assert item["label"] == [0]  # the 2D mass box has no depth: not in this export
    (cccwhd,) = item["box"]
    low, high = np.asarray(box.patient_mm["min"]), np.asarray(box.patient_mm["max"])
    assert cccwhd == pytest.approx([*((low + high) / 2), *(high - low)], abs=2e-3)
    assert cccwhd[5] == pytest.approx(6 * 2.5, abs=1e-3)  # six slices 2.5 mm apart


def test_coco_says_it_is_2d_only_and_keeps_each_box_on_its_slice(labelled_ct, project):
    _, _, box = labelled_ct
    data = json.loads(export_bytes(project, "coco"))
    assert data["info"]["boxes"].startswith("2D only")
    assert sorted(a["bbox"] for a in data["annotations"]) == [[10, 12, 8, 6], [20, 20, 5, 5]]
    image = {i["id"]: i for i in data["images"]}
    drawn = next(a for a in data["annotations"] if a["bbox"] == [10, 12, 8, 6])
    assert image[drawn["image_id"]]["instance_id"] == box.instance_id
