"""NIfTI export of a CT series with its 3D boxes (issue 21, part 6): the volume on its own grid
with an affine (RAS) that puts every voxel where pydicom's ImagePositionPatient,
ImageOrientationPatient and PixelSpacing put the pixel, on the synthetic CT and on series made
from pydicom's CT_small.dcm (one slice as it is; an oblique series of five); the boxes' label
volume on the right voxels and the sidecar in the same world; a header without patient data;
through the export API with its audit event; bad requests get a 4xx naming what was wrong."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from active_learning.ml import synthetic_ct
from annotations.models import AuditEvent, Instance, Series
from annotations.services import ingest
from annotations.services.ingest import storage_path
from tests.annotations import test_volume_box_exports
from tests.annotations.test_exports import export_bytes
from tests.annotations.test_volume_boxes import _ingest

pytestmark = pytest.mark.django_db

labelled_ct = test_volume_box_exports.labelled_ct
CT_SMALL = Path(get_testdata_file("CT_small.dcm"))  # type: ignore[arg-type]


@pytest.fixture
def ct_project(project):
    project.modality = "CT"
    project.save(update_fields=["modality"])
    return project


def _unzip(data: bytes, tmp_path: Path) -> Path:
    folder = tmp_path / "unzipped"
    zipfile.ZipFile(io.BytesIO(data)).extractall(folder)
    return folder


def _ras(point_lps) -> np.ndarray:
    return np.asarray(point_lps, float) * [-1, -1, 1]


def _assert_grid_matches_pydicom(image: nib.Nifti1Image, series: Series) -> None:
    """Every stored slice, read with pydicom, is one k of the volume: the affine maps voxel
    (i, j, k) to its ImagePositionPatient + i columns + j rows (RAS), and the voxels hold its
    pixels after the rescale."""
    affine = image.affine
    assert np.allclose(image.header.get_sform(), affine)
    assert image.header["sform_code"] == 1 and image.header["qform_code"] == 1
    values = np.asarray(image.dataobj)  # any NIfTI scaling applied, as viewers do
    seen = set()
    for instance in Instance.objects.filter(series=series):
        ds = pydicom.dcmread(storage_path(instance.file_path))
        ipp = np.asarray(ds.ImagePositionPatient, float)
        row, column = np.asarray(ds.ImageOrientationPatient, float).reshape(2, 3)
        dr, dc = (float(v) for v in ds.PixelSpacing)
        origin_ras = _ras(ipp)
        ks = [
            k
            for k in range(image.shape[2])
            if np.allclose((affine @ [0, 0, k, 1])[:3], origin_ras, atol=1e-3)
        ]
        assert len(ks) == 1, f"slice at {ipp} is not one k of the grid"
        k = ks[0]
        seen.add(k)
        for i, j in ((0, 0), (5, 0), (0, 7), (ds.Columns - 1, ds.Rows - 1)):
            expected = _ras(ipp + i * dc * row + j * dr * column)
            assert (affine @ [i, j, k, 1])[:3] == pytest.approx(expected, abs=1e-3)
        slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
        hu = ds.pixel_array.astype(float) * slope + intercept
        assert np.allclose(values[:, :, k], hu.T)
    assert seen == set(range(image.shape[2]))


def test_synthetic_ct_exports_on_its_grid_with_the_affine_pydicom_gives(
    ct_project, labelled_ct, tmp_path
):
    _, series, _ = labelled_ct
    data = export_bytes(ct_project, "nifti-zip")
    folder = _unzip(data, tmp_path)
    stem = f"series-{series.pk}"
    image = nib.load(folder / f"{stem}.nii.gz")
    assert image.shape == (48, 48, 12)  # columns, rows, slices: no resampling
    assert image.get_data_dtype() == np.int16  # Hounsfield units as they are: no scaling
    assert np.isnan(image.header["scl_slope"]) or image.header["scl_slope"] in (0, 1)
    _assert_grid_matches_pydicom(image, series)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["series"] == [{"series_id": series.pk, "slices": 12, "boxes": 1}]


def test_the_boxes_land_on_their_voxels_and_the_sidecar_in_the_same_world(
    ct_project, labelled_ct, tmp_path
):
    case, series, box = labelled_ct  # pixels x 10..18, y 12..18 on slices 3..8
    folder = _unzip(export_bytes(ct_project, "nifti-zip"), tmp_path)
    stem = f"series-{series.pk}"
    labels = nib.load(folder / f"{stem}_boxes.nii.gz")
    image = nib.load(folder / f"{stem}.nii.gz")
    assert np.allclose(labels.affine, image.affine) and labels.shape == image.shape
    assert labels.header.get_intent()[0] == "label"
    values = np.asarray(labels.dataobj)
    expected = np.zeros(values.shape, bool)
    expected[10:18, 12:18, 2:8] = True  # columns 10..17, rows 12..17, slices 3..8 (0-based 2..7)
    assert np.array_equal(values == 1, expected)
    assert set(np.unique(values)) == {0, 1}  # the 2D box is not in a volume export

    sidecar = json.loads((folder / f"{stem}_boxes.json").read_text())
    (described,) = sidecar["boxes"]
    assert described["label"] == 1 and described["finding"] == "nodule"
    assert described["case_id"] == case.pk and described["slices"] == [3, 8]
    assert described["voxels"] == {"first": [10, 12, 2], "last": [17, 17, 7]}
    # The box's edges in RAS: the stored patient mm (LPS) with x and y turned, and the label
    # volume's outer voxel faces through the NIfTI's own affine.
    corners_lps = np.array([box.patient_mm["min"], box.patient_mm["max"]]) * [-1, -1, 1]
    assert described["ras_mm"]["min"] == pytest.approx(corners_lps.min(axis=0), abs=1e-3)
    assert described["ras_mm"]["max"] == pytest.approx(corners_lps.max(axis=0), abs=1e-3)
    faces = np.array([(labels.affine @ [*p, 1])[:3] for p in ([9.5, 11.5, 1.5], [17.5, 17.5, 7.5])])
    assert described["ras_mm"]["min"] == pytest.approx(faces.min(axis=0), abs=1e-3)
    assert described["ras_mm"]["max"] == pytest.approx(faces.max(axis=0), abs=1e-3)


def _ct_small_series(tmp_path: Path, slices: int) -> list[Path]:
    """CT_small.dcm as it is (one slice), or ``slices`` copies along an oblique normal: rows
    turned 30 degrees about z, columns running to the feet (a coronal-oblique series), 3 mm
    apart, each slice's pixels shifted so the slices differ, InstanceNumbers reversed."""
    if slices == 1:
        return [CT_SMALL]
    source = pydicom.dcmread(CT_SMALL)
    row = np.array([np.cos(np.pi / 6), np.sin(np.pi / 6), 0.0])
    column = np.array([0.0, 0.0, -1.0])
    normal = np.cross(row, column)
    study, series = generate_uid(), generate_uid()
    paths = []
    for k in range(slices):
        ds = pydicom.dcmread(CT_SMALL)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = slices - k
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row, *column)]
        position = np.asarray(source.ImagePositionPatient, float) + 3.0 * k * normal
        ds.ImagePositionPatient = [f"{v:.4f}" for v in position]
        ds.SliceThickness = ds.SpacingBetweenSlices = 3.0
        ds.PixelData = (source.pixel_array + 10 * k).astype(source.pixel_array.dtype).tobytes()
        path = tmp_path / f"oblique-{k}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.mark.parametrize("slices", [1, 5])
