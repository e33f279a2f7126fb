"""3D lesion boxes (issue 21, part 3): a box drawn on one slice of a CT series ingested through
the real DICOM path and extended over a slice range is stored with its series, slice range and
patient coordinates (mm, computed by the server); bad ranges and series that are not regular
volumes get a 400 naming what is wrong and change nothing; 3D IoU in the agreement figures
(hand-computed), and 2D boxes read as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from active_learning.ml import synthetic_ct
from annotations import agreement
from annotations.dicom.box_geometry import VolumeGeometry, patient_box
from annotations.models import Box, Case, DoubleRead, Series
from annotations.series_stacks import stack_of
from annotations.services import annotate, double_reading, ingest
from medloop.metrics.boxes import iou_matrix_xyzwhd

pytestmark = pytest.mark.django_db

SLICES = 12
SIZE = 48


# ----------------------------------------------------------------------------- pure geometry
def test_3d_iou_is_overlap_volume_over_union_volume():
    # A 4x4x4 cube and a 4x4x2 slab starting at x=2: overlap 2*4*2 = 16, union 64 + 32 - 16.
    assert iou_matrix_xyzwhd([[0, 0, 0, 4, 4, 4]], [[2, 0, 0, 4, 4, 2]])[0, 0] == pytest.approx(
        16 / 80
    )
    # Two unit-offset 2-cubes share one voxel: 1 / (8 + 8 - 1).
    assert iou_matrix_xyzwhd([[0, 0, 0, 2, 2, 2]], [[1, 1, 1, 2, 2, 2]])[0, 0] == pytest.approx(
        1 / 15
    )
    # Disjoint along z only: no overlap though the 2D boxes are identical.
    assert iou_matrix_xyzwhd([[0, 0, 0, 4, 4, 2]], [[0, 0, 2, 4, 4, 2]])[0, 0] == 0.0


def test_3d_boxes_agree_by_3d_iou_not_by_their_slices_outline():
    """Same 20x20 outline; A covers slices 5..14 (z 4, depth 10). B over 8..17 overlaps 7 of
    10 slices: IoU 7/13 = 0.54, a match at 0.5. C over 10..19 overlaps 5: 5/15 = 0.33, none."""
    a = [("nodule", 10.0, 10.0, 4.0, 20.0, 20.0, 10.0)]
    b = [("nodule", 10.0, 10.0, 7.0, 20.0, 20.0, 10.0)]
    c = [("nodule", 10.0, 10.0, 9.0, 20.0, 20.0, 10.0)]
    assert agreement.box_f1(a, b).matched == 1
    assert agreement.box_f1(a, c).matched == 0
    assert agreement.box_f1(a, c).f1 == 0.0
    with pytest.raises(ValueError, match="2D and 3D"):
        agreement.box_f1([*a, ("nodule", 1.0, 1.0, 2.0, 2.0)], b)  # type: ignore[list-item]


def test_patient_coordinates_of_a_box_by_hand():
    """Axial slices at z = 10 + 2.5k (k from 0), first pixel centre at (-100, -50), pixels
    0.5 mm. Pixels x 10..30, y 4..10 on slices 3..5: x from -100 + 9.5 * 0.5 = -95.25 to
    -100 + 29.5 * 0.5 = -85.25; y from -50 + 3.5 * 0.5 = -48.25 to -45.25; z from slice 3's
    15 - 1.25 = 13.75 to slice 5's 20 + 1.25 = 21.25."""
    geometry = VolumeGeometry(
        positions=[(-100.0, -50.0, 10 + 2.5 * k) for k in range(8)],
        orientation=(1, 0, 0, 0, 1, 0),
        pixel_spacing=(0.5, 0.5),
        slice_spacing=2.5,
    )
    box = patient_box(geometry, x=10, y=4, width=20, height=6, slice_first=3, slice_last=5)
    assert box.minimum == pytest.approx((-95.25, -48.25, 13.75))
    assert box.maximum == pytest.approx((-85.25, -45.25, 21.25))
    assert box.center == pytest.approx((-90.25, -46.75, 17.5))
    assert box.size == pytest.approx((10.0, 3.0, 7.5))


