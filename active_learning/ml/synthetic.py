"""Deterministic synthetic multimodal chest radiograph cases: DICOM image, boxes, clinical text,
labs and a ground-truth report. Pure numpy + pydicom (never Django, never torch).

``generate_case(seed, index, size)`` always returns the same case for the same arguments; the
clinical side (findings, text, labs, identifiers) does not depend on ``size``, only the pixels do.
Lesion sizes and positions are drawn from ``box_priors.json`` (real VinDr-CXR and NIH boxes):
nodule, mass and consolidation at a prior position inside a lung, effusion, pneumothorax and
cardiomegaly anchored to the anatomy they belong to with prior sizes. Boxes are the bounding boxes
of what was actually drawn, in pixels (top-left origin).

Two keyword options make a pool that looks like a real worklist (the defaults keep every earlier
case exactly as it was):

- ``prevalence="vindr"`` draws each case's set of findings from VinDr-CXR's image-level
  combinations (``box_priors.json``'s ``"prevalence"``: about 77 % of cases with none of our six
  findings, cardiomegaly 15 %, effusion 7 %, nodule or mass 5.5 %, consolidation 2.4 %,
  pneumothorax 0.6 %, with their real co-occurrence); ``"balanced"`` (the default) keeps the
  earlier, nearly balanced mix with 30 % normal cases.
- ``difficulty`` in [0, 1] makes lesions fainter and smaller: each lesion's contrast is
  multiplied by ``1 - 0.75 * difficulty * u`` and its size (nodule, mass, consolidation and
  effusion extent, pneumothorax collapse, cardiac enlargement) by ``1 - 0.5 * difficulty * v``,
  ``u, v`` uniform in [0, 1] per lesion, from their own random stream. At 1.0 some nodules are a
  quarter as bright and half as wide as before: the informative cases a model misses are rare,
  as in real worklists. ``SyntheticCase.lesion_contrast`` keeps each lesion's factors.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

from active_learning.ml import synthetic_clinical as clinical
from active_learning.ml import synthetic_image as draw
from active_learning.ml.box_priors import load_priors

FINDING_CLASSES = ("nodule", "mass", "consolidation", "effusion", "pneumothorax", "cardiomegaly")
DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
FIELD_OF_VIEW_MM = 0.14 * 2048  # a 2048-pixel detector at 0.14 mm, whatever ``size`` is
MANIFEST = "manifest.json"
_LESION_COUNT_P = (0.3, 0.45, 0.17, 0.08)  # 0, 1, 2, 3 findings per case
_CLASS_P = (0.2, 0.13, 0.2, 0.17, 0.12, 0.18)
_GIVEN = {
    "M": ["ADAM", "BRUNO", "CARL", "DAVID", "EMIL", "FELIX", "GUSTAV", "HUGO", "IVAN", "JONAS"],
    "F": ["ANNA", "BEATE", "CLARA", "DORA", "ELLA", "FRIDA", "GRETA", "HANNA", "IDA", "JULIA"],
}
_FAMILY = ["SYNTHETIC", "TESTER", "MUSTER", "EXAMPLE", "SAMPLE", "PHANTOM", "DUMMY", "PROBE"]
PREVALENCES = ("balanced", "vindr")
_priors_cache: dict[str, Any] = {}


@dataclass(frozen=True)
class SyntheticBox:
    """A ground-truth box in pixels: top-left corner (x, y), width, height (floats)."""

    finding: str
    x: float
    y: float
    width: float
    height: float


@dataclass
class SyntheticCase:
    """One synthetic study: ``pixels`` is uint16 (rows, cols), 12-bit stored values, MONOCHROME2."""

    index: int
    pixels: np.ndarray
    boxes: list[SyntheticBox]
    findings: dict[str, bool]
    indication: str
    history: str
    labs: list[dict[str, Any]]
    report: dict[str, str]
    patient_name: str
    patient_id: str
    birth_date: str  # YYYYMMDD
    sex: str  # "M" or "F"
    age: int  # years at the study date
    accession_number: str
    study_date: str  # YYYYMMDD
    study_time: str  # HHMMSS
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    pixel_spacing_mm: float = field(default=0.56)
    # finding -> (contrast factor, size factor), 1.0 = the default look (see ``difficulty``)
    lesion_contrast: dict[str, tuple[float, float]] = field(default_factory=dict)


def _priors() -> dict[str, Any]:
    if not _priors_cache:
        _priors_cache.update(load_priors())
    return _priors_cache


def _prior_box(rng: np.random.Generator, finding: str) -> tuple[float, float, float, float]:
    """A (cx, cy, w, h) prior sample with a little jitter, as fractions of the image."""
    samples = _priors()["classes"][finding]["samples"]
    cx, cy, w, h = samples[int(rng.integers(len(samples)))]
    scale = np.exp(rng.normal(0, 0.1, 2))
    return cx + rng.normal(0, 0.01), cy + rng.normal(0, 0.01), w * scale[0], h * scale[1]


def _in_lung(
    rng: np.random.Generator, a: draw.Anatomy, finding: str
) -> tuple[float, float, float, float]:
    """A prior box centred well inside a lung (prior samples first, then any lung point)."""
    for attempt in range(60):
        cx, cy, w, h = _prior_box(rng, finding)
        if attempt >= 30:  # keep the prior size, take a uniform point in the lungs
            cx, cy = rng.uniform(0.1, 0.9), rng.uniform(0.15, 0.75)
        side = -1 if cx < a.mid else 1
        if float(a.lung(side, np.array(cx), np.array(cy))) > 0.8:
            return cx, cy, w, h
    return a.mid - 0.2, a.lung_top + 0.25, w, h


def _choose_findings(rng: np.random.Generator) -> dict[str, bool]:
    count = int(rng.choice(4, p=_LESION_COUNT_P))
    chosen = set(rng.choice(FINDING_CLASSES, size=count, replace=False, p=_CLASS_P).tolist())
    if "cardiomegaly" in chosen and count < 3 and rng.random() < 0.35:
        chosen.add("effusion")  # heart failure: big heart and pleural fluid go together
    return {name: name in chosen for name in FINDING_CLASSES}


def _choose_vindr_findings(rng: np.random.Generator) -> dict[str, bool]:
    """A set of findings drawn from VinDr-CXR's image-level combinations (real prevalence and
    co-occurrence; the empty set includes images whose findings are outside our six)."""
    combinations = _priors()["prevalence"]["combinations"]
    keys = sorted(combinations)
    counts = np.array([combinations[k] for k in keys], dtype=np.float64)
    chosen = set(keys[int(rng.choice(len(keys), p=counts / counts.sum()))].split("+")) - {""}
    return {name: name in chosen for name in FINDING_CLASSES}


def _lesion_factors(
    rng: np.random.Generator, findings: dict[str, bool], difficulty: float
) -> dict[str, tuple[float, float]]:
    """Per present finding, (contrast factor, size factor) in (0, 1]; 1.0 at difficulty 0."""
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty must lie in [0, 1], got {difficulty}")
    factors = {}
    for name in FINDING_CLASSES:
        if findings[name]:
            u, v = rng.random(2) if difficulty > 0 else (0.0, 0.0)
            factors[name] = (1.0 - 0.75 * difficulty * float(u), 1.0 - 0.5 * difficulty * float(v))
    return factors


def _draw_case(
    rng: np.random.Generator,
    findings: dict[str, bool],
    size: int,
    factors: dict[str, tuple[float, float]] | None = None,
) -> tuple[np.ndarray, dict[str, draw.Rect]]:
    """Pixels (uint16) and the normalised rectangle of every present finding; ``factors``:
    per finding (contrast, size) multipliers (1.0 when missing)."""
    factors = factors or {}

    def contrast(name: str) -> float:
        return factors.get(name, (1.0, 1.0))[0]

    def scale(name: str) -> float:
        return factors.get(name, (1.0, 1.0))[1]

    a = draw.random_anatomy(rng)
    g = draw.grid(size)
    plans: dict[str, tuple[float, float, float, float]] = {}
    for name in FINDING_CLASSES:
        if findings[name]:
            box = _in_lung(rng, a, name) if name in ("nodule", "mass", "consolidation") else None
            plans[name] = box or _prior_box(rng, name)
    if findings["cardiomegaly"]:
        cx, _, w, _ = plans["cardiomegaly"]
        # A smaller size factor leaves the heart nearer its normal size: borderline cardiomegaly.
        enlarged = float(np.clip(w / 2, 0.2, 0.27))
        a = replace(
            a,
            heart_cx=float(np.clip(cx, a.mid + 0.03, a.mid + 0.08)),
            heart_rx=enlarged - (enlarged - a.heart_rx) * (1 - scale("cardiomegaly")),
            heart_ry=a.heart_ry * 1.12 - a.heart_ry * 0.12 * (1 - scale("cardiomegaly")),
        )
    image, lung, vessels = draw.draw_anatomy(rng, a, g)
    rects: dict[str, draw.Rect] = {}
    lucent = np.zeros_like(lung)
    if findings["cardiomegaly"]:
        rects["cardiomegaly"] = draw.mask_rect(a.heart(*g)) or (0.3, 0.45, 0.8, 0.7)
    if findings["pneumothorax"]:
        cx, _, w, h = plans["pneumothorax"]
        side = -1 if cx < 0.5 else 1
        shrink = 1 - (1 - float(np.clip(1 - 0.5 * w, 0.68, 0.9))) * scale("pneumothorax")
        lucent, line = draw.pneumothorax(a, g, side, shrink, float(np.clip(1.4 * h, 0.15, 0.5)))
        image += contrast("pneumothorax") * (0.08 * line - 0.09 * lucent)
        rects["pneumothorax"] = draw.mask_rect(lucent) or (0.15, 0.1, 0.3, 0.4)
    image += 0.08 * vessels * lung * (1 - lucent)
    amplitude = rng.uniform(0.22, 0.3)
    if findings["effusion"]:
        cx, _, w, h = plans["effusion"]
        side = -1 if cx < 0.5 else 1
        k = scale("effusion")
        fluid = draw.effusion(
            a, g, side, float(np.clip(h, 0.07, 0.3)) * k, float(np.clip(w, 0.1, 0.35)) * k
        )
        # fluid has homogeneous soft-tissue density: it replaces whatever lay behind it
        fluid_opacity = contrast("effusion") * fluid
        image = image * (1 - fluid_opacity) + fluid_opacity * (0.6 + 0.04 * g[1])
        rects["effusion"] = draw.mask_rect(fluid) or (0.1, 0.6, 0.25, 0.75)
    for name in ("consolidation", "mass", "nodule"):
        if not findings[name]:
            continue
        cx, cy, w, h = plans[name]
        w, h = w * scale(name), h * scale(name)
        if name == "nodule":
            # small nodules may fall below the default 3 % floor (to 1.5 % at scale 0.5)
            radius = float(np.clip(np.sqrt(w * h), 0.03 * scale(name), 0.095)) / 2
            outline, opacity = draw.nodule(g, cx, cy, radius)
            fallback = (cx - radius, cy - radius, cx + radius, cy + radius)
        elif name == "mass":
            rx, ry = (float(np.clip(v, 0.115 * scale(name), 0.3)) / 2 for v in (w, h))
            outline, opacity = draw.mass(rng, g, cx, cy, rx, ry)
            fallback = (cx - rx, cy - ry, cx + rx, cy + ry)
        else:
            rx, ry = (float(np.clip(v, 0.06 * scale(name), 0.3)) / 2 for v in (w, h))
            outline, opacity = draw.consolidation(rng, g, cx, cy, rx, ry, lung)
            fallback = (cx - rx, cy - ry, cx + rx, cy + ry)
        image += amplitude * contrast(name) * opacity
        rects[name] = draw.mask_rect(outline) or fallback
    return draw.to_stored_values(rng, image), rects


def _box(name: str, rect: draw.Rect, size: int) -> SyntheticBox:
    x0, y0, x1, y1 = (float(np.clip(v * size, 0, size)) for v in rect)
    x1, y1 = max(x1, min(x0 + 1, size)), max(y1, min(y0 + 1, size))
    x0, y0 = min(x0, x1 - 1), min(y0, y1 - 1)
    return SyntheticBox(name, round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2))


def generate_case(
    seed: int,
    index: int,
    size: int = 512,
    *,
    prevalence: str = "balanced",
    difficulty: float = 0.0,
) -> SyntheticCase:
    """One case, identical for identical arguments; ``size`` = rows = columns (px);
    ``prevalence`` and ``difficulty`` as in the module docstring."""
    if prevalence not in PREVALENCES:
        raise ValueError(f"prevalence must be one of {PREVALENCES}, got {prevalence!r}")
    # The third stream is new: drawing the lesion factors from it leaves the first two (and so
    # every case made before these options existed) unchanged.
    study_rng, image_rng, lesion_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, index]).spawn(3)
    )
    if prevalence == "vindr":
        findings = _choose_vindr_findings(study_rng)
    else:
        findings = _choose_findings(study_rng)
    factors = _lesion_factors(lesion_rng, findings, difficulty)
    sex = "M" if study_rng.random() < 0.5 else "F"
    age = clinical.age_for(study_rng, findings)
    study_time = datetime(2024, 1, 1, 7) + timedelta(
        days=int(study_rng.integers(0, 366)), seconds=int(study_rng.integers(0, 13 * 3600))
    )
    birth = study_time - timedelta(days=int(age * 365.25 + study_rng.integers(1, 360)))
    indication, history = clinical.indication_and_history(study_rng, findings, age, sex)
    labs = clinical.labs_for(study_rng, findings, age, sex, study_time)
    given = _GIVEN[sex][int(study_rng.integers(10))]
    family = _FAMILY[int(study_rng.integers(len(_FAMILY)))]

    pixels, rects = _draw_case(image_rng, findings, size, factors)
    boxes = [_box(name, rects[name], size) for name in FINDING_CLASSES if name in rects]
    lesions = {
        b.finding: (
            (b.x + b.width / 2) / size,
            (b.y + b.height / 2) / size,
            b.width / size,
            b.height / size,
        )
        for b in boxes
    }
    report = clinical.report_for(findings, lesions, FIELD_OF_VIEW_MM)

    def uid(kind: str) -> str:
        return generate_uid(
            entropy_srcs=["medloop-synthetic", str(seed), str(index), str(size), kind]
        )

    digest = hashlib.sha256(f"medloop:{seed}:{index}:{size}".encode()).hexdigest()
    return SyntheticCase(
        index=index,
        pixels=pixels,
        boxes=boxes,
        findings=findings,
        indication=indication,
        history=history,
        labs=labs,
        report=report,
        patient_name=f"{family}^{given}",
        patient_id=f"SYN{seed}-{index:06d}",
        birth_date=birth.strftime("%Y%m%d"),
        sex=sex,
        age=age,
        accession_number="A" + str(int(digest[:15], 16))[:15],
        study_date=study_time.strftime("%Y%m%d"),
        study_time=study_time.strftime("%H%M%S"),
        study_instance_uid=uid("study"),
        series_instance_uid=uid("series"),
        sop_instance_uid=uid("instance"),
        pixel_spacing_mm=FIELD_OF_VIEW_MM / size,
        lesion_contrast=factors,
    )


def write_dicom(case: SyntheticCase, path: Path | str) -> Path:
    """Write ``case`` as a DX For Presentation DICOM Part 10 file (Explicit VR Little Endian)."""
    path = Path(path)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(DX_FOR_PRESENTATION)
    meta.MediaStorageSOPInstanceUID = UID(case.sop_instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "MEDLOOP_SYN_1"
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID = DX_FOR_PRESENTATION
    ds.SOPInstanceUID = case.sop_instance_uid
    ds.StudyInstanceUID = case.study_instance_uid
    ds.SeriesInstanceUID = case.series_instance_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = case.study_date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = case.study_time
    ds.AccessionNumber = case.accession_number
    ds.Modality = "DX"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.Manufacturer = "MedLoop Synthetic"
    ds.InstitutionName = "Synthetic General Hospital"
    ds.ReferringPhysicianName = "REFERRER^SYNTHETIC"
    ds.StudyDescription = "XR CHEST PA"
    ds.SeriesDescription = "CHEST PA"
    ds.PatientName = case.patient_name
    ds.PatientID = case.patient_id
    ds.PatientBirthDate = case.birth_date
    ds.PatientSex = case.sex
    ds.PatientAge = f"{case.age:03d}Y"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.ImageLaterality = "U"
    ds.PatientOrientation = ["L", "F"]
    ds.StudyID = case.accession_number[-8:]
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = case.pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    spacing = f"{case.pixel_spacing_mm:.4f}"
    ds.PixelSpacing = ds.ImagerPixelSpacing = [spacing, spacing]
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    low, high = np.percentile(case.pixels, [2, 99.5])
    ds.WindowCenter = f"{(low + high) / 2:.0f}"
    ds.WindowWidth = f"{max(high - low, 1):.0f}"
    ds.PresentationLUTShape = "IDENTITY"
    ds.PixelData = np.ascontiguousarray(case.pixels, dtype="<u2").tobytes()
    ds["PixelData"].VR = "OW"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def file_name(case: SyntheticCase) -> str:
    """The DICOM file name ``generate_dataset`` uses for ``case``."""
    return f"case_{case.index:05d}.dcm"


def manifest_entry(case: SyntheticCase) -> dict[str, Any]:
    """JSON-ready clinical context and ground truth of ``case`` (keyed by its accession number)."""
    return {
        "file": file_name(case),
        "index": case.index,
        "accession_number": case.accession_number,
        "patient_id": case.patient_id,
        "study_instance_uid": case.study_instance_uid,
        "sop_instance_uid": case.sop_instance_uid,
        "indication": case.indication,
        "history": case.history,
        "labs": case.labs,
        "findings": case.findings,
        "boxes": [asdict(b) for b in case.boxes],
        "report": case.report,
    }


def generate_dataset(
    seed: int,
    count: int,
    out_dir: Path | str,
    size: int = 512,
    *,
    prevalence: str = "balanced",
    difficulty: float = 0.0,
) -> list[SyntheticCase]:
    """Write cases 0..count-1 as ``case_NNNNN.dcm`` plus ``manifest.json`` (a list of
    ``manifest_entry`` dicts) under ``out_dir``; returns the cases."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cases = [
        generate_case(seed, index, size, prevalence=prevalence, difficulty=difficulty)
        for index in range(count)
    ]
    for case in cases:
        write_dicom(case, out / file_name(case))
    text = json.dumps([manifest_entry(c) for c in cases], indent=1)
    (out / MANIFEST).write_text(text + "\n", encoding="utf-8")
    return cases


def load_manifest(directory: Path | str) -> list[dict[str, Any]]:
    """The list of ``manifest_entry`` dicts written by ``generate_dataset`` in ``directory``."""
    with open(Path(directory) / MANIFEST, encoding="utf-8") as handle:
        entries: list[dict[str, Any]] = json.load(handle)
    return entries
