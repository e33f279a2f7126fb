"""Synthetic multimodal chest radiograph cases: determinism, DICOM validity, ground truth, clinical
correlation. Pure Python: no Django, no database."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from active_learning.ml import synthetic
from active_learning.ml.synthetic import FINDING_CLASSES, generate_case

LOINC_UNITS = {
    "1988-5": "mg/L",
    "6690-2": "10*3/uL",
    "33762-6": "pg/mL",
    "718-7": "g/dL",
    "8310-5": "Cel",
    "59408-5": "%",
    "9279-1": "/min",
}


@pytest.fixture(scope="module")
def many_cases() -> list[synthetic.SyntheticCase]:
    return [generate_case(seed=5, index=i, size=64) for i in range(300)]


def _lab(case: synthetic.SyntheticCase, code: str) -> float | None:
    return next((lab["value"] for lab in case.labs if lab["code"] == code), None)


def test_same_seed_and_index_give_identical_case() -> None:
    a, b = generate_case(7, 3, 128), generate_case(7, 3, 128)
    assert np.array_equal(a.pixels, b.pixels)
    assert a.boxes == b.boxes
    assert (a.indication, a.history, a.labs, a.report) == (
        b.indication,
        b.history,
        b.labs,
        b.report,
    )
    assert a.sop_instance_uid == b.sop_instance_uid


def test_different_seed_or_index_gives_a_different_case() -> None:
    base = generate_case(7, 3, 128)
    for other in (generate_case(8, 3, 128), generate_case(7, 4, 128)):
        assert not np.array_equal(base.pixels, other.pixels)
        assert base.sop_instance_uid != other.sop_instance_uid
        assert base.accession_number != other.accession_number


def test_pixels_are_12_bit_unsigned_of_the_requested_size() -> None:
    case = generate_case(1, 0, 256)
    assert case.pixels.dtype == np.uint16
    assert case.pixels.shape == (256, 256)
    assert case.pixels.max() <= 4095


def test_lungs_are_darker_than_mediastinum_as_on_a_pa_radiograph() -> None:
    pixels = generate_case(2, 0, 256).pixels.astype(float)
    right_lung, mediastinum = pixels[80:120, 60:90].mean(), pixels[80:120, 120:136].mean()
    assert mediastinum > right_lung + 400


def test_boxes_lie_inside_the_image_and_match_the_findings(many_cases) -> None:
    for case in many_cases:
        assert set(case.findings) == set(FINDING_CLASSES)
        assert {b.finding for b in case.boxes} == {k for k, v in case.findings.items() if v}
        for box in case.boxes:
            assert box.width >= 1 and box.height >= 1
            assert box.x >= 0 and box.x + box.width <= 64
            assert box.y >= 0 and box.y + box.height <= 64


def test_every_class_appears_and_about_a_third_of_cases_are_normal(many_cases) -> None:
    counts = {name: sum(c.findings[name] for c in many_cases) for name in FINDING_CLASSES}
    assert all(n >= 15 for n in counts.values()), counts
    normal = sum(not any(c.findings.values()) for c in many_cases) / len(many_cases)
    assert 0.2 < normal < 0.4
    assert max(len(c.boxes) for c in many_cases) <= 3


def test_nodules_and_masses_are_brighter_than_the_mirror_image_place_in_the_other_lung() -> None:
    checked = 0
    for index in range(80):
        case = generate_case(9, index, 256)
        if len(case.boxes) != 1 or case.boxes[0].finding not in ("nodule", "mass"):
            continue
        box = case.boxes[0]
        x0, y0 = int(box.x), int(box.y)
        x1, y1 = int(box.x + box.width), int(box.y + box.height)
        lesion = case.pixels[y0:y1, x0:x1].astype(float).mean()
        mirror = case.pixels[y0:y1, 256 - x1 : 256 - x0].astype(float).mean()
        assert lesion > mirror + 100, (index, box)
        checked += 1
    assert checked >= 5


def test_crp_is_higher_with_consolidation_than_in_normal_cases(many_cases) -> None:
    def mean_crp(cases):
        return np.mean([v for c in cases if (v := _lab(c, "1988-5")) is not None])

    consolidation = [c for c in many_cases if c.findings["consolidation"]]
    normal = [c for c in many_cases if not any(c.findings.values())]
    assert mean_crp(consolidation) > 3 * mean_crp(normal)


def test_nt_probnp_is_higher_with_cardiomegaly_or_effusion(many_cases) -> None:
    def median_bnp(cases):
        return np.median([v for c in cases if (v := _lab(c, "33762-6")) is not None])

    heart = [c for c in many_cases if c.findings["cardiomegaly"] or c.findings["effusion"]]
    other = [c for c in many_cases if not (c.findings["cardiomegaly"] or c.findings["effusion"])]
    assert median_bnp(heart) > 5 * median_bnp(other)


def test_labs_use_loinc_codes_and_units_and_are_sometimes_missing(many_cases) -> None:
    for case in many_cases:
        for lab in case.labs:
            assert LOINC_UNITS[lab["code"]] == lab["unit"]
            assert lab["reference_low"] <= lab["reference_high"]
            assert lab["observed_at"][:4] == "2024" or lab["observed_at"][:4] == "2023"
    assert any(len(c.labs) < len(LOINC_UNITS) for c in many_cases)


def test_report_mentions_each_finding_and_a_normal_study_is_called_normal(many_cases) -> None:
    words = {
        "nodule": "nodule",
        "mass": "mass",
        "consolidation": "consolidation",
        "effusion": "effusion",
        "pneumothorax": "pneumothorax",
        "cardiomegaly": "cardiomegaly",
    }
    for case in many_cases:
        impression = case.report["impression"].lower()
        for name, present in case.findings.items():
            assert (words[name] in impression) == present, (name, impression)
        if not any(case.findings.values()):
            assert impression == "no acute cardiopulmonary abnormality."


def test_written_dicom_reads_back_with_the_same_pixels_and_required_attributes(
    tmp_path: Path,
) -> None:
    case = generate_case(4, 2, 128)
    path = synthetic.write_dicom(case, tmp_path / "x.dcm")
    ds = pydicom.dcmread(path)
    assert np.array_equal(ds.pixel_array, case.pixels)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.5.1.4.1.1.1.1"
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1.1"
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == case.sop_instance_uid
    assert (ds.Modality, ds.ViewPosition, ds.BodyPartExamined) == ("DX", "PA", "CHEST")
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 12, 11, 0)
    assert (ds.RescaleIntercept, ds.RescaleSlope) == (0, 1)
    assert ds.BurnedInAnnotation == "NO"
    assert float(ds.PixelSpacing[0]) == pytest.approx(0.14 * 2048 / 128, rel=1e-3)
    assert float(ds.WindowWidth) > 0
    assert ds.PatientID == case.patient_id and ds.AccessionNumber == case.accession_number
    assert str(ds.PatientName) == case.patient_name
    assert ds.StudyInstanceUID == case.study_instance_uid
    assert ds.SeriesInstanceUID == case.series_instance_uid
    for keyword in (
        "StudyDate",
        "StudyTime",
        "InstitutionName",
        "ReferringPhysicianName",
        "StudyDescription",
        "PatientBirthDate",
        "PatientSex",
        "ImagerPixelSpacing",
    ):
        assert keyword in ds
    assert len(ds.AccessionNumber) <= 16


def test_dataset_manifest_round_trips_clinical_context_and_ground_truth(tmp_path: Path) -> None:
    cases = synthetic.generate_dataset(seed=3, count=5, out_dir=tmp_path, size=64)
    entries = synthetic.load_manifest(tmp_path)
    assert json.loads((tmp_path / "manifest.json").read_text()) == entries
    assert len(entries) == 5
    for case, entry in zip(cases, entries, strict=True):
        assert (tmp_path / entry["file"]).exists()
        assert entry["accession_number"] == case.accession_number
        assert entry["patient_id"] == case.patient_id
        assert (entry["indication"], entry["history"]) == (case.indication, case.history)
        assert entry["labs"] == case.labs
        assert entry["findings"] == case.findings
        assert entry["report"] == case.report
        assert [synthetic.SyntheticBox(**b) for b in entry["boxes"]] == case.boxes
        ds = pydicom.dcmread(tmp_path / entry["file"])
        assert ds.AccessionNumber == entry["accession_number"]


def test_synthetic_module_never_imports_django_or_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import active_learning.ml.synthetic, active_learning.ml.box_priors; "
        "print(any(m.split('.')[0] in ('django', 'torch') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