# ------------------------------------------------------------------- through the API (real DICOM)
def _ingest(project, tmp_path: Path, *, drop: tuple[int, ...] = ()):
    ct = synthetic_ct.generate_series(3, SLICES, SIZE)
    datasets = synthetic_ct.slice_datasets(ct)
    kept = [ds for k, ds in enumerate(datasets) if k not in drop]
    for path in synthetic_ct.write_series(kept, tmp_path):
        ingest.ingest_dicom_path(project=project, path=path)
    series = Series.objects.get(study__project=project, modality="CT")
    return ct, series.study.case, series


@pytest.fixture
def annotator(member, api_for):
    user = member("alice", "annotator")
    return user, api_for(user)


def _lease(client, project) -> Case:
    response = client.post(f"/api/projects/{project.pk}/next-case/")
    assert response.status_code == 200, response.content
    return Case.objects.get(pk=response.json()["id"])


def _put_boxes(client, case: Case, boxes: list[dict]):
    opened = client.get(f"/api/cases/{case.pk}/annotation/")
    return client.put(
        f"/api/cases/{case.pk}/annotation/",
        {"boxes": boxes},
        format="json",
        HTTP_IF_MATCH=opened["ETag"],
    )


def _box(instance_id: int, **overrides) -> dict:
    return {
        "instance_id": instance_id,
        "x": 10,
        "y": 12,
        "width": 8,
        "height": 6,
        "finding": "nodule",
        **overrides,
    }


def test_a_3d_box_is_stored_with_its_series_slice_range_and_patient_coordinates(
    project, annotator, tmp_path
):
    ct, case, series = _ingest(project, tmp_path)
    _, client = annotator
    assert _lease(client, project) == case
    order = stack_of(series).instance_ids
    drawn_on = order[4]  # slice 5 from the feet

    response = _put_boxes(client, case, [_box(drawn_on, slices=[3, 8]), _box(order[0])])

    assert response.status_code == 200, response.content
    volume, flat = response.json()["boxes"]
    assert (volume["series_id"], volume["slice_first"], volume["slice_last"]) == (series.pk, 3, 8)
    assert volume["instance_id"] == drawn_on
    # By hand from the synthetic series' geometry (origin, pixel and slice spacing).
    px, dz = ct.pixel_spacing_mm, ct.slice_spacing_mm
    ox, oy, oz = ct.origin_mm
    expected_min = [ox + 9.5 * px, oy + 11.5 * px, oz + 2 * dz - dz / 2]
    expected_max = [ox + 17.5 * px, oy + 17.5 * px, oz + 7 * dz + dz / 2]
    assert volume["patient_mm"]["min"] == pytest.approx(expected_min, abs=1e-3)
    assert volume["patient_mm"]["max"] == pytest.approx(expected_max, abs=1e-3)
    assert volume["patient_mm"]["size"] == pytest.approx([8 * px, 6 * px, 6 * dz], abs=2e-3)
    # A 2D box in the same save reads as before.
    assert (flat["series_id"], flat["slice_first"], flat["patient_mm"]) == (None, None, None)
    stored = Box.objects.get(slice_first=3)
    assert (stored.series_id, stored.slice_last, stored.instance_id) == (series.pk, 8, drawn_on)
    # Submitting keeps the range in the revision that reviewers and the loop read.
    opened = client.get(f"/api/cases/{case.pk}/annotation/")
    submitted = client.post(
        f"/api/cases/{case.pk}/annotation/submit/", {}, format="json", HTTP_IF_MATCH=opened["ETag"]
    )
    assert submitted.status_code == 200, submitted.content
    revision = stored.annotation.revisions.get()
    assert revision.content["boxes"][0]["slices"] == [3, 8]
    assert revision.content["boxes"][0]["series_id"] == series.pk
    assert "slices" not in revision.content["boxes"][1]


