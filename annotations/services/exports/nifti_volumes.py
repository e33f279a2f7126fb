"""A CT or MR series as NIfTI with its 3D boxes, for 3D Slicer, ITK-SNAP and MONAI (issue 21).

Per series a zip holds three files that open aligned:

- ``series-<id>.nii.gz``: the volume on its acquisition grid (no resampling): voxel (i, j, k)
  is column i, row j of the k-th slice along the slice normal, holding the modality value
  after the DICOM rescale (Hounsfield units on CT; int16 when they fit). The affine (sform and
  qform, code "scanner") is built from ImagePositionPatient, ImageOrientationPatient,
  PixelSpacing and the step between slice positions, turned from DICOM's LPS to NIfTI's RAS
  (:mod:`annotations.dicom.volume_affine`).
- ``series-<id>_boxes.nii.gz``: a label volume on the same grid and affine (intent "label"):
  the voxels whose centres lie in box n hold n (1-based, the order of the sidecar). Viewers
  open a label volume beside its image without a plugin, which is why it is written.
- ``series-<id>_boxes.json``: the sidecar: each box's label value, finding, case, voxel range
  and its corners in the NIfTI's world (RAS, mm). It keeps what a label volume cannot: where
  boxes overlap (a voxel holds the later box's number), a box's identity and its exact edges.

The headers carry no patient data: ``descrip`` names MedLoop and the series' MedLoop id only;
``aux_file``, ``intent_name`` and ``db_name`` stay empty, and no extension is written.
``manifest.json`` lists the series written and those left out, with why."""

from __future__ import annotations

import json
import math
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import nibabel as nib
import numpy as np
import pydicom
from django.db.models import QuerySet

from annotations.dicom.volume_affine import LPS_TO_RAS, affine_lps, lps_to_ras_points
from annotations.models import Consent, Instance, Project, Series
from annotations.series_stacks import stack_and_headers
from annotations.services.errors import DomainError, InvalidInput
from annotations.services.exports.labels import LabelBox, LabelSet
from annotations.services.ingest import storage_path

VOLUME_MODALITIES = ("CT", "MR")


class UnknownSeries(DomainError):
    """``series=N`` names no series of the project (or one whose patient withdrew)."""

    status_code = 404
    code = "not_found"


class NotAVolume(InvalidInput):
    """The series cannot be written as one volume on one grid (a gap, mixed orientations...)."""


@dataclass(frozen=True)
class SeriesGrid:
    """A series as one voxel grid: its slices' instances in position order and the affine."""

    series_id: int
    instance_ids: list[int]
    columns: int
    rows: int
    affine_ras: np.ndarray


def check_request(project: Project, series_id: int | None) -> None:
    """Refuse, before anything is audited or written, a project whose modality has no volumes
    and a ``series_id`` that is not one of the project's series."""
    if project.modality not in VOLUME_MODALITIES:
        raise InvalidInput(
            f"The NIfTI export writes CT and MR volumes; project {project.pk} is"
            f" {project.get_modality_display().lower()} ({project.modality}), whose images are"
            " 2D: use the coco or sr-zip export.",
            modality=project.modality,
        )
    if series_id is None:
        return
    if not _series_of(project).filter(pk=series_id).exists():
        raise UnknownSeries(f"Series {series_id} is not a series of project {project.pk}.")
    series_grid(series_id)  # NotAVolume, naming why, for a series that is no volume


def _series_of(project: Project) -> QuerySet[Series]:
    return Series.objects.filter(study__project=project).exclude(
        study__patient__consent_status=Consent.WITHDRAWN
    )


