"""GET /api/cases/<case>/series/<series>/stack/ on CT series ingested through the real DICOM
path: slices in position order whatever InstanceNumber says, spacings, irregular series named,
access rules and audit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from active_learning.ml import synthetic_ct
from annotations.models import AuditEvent, Case, Instance, Series
from annotations.services import ingest, queue

pytestmark = pytest.mark.django_db

SLICES = 12


@pytest.fixture
def lead(member, api_for):
    return api_for(member("lena", "lead"))


def _ingest(project, datasets, tmp_path: Path, order=None) -> tuple[Case, Series]:
    paths = synthetic_ct.write_series(datasets, tmp_path)
    for i in order if order is not None else range(len(paths)):
        ingest.ingest_dicom_path(project=project, path=paths[i])
    series = Series.objects.get(study__project=project, modality="CT")
    return series.study.case, series


def _ct(seed: int = 1, size: int = 48):
    return synthetic_ct.slice_datasets(synthetic_ct.generate_series(seed, SLICES, size))


def _stack(client, case: Case, series: Series) -> dict:
    response = client.get(f"/api/cases/{case.pk}/series/{series.pk}/stack/")
    assert response.status_code == 200, response.content
    return response.json()


def test_ingested_slices_come_back_in_position_order_when_instance_numbers_lie(
    project, lead, tmp_path
):
    rng = np.random.default_rng(5)
    datasets = _ct()
    lies = [int(n) for n in rng.permutation(SLICES) + 1]
    for ds, number in zip(datasets, lies, strict=True):
        ds.InstanceNumber = number  # slice k (k-th from the feet) claims number lies[k]
    case, series = _ingest(project, datasets, tmp_path, order=rng.permutation(SLICES))

    body = _stack(lead, case, series)

    numbers = dict(Instance.objects.filter(series=series).values_list("pk", "instance_number"))
    assert [numbers[pk] for pk in body["instance_ids"]] == lies
    assert lies != sorted(lies)  # InstanceNumber order would have been wrong
    assert body["sorted_by"] == "position"
    assert body["regular"] is True and body["problems"] == []
    assert body["slice_spacing"] == pytest.approx(2.5)
    assert body["pixel_spacing"] == pytest.approx([350 / 48, 350 / 48], rel=1e-5)
    assert body["positions"] == pytest.approx([-15.0 + 2.5 * k for k in range(SLICES)])
    assert body["normal"] == pytest.approx([0, 0, 1])
    assert body["modality"] == "CT" and (body["rows"], body["columns"]) == (48, 48)
    assert AuditEvent.objects.filter(action="case.series_stack", object_id=str(case.pk)).exists()
    # The case detail still lists one series holding every slice.
    detail = lead.get(f"/api/cases/{case.pk}/").json()
    assert len(detail["series"]) == 1 and len(detail["series"][0]["instances"]) == SLICES


def test_a_gap_in_an_ingested_series_is_reported(project, lead, tmp_path):
    datasets = _ct()
    kept = datasets[:4] + datasets[6:]  # the 5th and 6th slices never arrive
    case, series = _ingest(project, kept, tmp_path)

    body = _stack(lead, case, series)

    assert body["regular"] is False
    [problem] = body["problems"]
    by_number = dict(Instance.objects.filter(series=series).values_list("instance_number", "pk"))
    assert f"between instances {by_number[4]} and {by_number[7]}" in problem
    assert "gap of 7.50 mm" in problem and "about 2 slice(s) missing" in problem


def test_an_ingested_series_mixing_orientations_says_so(project, lead, tmp_path):
    datasets = _ct()
    datasets[7].ImageOrientationPatient = ["0", "1", "0", "0", "0", "-1"]
    case, series = _ingest(project, datasets, tmp_path)

    body = _stack(lead, case, series)

    assert body["regular"] is False and body["sorted_by"] == "instance_number"
    odd = Instance.objects.get(series=series, instance_number=8).pk
    [problem] = body["problems"]
    assert problem.startswith("Mixed orientations")
    assert f"instance(s) {odd})" in problem and "sagittal" in problem


def test_an_ingested_slice_of_another_size_is_named(project, lead, tmp_path):
    datasets = _ct()
    small = synthetic_ct.slice_datasets(synthetic_ct.generate_series(1, SLICES, 32))[5]
    small.SOPInstanceUID = small.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.99.1"
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        setattr(small, keyword, getattr(datasets[5], keyword))
    datasets[5] = small
    case, series = _ingest(project, datasets, tmp_path)

    body = _stack(lead, case, series)

    assert body["regular"] is False
    odd = Instance.objects.get(series=series, rows=32).pk
    assert any("another size" in p and "32x32" in p and str(odd) in p for p in body["problems"])


def test_pydicom_ct_small_goes_through_the_same_path(project, lead):
    path = Path(get_testdata_file("CT_small.dcm"))
    original = pydicom.dcmread(path)
    result = ingest.ingest_dicom_path(project=project, path=path)
    case = result.instance.series.study.case

    body = _stack(lead, case, result.instance.series)

    assert body["instance_ids"] == [result.instance.pk]
    assert body["modality"] == "CT" and body["regular"] is True
    assert body["slice_spacing"] is None
    assert body["pixel_spacing"] == pytest.approx([float(v) for v in original.PixelSpacing])
    assert body["slice_thickness"] == pytest.approx(float(original.SliceThickness))
    assert body["positions"] == pytest.approx(
        [float(np.dot(original.ImagePositionPatient, body["normal"]))]
    )


def test_stack_access_follows_the_case_rules(project, member, api_for, lead, tmp_path):
    case, series = _ingest(project, _ct(), tmp_path)
    other = ingest.ingest_dicom_path(
        project=project, path=Path(get_testdata_file("CT_small.dcm"))
    ).instance.series
    # A series of another case is not this case's.
    response = lead.get(f"/api/cases/{case.pk}/series/{other.pk}/stack/")
    assert response.status_code == 404
    assert f"Case {case.pk} has no series {other.pk}" in response.json()["message"]
    # An annotator sees only the case they hold.
    annotator = member("ann", "annotator")
    client = api_for(annotator)
    assert client.get(f"/api/cases/{case.pk}/series/{series.pk}/stack/").status_code == 403
    assert queue.lease_next_case(project=project, annotator=annotator) == case
    assert client.get(f"/api/cases/{case.pk}/series/{series.pk}/stack/").status_code == 200
    # A stranger learns nothing.
    stranger = api_for(member("eve"))
    assert stranger.get(f"/api/cases/{case.pk}/series/{series.pk}/stack/").status_code == 404


def test_a_slice_whose_stored_file_is_gone_is_named_not_a_500(project, lead, tmp_path):
    case, series = _ingest(project, _ct(seed=3), tmp_path)
    gone = Instance.objects.get(series=series, instance_number=5)
    ingest.storage_path(gone.file_path).unlink()

    body = _stack(lead, case, series)

    assert body["regular"] is False and body["sorted_by"] == "instance_number"
    [problem] = body["problems"]
    assert problem.startswith("The stored file of 1 slice(s) could not be read")
    assert f"instance(s) {gone.pk})" in problem