@pytest.mark.parametrize(
    ("slices", "message"),
    [
        ([8, 3], "slices [8, 3]: the first comes after the last"),
        ([3, SLICES + 4], f"slices 3..{SLICES + 4} lie outside series"),
        ([6, 9], "the box is drawn on slice 5, outside its range 6..9"),
        ([3], "slices"),
    ],
)
def test_a_bad_slice_range_is_a_400_naming_it_and_nothing_changes(
    project, annotator, tmp_path, slices, message
):
    _, case, series = _ingest(project, tmp_path)
    _, client = annotator
    _lease(client, project)
    order = stack_of(series).instance_ids
    kept = _put_boxes(client, case, [_box(order[0])])
    assert kept.status_code == 200

    response = _put_boxes(client, case, [_box(order[4], slices=slices)])

    assert response.status_code == 400, response.content
    assert message in response.content.decode()
    assert list(Box.objects.values_list("instance_id", "slice_first")) == [(order[0], None)]


def test_a_3d_box_on_a_series_that_is_not_a_regular_volume_is_refused(project, annotator, tmp_path):
    _, case, series = _ingest(project, tmp_path, drop=(6, 7))
    _, client = annotator
    _lease(client, project)
    order = stack_of(series).instance_ids

    response = _put_boxes(client, case, [_box(order[2], slices=[1, 4])])

    assert response.status_code == 400, response.content
    text = response.content.decode()
    assert f"series {series.pk} is not a regular volume" in text
    assert "Missing slices" in text
    assert not Box.objects.exists()


def test_double_reads_of_3d_boxes_are_compared_by_3d_iou(project, member, tmp_path):
    """Both readers outline the same 8x6 pixels; Alice over slices 2..11, Bob over 5..12: 7 of
    the 10 and 8 slices shared, 3D IoU 7/11 = 0.64, a match. Carol over 8..12 shares 4 of 10
    and 5: IoU 4/11 = 0.36, no match, though each slice's outline is the same; their case goes
    to adjudication, which keeps the adopted read's 3D box."""
    _, case, series = _ingest(project, tmp_path)
    Case.objects.filter(pk=case.pk).update(required_reads=2)
    case.refresh_from_db()
    order = stack_of(series).instance_ids

    def read(name: str, first: int, last: int):
        user = member(name, "annotator")
        annotation = annotate.start_annotation(case=case, annotator=user)
        box = annotate.BoxInput(order[first], 10, 12, 8, 6, "nodule", slices=(first, last))
        return annotate.submit(
            annotation=annotation,
            actor=user,
            expected_version=annotation.version,
            findings={"nodule": "present"},
            report={"findings": "Nodule.", "impression": ""},
            boxes=[box],
        )

    alice, carol = read("alice", 2, 11), read("carol", 8, 12)
    assert double_reading.compare(project, alice, carol).box.f1 == 0.0
    # The two reads disagree: the case waits for adjudication, which may adopt one read; its
    # 3D box comes over with its range and patient coordinates.
    row = DoubleRead.objects.get(case=case)
    assert row.status == DoubleRead.Status.PENDING and row.box_f1 == 0.0
    final = double_reading.adjudicate(
        double_read=row, adjudicator=member("rita", "reviewer"), use=alice.pk
    )
    (adopted,) = final.boxes.all()
    kept = Box.objects.get(annotation=alice)  # from the database, not the primed relation
    assert (adopted.series_id, adopted.slice_first, adopted.slice_last) == (series.pk, 2, 11)
    assert adopted.patient_mm == kept.patient_mm
    bob = read("bob", 5, 12)
    assert double_reading.compare(project, alice, bob).box.f1 == 1.0