def series_grid(series_id: int) -> SeriesGrid:
    """The series' voxel grid. Raises NotAVolume naming what keeps it from being one volume."""
    stack, headers = stack_and_headers(series_id)
    if not stack.instance_ids:
        raise NotAVolume(f"Series {series_id} has no visible slices.")
    if stack.problems:
        raise NotAVolume(
            f"Series {series_id} is not a regular volume, so it has no single voxel grid: "
            + " ".join(stack.problems)
        )
    ordered = [headers[i] for i in stack.instance_ids]
    first = ordered[0]
    if first.position is None or first.orientation is None or first.pixel_spacing is None:
        raise NotAVolume(
            f"Series {series_id} lacks ImagePositionPatient, ImageOrientationPatient or"
            " PixelSpacing, which place a voxel in space."
        )
    if len(ordered) > 1:
        last = ordered[-1].position
        step = (np.asarray(last) - np.asarray(first.position)) / (len(ordered) - 1)
    else:
        if not first.slice_thickness:
            raise NotAVolume(
                f"Series {series_id} is one slice without SliceThickness: its voxels' depth is"
                " unknown."
            )
        cosines = np.asarray(first.orientation, dtype=np.float64)
        step = np.cross(cosines[:3], cosines[3:]) * first.slice_thickness
    affine = affine_lps(
        first_position=first.position,
        orientation=first.orientation,
        pixel_spacing=first.pixel_spacing,
        step=step,
    )
    return SeriesGrid(
        series_id=series_id,
        instance_ids=list(stack.instance_ids),
        columns=first.columns,
        rows=first.rows,
        affine_ras=LPS_TO_RAS @ affine,
    )


def _modality_values(dataset: pydicom.Dataset) -> np.ndarray:
    """The slice's pixels after the DICOM rescale (HU on CT), (rows, columns): whole numbers
    (int32) when the rescale is, else float32."""
    slope = float(dataset.get("RescaleSlope", 1) or 1)
    intercept = float(dataset.get("RescaleIntercept", 0) or 0)
    pixels = dataset.pixel_array
    if slope.is_integer() and intercept.is_integer():
        return pixels.astype(np.int32) * int(slope) + int(intercept)
    return (pixels.astype(np.float64) * slope + intercept).astype(np.float32)


INT16 = np.iinfo(np.int16)


def volume_image(grid: SeriesGrid) -> nib.Nifti1Image:
    """The series' modality values (after the DICOM rescale: HU on CT) as a NIfTI image on
    ``grid``: int16 when they are whole numbers that fit (CT), else int32 or float32. The
    values are written as they are, so no NIfTI scaling is needed to read them."""
    files = dict(Instance.objects.filter(pk__in=grid.instance_ids).values_list("pk", "file_path"))
    shape = (grid.columns, grid.rows, len(grid.instance_ids))
    data = np.empty(shape, np.int16)
    for k, instance_id in enumerate(grid.instance_ids):
        values = _modality_values(pydicom.dcmread(storage_path(files[instance_id])))
        if values.dtype == np.float32 and data.dtype != np.float32:
            data = data.astype(np.float32)
        elif data.dtype == np.int16 and (values.min() < INT16.min or values.max() > INT16.max):
            data = data.astype(np.int32)
        data[:, :, k] = values.T
    image = nib.Nifti1Image(data, grid.affine_ras)
    _set_header(image, grid)
    return image


def _set_header(image: nib.Nifti1Image, grid: SeriesGrid) -> None:
    """Millimetres and seconds, the affine as sform and qform (scanner), no patient data."""
    image.header.set_xyzt_units("mm", "sec")
    image.set_sform(grid.affine_ras, code="scanner")
    image.set_qform(grid.affine_ras, code="scanner")
    image.header["descrip"] = f"MedLoop series {grid.series_id}".encode()
    image.header["aux_file"] = b""
    image.header["intent_name"] = b""
    image.header["db_name"] = b""


def voxel_range(box: LabelBox) -> tuple[list[int], list[int]]:
    """The voxels whose centres lie in the box: (first, last) of (i, j, k), inclusive. A pixel
    column c spans [c, c + 1), its centre at c + 0.5; slices are 1-based in the box."""
    assert box.slices is not None

    def cells(start: float, size: float) -> tuple[int, int]:
        return math.ceil(start - 0.5), math.floor(start + size - 0.5)

    (i0, i1), (j0, j1) = cells(box.x, box.width), cells(box.y, box.height)
    return [i0, j0, box.slices[0] - 1], [i1, j1, box.slices[1] - 1]


