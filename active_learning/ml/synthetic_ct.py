"""Deterministic synthetic chest CT series: one single-frame CT Image Storage instance per axial
slice, in Hounsfield units (stored unsigned with RescaleIntercept -1024), with the geometry a
scanner writes (ImagePositionPatient, ImageOrientationPatient, PixelSpacing, SliceThickness).
Pure numpy + pydicom (never Django, never torch).

The anatomy is coarse but has the densities that matter for windowing: air -1000, lungs about
-850, fat -100, soft tissue and heart 40, vertebrae and ribs 300-700 HU. Nodules are solid
spheres (about 30 HU) inside a lung; their diameters follow the LIDC-IDRI shape: most 3-10 mm,
a few up to 30 mm (log-normal, median 6 mm, clipped to [3, 30]).

``generate_series(seed, slices, size)`` always returns the same volume for the same arguments;
``slice_datasets`` turns it into pydicom datasets (a test may alter them: lie in InstanceNumber,
drop a slice, tilt one) and ``write_series`` writes Part 10 files to ingest."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

from active_learning.ml.volumes import Box3D, LabelledVolume

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
FIELD_OF_VIEW_MM = 350.0
SLICE_THICKNESS_MM = 2.5
RESCALE_INTERCEPT = -1024
LUNG_HU = -850.0
# LIDC-IDRI: most nodules 3-10 mm, some up to 30 mm.
NODULE_MEDIAN_MM, NODULE_SIGMA, NODULE_MIN_MM, NODULE_MAX_MM = 6.0, 0.5, 3.0, 30.0


@dataclass(frozen=True)
class Nodule:
    """A spherical nodule: centre in patient coordinates (x, y, z mm, LPS) and diameter (mm)."""

    center_mm: tuple[float, float, float]
    diameter_mm: float


@dataclass
class SyntheticSeries:
    """``hu``: (slices, rows, columns) int16 Hounsfield units, slice 0 the most inferior;
    ``origin_mm``: ImagePositionPatient of slice 0; slices are ``slice_spacing_mm`` apart along
    +z and the pixels ``pixel_spacing_mm`` apart in x and y."""

    hu: np.ndarray
    pixel_spacing_mm: float
    slice_spacing_mm: float
    origin_mm: tuple[float, float, float]
    nodules: list[Nodule] = field(default_factory=list)
    patient_id: str = ""
    patient_name: str = ""
    accession_number: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    seed: int = 0


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float):
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def generate_series(
    seed: int = 0,
    slices: int = 60,
    size: int = 128,
    *,
    slice_spacing_mm: float = SLICE_THICKNESS_MM,
    nodules: int = 2,
    field_of_view_mm: float = FIELD_OF_VIEW_MM,
    nodule_diameters_mm: Sequence[float] | None = None,
) -> SyntheticSeries:
    """A chest CT volume of ``slices`` axial slices of ``size`` x ``size`` pixels covering a
    ``field_of_view_mm`` field of view (350 mm: an adult chest; a smaller one gives the small
    volumes the 3D detector's tests and bench train on at 1.5-2 mm pixels), with ``nodules``
    nodules (see the module docstring), or one of each diameter in ``nodule_diameters_mm``."""
    if nodule_diameters_mm is not None:
        nodules = len(nodule_diameters_mm)
    seeds = [seed, slices, size, nodules]
    if field_of_view_mm != FIELD_OF_VIEW_MM:  # the default's volumes stay what they were
        seeds.append(round(field_of_view_mm * 1000))
    rng = np.random.default_rng(seeds)
    pixel = field_of_view_mm / size
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    c = size / 2
    hu = np.full((slices, size, size), -1000.0)
    for k in range(slices):
        t = (k + 0.5) / slices  # 0 at the feet end, 1 at the head end of the scan
        body = _ellipse(yy, xx, c, c, 0.34 * size, 0.45 * size)
        inner = _ellipse(yy, xx, c, c, 0.31 * size, 0.42 * size)
        hu[k][body] = -100.0  # subcutaneous fat
        hu[k][inner] = 40.0
        # Lungs: widest low in the chest, tapering to the apices; the diaphragm domes below.
        lung_scale = np.clip(1.2 * np.sin(np.pi * (0.15 + 0.85 * t)), 0.0, 1.0)
        if lung_scale > 0.05:
            for side in (-1, 1):
                lung = _ellipse(
                    yy,
                    xx,
                    c - 0.02 * size,
                    c + side * 0.2 * size,
                    0.24 * size * lung_scale,
                    0.15 * size * lung_scale,
                )
                hu[k][lung] = LUNG_HU
        heart_scale = np.clip(1.4 * np.sin(np.pi * min(1.0, 1.4 * t)), 0.0, 1.0)
        if heart_scale > 0.1 and t < 0.7:
            heart = _ellipse(yy, xx, c + 0.02 * size, c + 0.04 * size, 0.14 * size * heart_scale,
                             0.12 * size * heart_scale)  # fmt: skip
            hu[k][heart] = 45.0
        spine = _ellipse(yy, xx, c + 0.24 * size, c, 0.06 * size, 0.06 * size)
        hu[k][spine] = 700.0
        canal = _ellipse(yy, xx, c + 0.26 * size, c, 0.02 * size, 0.02 * size)
        hu[k][canal] = 20.0
        if k % 4 < 2:  # ribs cut obliquely: bright arcs in about half of the slices
            ring = _ellipse(yy, xx, c, c, 0.305 * size, 0.415 * size) & ~_ellipse(
                yy, xx, c, c, 0.285 * size, 0.395 * size
            )
            hu[k][ring & (np.abs(yy - c) > 0.1 * size)] = 300.0

    origin = (-field_of_view_mm / 2, -field_of_view_mm / 2, -slices * slice_spacing_mm / 2)
    zz = np.arange(slices) * slice_spacing_mm + origin[2]
    found: list[Nodule] = []
    lung_voxels = np.argwhere(hu == LUNG_HU)  # before noise: lung, never the air around
    for n in range(nodules if len(lung_voxels) else 0):
        diameter = float(
            np.clip(
                rng.lognormal(np.log(NODULE_MEDIAN_MM), NODULE_SIGMA), NODULE_MIN_MM, NODULE_MAX_MM
            )
        )
        if nodule_diameters_mm is not None:
            diameter = float(nodule_diameters_mm[n])
        k, row, col = lung_voxels[rng.integers(len(lung_voxels))]
        center = (origin[0] + col * pixel, origin[1] + row * pixel, float(zz[k]))
        radius = diameter / 2
        for kk in range(slices):
            dz = zz[kk] - center[2]
            if abs(dz) > radius:
                continue
            r = np.sqrt(radius**2 - dz**2) / pixel
            disc = _ellipse(yy, xx, row, col, max(r, 0.5), max(r, 0.5))
            hu[kk][disc] = 30.0
        found.append(Nodule(center_mm=center, diameter_mm=round(diameter, 2)))
    hu += rng.normal(0.0, 12.0, hu.shape)

    def uid(kind: str) -> str:
        return generate_uid(entropy_srcs=["medloop-synthetic-ct", str(seed), str(size), kind])

    digest = hashlib.sha256(f"medloop-ct:{seed}:{slices}:{size}".encode()).hexdigest()
    return SyntheticSeries(
        hu=np.clip(np.round(hu), -1024, 3071).astype(np.int16),
        pixel_spacing_mm=pixel,
        slice_spacing_mm=slice_spacing_mm,
        origin_mm=origin,
        nodules=found,
        patient_id=f"SYNCT{seed}",
        patient_name=f"SYNTHETIC^CT{seed}",
        accession_number="C" + str(int(digest[:15], 16))[:15],
        study_instance_uid=uid("study"),
        series_instance_uid=uid("series"),
        seed=seed,
    )


def nodule_boxes(series: SyntheticSeries, finding: str = "nodule") -> list[Box3D]:
    """Each nodule's bounding box in the series' voxels (:mod:`active_learning.ml.volumes`:
    columns, rows, slices 0-based, slice 0 the first in position order): the sphere's extent
    along each axis, from its centre and diameter."""
    ox, oy, oz = series.origin_mm
    pixel, spacing = series.pixel_spacing_mm, series.slice_spacing_mm
    boxes = []
    for nodule in series.nodules:
        x, y, z = nodule.center_mm
        radius = nodule.diameter_mm / 2
        # Pixel (c, r) is centred at (c + 0.5, r + 0.5) in box coordinates, slice k at k + 0.5.
        boxes.append(
            Box3D(
                finding,
                x=(x - ox - radius) / pixel + 0.5,
                y=(y - oy - radius) / pixel + 0.5,
                width=nodule.diameter_mm / pixel,
                height=nodule.diameter_mm / pixel,
                z=(z - oz - radius) / spacing + 0.5,
                depth=nodule.diameter_mm / spacing,
            )
        )
    return boxes


def labelled_volume(series: SyntheticSeries, case_id: str = "") -> LabelledVolume:
    """The series as a labelled volume (HU, its spacing, its nodules' boxes), as
    ``active_learning.services.case_inputs`` builds one from the ingested slices."""
    return LabelledVolume(
        case_id=case_id or series.series_instance_uid,
        image=series.hu,
        voxel_spacing_mm=(series.slice_spacing_mm, series.pixel_spacing_mm,
                          series.pixel_spacing_mm),
        boxes=tuple(nodule_boxes(series)),
        findings={"nodule": bool(series.nodules)},
        series_id=series.series_instance_uid,
    )  # fmt: skip


def slice_datasets(series: SyntheticSeries) -> list[Dataset]:
    """One CT Image Storage dataset per slice (slice 0 first, InstanceNumber 1, 2, ...)."""
    out = []
    spacing = f"{series.pixel_spacing_mm:.6f}".rstrip("0").rstrip(".")
    for k, hu in enumerate(series.hu):
        sop_uid = generate_uid(
            entropy_srcs=["medloop-synthetic-ct", series.series_instance_uid, str(k)]
        )
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = UID(CT_IMAGE_STORAGE)
        meta.MediaStorageSOPInstanceUID = UID(sop_uid)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = series.study_instance_uid
        ds.SeriesInstanceUID = series.series_instance_uid
        ds.FrameOfReferenceUID = generate_uid(
            entropy_srcs=["medloop-synthetic-ct", series.series_instance_uid, "frame"]
        )
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20260301"
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "101500"
        ds.AccessionNumber = series.accession_number
        ds.Modality = "CT"
        ds.Manufacturer = "MedLoop Synthetic"
        ds.StudyDescription = "CT CHEST"
        ds.SeriesDescription = "CHEST AXIAL"
        ds.PatientName = series.patient_name
        ds.PatientID = series.patient_id
        ds.PatientBirthDate = "19600101"
        ds.PatientSex = "O"
        ds.BodyPartExamined = "CHEST"
        ds.StudyID = "1"
        ds.SeriesNumber = 2
        ds.InstanceNumber = k + 1
        ds.PatientPosition = "FFS"
        ds.ImagePositionPatient = [
            f"{series.origin_mm[0]:g}",
            f"{series.origin_mm[1]:g}",
            f"{series.origin_mm[2] + k * series.slice_spacing_mm:g}",
        ]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.SliceLocation = ds.ImagePositionPatient[2]
        ds.SliceThickness = f"{series.slice_spacing_mm:g}"
        ds.PixelSpacing = [spacing, spacing]
        ds.BurnedInAnnotation = "NO"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = hu.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = RESCALE_INTERCEPT, 1, "HU"
        ds.WindowCenter, ds.WindowWidth = "40", "400"
        stored = (hu.astype(np.int32) - RESCALE_INTERCEPT).astype("<u2")
        ds.PixelData = np.ascontiguousarray(stored).tobytes()
        ds["PixelData"].VR = "OW"
        out.append(ds)
    return out


def write_series(datasets: list[Dataset], out_dir: Path | str) -> list[Path]:
    """Write ``datasets`` as Part 10 files ``slice-000.dcm``, ... in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, ds in enumerate(datasets):
        path = out / f"slice-{i:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    """``python -m active_learning.ml.synthetic_ct OUT_DIR [--slices 60] [--size 512]``: write
    one synthetic chest CT series to ingest with ``manage.py import_dicom OUT_DIR``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slices", type=int, default=60)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--nodules", type=int, default=2)
    args = parser.parse_args(argv)
    series = generate_series(args.seed, args.slices, args.size, nodules=args.nodules)
    paths = write_series(slice_datasets(series), args.out_dir)
    print(f"{len(paths)} slices of {args.size}x{args.size} in {args.out_dir}")
    for nodule in series.nodules:
        x, y, z = nodule.center_mm
        print(f"nodule {nodule.diameter_mm:.1f} mm at ({x:.1f}, {y:.1f}, {z:.1f}) mm")


if __name__ == "__main__":
    main()