def test_ct_small_exports_with_the_affine_pydicom_gives(ct_project, tmp_path, slices):
    for path in _ct_small_series(tmp_path, slices):
        ingest.ingest_dicom_path(project=ct_project, path=path)
    series = Series.objects.get(study__project=ct_project)
    folder = _unzip(export_bytes(ct_project, "nifti-zip", series_id=series.pk), tmp_path)
    image = nib.load(folder / f"series-{series.pk}.nii.gz")
    assert image.shape == (128, 128, slices)
    _assert_grid_matches_pydicom(image, series)
    # The depth of a voxel: the slice step (3 mm) or, for one slice, its thickness (5 mm).
    assert image.header.get_zooms()[2] == pytest.approx(3.0 if slices > 1 else 5.0)
    # No patient data in the header: the source's name and ID are nowhere in it, and its
    # free-text fields say only what the file is.
    source = pydicom.dcmread(CT_SMALL)
    raw = image.header.binaryblock
    for value in (str(source.PatientName), str(source.PatientID)):
        assert value.encode() not in raw
    assert image.header["descrip"].tobytes().rstrip(b"\0") == f"MedLoop series {series.pk}".encode()
    assert image.header["aux_file"].tobytes().strip(b"\0") == b""
    assert image.header["db_name"].tobytes().strip(b"\0") == b""
    assert len(image.header.extensions) == 0


def test_the_export_api_serves_one_series_with_an_audit_event(
    ct_project, labelled_ct, member, api_for
):
    _, series, _ = labelled_ct
    lead = member("lena", "lead")
    response = api_for(lead).get(
        f"/api/projects/{ct_project.pk}/exports/nifti-zip/?series={series.pk}"
    )
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/zip"
    assert (
        f'filename="project-{ct_project.pk}-series-{series.pk}-labels-nifti-zip.zip"'
        in response["Content-Disposition"]
    )
    names = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
    stem = f"series-{series.pk}"
    assert sorted(names) == sorted(
        [f"{stem}.nii.gz", f"{stem}_boxes.nii.gz", f"{stem}_boxes.json", "manifest.json"]
    )
    event = AuditEvent.objects.filter(action="project.export").get()
    assert event.actor_username == "lena"
    assert event.detail["format"] == "nifti-zip" and event.detail["series"] == series.pk


def test_bad_nifti_requests_get_a_4xx_naming_what_was_wrong(project, member, api_for, tmp_path):
    _, _, series = _ingest(project, tmp_path / "ct")
    lead = member("lena", "lead")
    client = api_for(lead)
    url = f"/api/projects/{project.pk}/exports/"

    # The project is a radiograph (DX) project: its images are 2D.
    response = client.get(url + "nifti-zip/")
    assert response.status_code == 400
    assert "2D" in response.json()["message"] and "coco" in response.json()["message"]

    project.modality = "CT"
    project.save(update_fields=["modality"])
    for query, status, needle in [
        ("nifti-zip/?series=999999", 404, "Series 999999 is not a series of project"),
        ("nifti-zip/?series=abc", 400, "series must be a series id"),
        (f"coco/?series={series.pk}", 400, "nifti-zip export only"),
    ]:
        response = client.get(url + query)
        assert response.status_code == status, query
        assert needle in response.json()["message"], query

    # A series with a gap has no single grid: it is refused with the gap named.
    datasets = synthetic_ct.slice_datasets(synthetic_ct.generate_series(7, 12, 32))
    for path in synthetic_ct.write_series(datasets[:4] + datasets[6:], tmp_path / "gap"):
        ingest.ingest_dicom_path(project=project, path=path)
    gapped = Series.objects.exclude(pk=series.pk).get(study__project=project)
    response = client.get(url + f"nifti-zip/?series={gapped.pk}")
    assert response.status_code == 400
    assert "not a regular volume" in response.json()["message"]
    assert "Missing slices" in response.json()["message"]
    # Nothing refused was audited as an export.
    assert not AuditEvent.objects.filter(action="project.export").exists()