def boxes_on_grid(
    grid: SeriesGrid, boxes: list[tuple[int, LabelBox]], finding_index: dict[str, int]
) -> tuple[nib.Nifti1Image, dict[str, Any]]:
    """The label volume (box n's voxels hold n) and the sidecar for ``boxes`` ((case id, box))."""
    dtype = np.uint8 if len(boxes) < 256 else np.uint16
    labels = np.zeros((grid.columns, grid.rows, len(grid.instance_ids)), dtype)
    described = []
    for n, (case_id, box) in enumerate(boxes, start=1):
        low, high = voxel_range(box)
        low = [max(0, v) for v in low]
        high = [min(limit - 1, v) for v, limit in zip(high, labels.shape, strict=True)]
        labels[low[0] : high[0] + 1, low[1] : high[1] + 1, low[2] : high[2] + 1] = n
        assert box.patient_mm is not None
        corners = lps_to_ras_points(np.array([box.patient_mm["min"], box.patient_mm["max"]]))
        ras_min, ras_max = corners.min(axis=0), corners.max(axis=0)
        described.append(
            {
                "label": n,
                "finding": box.finding,
                "class_index": finding_index[box.finding],
                "case_id": case_id,
                "slices": list(box.slices or ()),
                "voxels": {"first": low, "last": high},
                "ras_mm": {
                    "min": [round(float(v), 3) for v in ras_min],
                    "max": [round(float(v), 3) for v in ras_max],
                    "center": [round(float(v), 3) for v in (ras_min + ras_max) / 2],
                    "size": [round(float(v), 3) for v in ras_max - ras_min],
                },
            }
        )
    image = nib.Nifti1Image(labels, grid.affine_ras)
    _set_header(image, grid)
    image.header.set_intent("label")
    sidecar = {
        "coordinates": "world coordinates of the NIfTI files: RAS, mm (their sform)",
        "voxels": "i = column, j = row, k = slice along the normal, 0-based, inclusive",
        "boxes": described,
    }
    return image, sidecar


def write_nifti_zip(
    project: Project, label_set: LabelSet, out: IO[bytes], series_id: int | None = None
) -> None:
    """Write ``series_id``'s volume with its boxes, or every series holding a 3D box of the
    final labels, as the zip described above. Raises NotAVolume for a ``series_id`` that is no
    regular volume; other such series are left out and named in the manifest."""
    keys = [f["key"] for f in project.label_schema.get("findings", [])]
    finding_index = {key: n for n, key in enumerate(keys)}
    by_series: dict[int, list[tuple[int, LabelBox]]] = {}
    for label in label_set.labels:
        for box in label.boxes:
            if box.series_id is None or box.slices is None or box.patient_mm is None:
                continue
            finding_index.setdefault(box.finding, len(finding_index))
            by_series.setdefault(box.series_id, []).append((label.case.pk, box))
    wanted = [series_id] if series_id is not None else sorted(by_series)
    manifest: dict[str, Any] = {
        "model_version": label_set.model_version,
        "labels": {str(n): key for key, n in finding_index.items()},
        "series": [],
        "left_out": [],
    }
    with (
        tempfile.TemporaryDirectory(prefix="medloop-nifti-") as tmp,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        for sid in wanted:
            try:
                grid = series_grid(sid)
            except NotAVolume as exc:
                if series_id is not None:
                    raise
                manifest["left_out"].append({"series_id": sid, "why": exc.message})
                continue
            stem = f"series-{sid}"
            image, sidecar = boxes_on_grid(grid, by_series.get(sid, []), finding_index)
            for name, nifti in (
                (f"{stem}.nii.gz", volume_image(grid)),
                (f"{stem}_boxes.nii.gz", image),
            ):
                path = Path(tmp) / name
                nib.save(nifti, path)
                # Already gzip-compressed: stored as they are.
                archive.write(path, name, compress_type=zipfile.ZIP_STORED)
                path.unlink()
            sidecar.update(image=f"{stem}.nii.gz", label_volume=f"{stem}_boxes.nii.gz")
            archive.writestr(f"{stem}_boxes.json", json.dumps(sidecar, indent=1))
            manifest["series"].append(
                {"series_id": sid, "slices": len(grid.instance_ids), "boxes": len(sidecar["boxes"])}
            )
        archive.writestr("manifest.json", json.dumps(manifest, indent=1))
