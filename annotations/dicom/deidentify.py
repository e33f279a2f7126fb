"""De-identification applied to every DICOM dataset before it is stored (in memory only).

The rule is an **allow-list**: nothing survives that is not known to be safe. ``KEPT`` names
every attribute that may stay (what display, processing and the study need), each with the
check its value must pass: a numeric or binary value, a UID (replaced by a keyed one), a date
(shifted), a time, an age, a value from the standard's enumerated or defined terms, a coded
concept from the standard's code dictionaries (its meaning rewritten from the dictionary), or a
sequence whose items are filtered by the same table. Everything else is removed, at every
nesting level: free text (LO, LT, SH, ST, UT, UC, PN, AE, UR), unknown and private attributes,
overlays, curves, command and group-length elements. The file meta header is rebuilt from
scratch and the 128-byte preamble is zeroed.

This is a stricter form of DICOM PS3.15 Annex E, Basic Application Level Confidentiality
Profile (113100), with
- Retain Longitudinal Temporal Information with Modified Dates Option (113107): every DA and DT
  value that is kept is shifted back by a keyed per-patient offset of 1-365 days (times of day
  are kept), and Longitudinal Temporal Information Modified (0028,0303) is "MODIFIED";
- Retain Patient Characteristics Option (113108): Patient's Sex, Age, Size and Weight are kept
  (an age over 89 years becomes "090Y", as HIPAA Safe Harbor asks).
Every attribute the Basic Profile removes or empties is absent from ``KEPT`` (a test checks it
against the standard's Table E.1-1 as shipped by dicom-anonymizer), so the allow-list removes at
least what the profile removes.

UIDs are mapped by HMAC-SHA256 with the project's secret to 2.25 UIDs: the same source UID gives
the same replacement in every batch, process and restart, so series and references stay linked.
UIDs of the standard (1.2.840.10008.*) and identifiers of classes, syntaxes and coding schemes
are kept.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import cast

from pydicom.datadict import dictionary_has_tag, dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.sr._concepts_dict import concepts as _STANDARD_CONCEPTS
from pydicom.sr._snomed_dict import mapping as _SNOMED_MAPPING
from pydicom.tag import BaseTag
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

STANDARD_UID_ROOT = "1.2.840.10008."
MAX_DATE_SHIFT_DAYS = 365
PREAMBLE = b"\x00" * 128
METHOD_DESCRIPTION = "MedLoop allow-list; PS3.15 Basic, modified dates, patient chars"
# CID 7050 codes of the profile and of each option applied.
METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ("113108", "Retain Patient Characteristics Option"),
)
# Retain Patient Characteristics Option (113108).
RETAINED_CHARACTERISTICS = ("PatientSex", "PatientAge", "PatientSize", "PatientWeight")
# UI attributes that name a class, syntax or coding scheme, not an instance: never replaced.
KEPT_UID_KEYWORDS = (
    "SOPClassUID",
    "MediaStorageSOPClassUID",
    "ReferencedSOPClassUID",
    "TransferSyntaxUID",
    "ImplementationClassUID",
)
# Type 2 attributes of the Patient and General Study modules that every image IOD (and the
# exports built from the images, such as TID 1500 reports) needs present, if empty: added with
# no value when the allow-list left them out.
EMPTY_TYPE2 = (
    "PatientBirthDate",
    "PatientSex",
    "ReferringPhysicianName",
    "StudyID",
    "StudyDate",
    "StudyTime",
)
# The file meta header is rebuilt with these only: AE titles and addresses are dropped.
KEPT_FILE_META = ("MediaStorageSOPClassUID", "TransferSyntaxUID")


def _tag(keyword: str) -> BaseTag:
    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - a typo in the tables below
        raise KeyError(keyword)
    return BaseTag(tag)


# ---------------------------------------------------------------------------------------------
# The allow-list


@dataclass(frozen=True)
class Rule:
    """How a kept attribute's value is checked. ``kind``: number (binary numbers, AT, or DS/IS
    strings that parse as numbers), binary (OB/OW/OF/OD/OL/OV), uid (replaced by a keyed UID),
    date (DA/DT, shifted), time (TM, checked), age (AS, checked and capped), terms (CS values
    from ``terms``; ``prefix``: keep the leading values that are terms, for Image Type),
    manufacturer (mapped to a vendor's canonical name), code (a code sequence: items with a
    concept of the standard's dictionaries, meaning rewritten), sequence (items filtered by the
    same table)."""

    kind: str
    terms: frozenset[str] = frozenset()
    prefix: bool = False


def _terms(words: str, *phrases: str, prefix: bool = False) -> Rule:
    """Terms given as space-separated ``words``, plus ``phrases`` that contain a space."""
    return Rule("terms", frozenset(words.split()) | frozenset(phrases), prefix)


NUMBER, BINARY, UID_RULE = Rule("number"), Rule("binary"), Rule("uid")
DATE, TIME, AGE = Rule("date"), Rule("time"), Rule("age")
CODE, SEQUENCE, MANUFACTURER = Rule("code"), Rule("sequence"), Rule("manufacturer")
YES_NO = _terms("YES NO")

# PS3.3 C.7.3.1.1.1 Modality defined terms (current and retired), and SC as still seen.
MODALITIES = _terms(
    "AR ASMT AU BDUS BI BMD CFM CR CT CTPROTOCOL DG DMS DOC DX ECG EEG EMG EOG EPS ES FID GM "
    "HC HD IO IOL IVOCT IVUS KER KO LEN LS MG MR M3D NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV "
    "OSS OT PA PLAN POS PR PT PX REG RESP RF RG RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD RTRECORD "
    "RTSEGANN RTSTRUCT RWV SEG SM SMR SR SRF STAIN TEXTUREMAP TG US VA XA XAPROTOCOL XC "
    "AS CD CF CP CS DD DF DM DS EC FA FS LP MA MS OPR ST VF SC"
)
# PS3.16 Annex L Body Part Examined defined terms (the ones imaging studies use), and THORAX.
BODY_PARTS = _terms(
    "ABDOMEN ABDOMENPELVIS ADRENAL ANKLE AORTA ARM AXILLA BACK BLADDER BRAIN BREAST BRONCHUS "
    "BUTTOCK CALCANEUS CALF CAROTID CEREBELLUM CERVIX CHEEK CHEST CHESTABDOMEN CHESTABDPELVIS "
    "CIRCLEOFWILLIS CLAVICLE COCCYX COLON CORNEA CORONARYARTERY CSPINE CTSPINE DUODENUM EAR "
    "ELBOW ENTIREBODY ESOPHAGUS EXTREMITY EYE EYELID FACE FEMUR FINGER FOOT GALLBLADDER HAND "
    "HEAD HEADNECK HEART HIP HUMERUS IAC ILEUM ILIUM JAW JEJUNUM KIDNEY KNEE LARYNX LEG LIVER "
    "LSPINE LSSPINE LUNG MAXILLA MEDIASTINUM MOUTH NECK NECKCHEST NECKCHESTABDOMEN "
    "NECKCHESTABDPELV NOSE ORBIT OVARY PANCREAS PAROTID PATELLA PELVIS PENIS PHARYNX PROSTATE "
    "RADIUS RECTUM RIB SCALP SCAPULA SCLERA SCROTUM SHOULDER SKULL SPINE SPLEEN SSPINE STERNUM "
    "STOMACH SUBMANDIBULAR TESTIS THIGH THORAX THUMB THYMUS THYROID TIBIA TLSPINE TOE TONGUE "
    "TRACHEA TSPINE ULNA URETER URETHRA UTERUS VAGINA VULVA WHOLEBODY WRIST ZYGOMA"
)
# Image Type: value 1 and 2 are enumerated; later values are kept while they are known terms.
IMAGE_TYPES = _terms(
    "ORIGINAL DERIVED PRIMARY SECONDARY AXIAL LOCALIZER REFORMATTED MPR MIP MINIP PROJECTION "
    "VOLUME OTHER MIXED POST_PROCESSED FOR_PRESENTATION FOR_PROCESSING",
    "PROJECTION IMAGE",
    prefix=True,
)
# Vendors by a word of their name -> the canonical name kept. Anything else in Manufacturer is
# free text and removed; the canonical name carries nothing of the original beyond the vendor.
VENDORS = (
    (r"\bge\b|general electric", "GE Healthcare"),
    (r"siemens", "Siemens Healthineers"),
    (r"philips", "Philips"),
    (r"toshiba|canon", "Canon Medical Systems"),
    (r"fuji", "Fujifilm"),
    (r"agfa", "Agfa"),
    (r"carestream|kodak", "Carestream Health"),
    (r"konica|minolta", "Konica Minolta"),
    (r"hologic", "Hologic"),
    (r"samsung", "Samsung"),
    (r"shimadzu", "Shimadzu"),
    (r"hitachi", "Hitachi"),
    (r"united imaging|\buih\b", "United Imaging"),
    (r"varian", "Varian"),
    (r"elekta", "Elekta"),
    (r"esaote", "Esaote"),
    (r"mindray", "Mindray"),
    (r"medloop synthetic", "MedLoop Synthetic"),
)

_KEPT_KEYWORDS: dict[str, Rule] = {
    # Identity of the objects (UIDs replaced by keyed ones) and references between them.
    "SOPClassUID": UID_RULE,
    "SOPInstanceUID": UID_RULE,
    "StudyInstanceUID": UID_RULE,
    "SeriesInstanceUID": UID_RULE,
    "FrameOfReferenceUID": UID_RULE,
    "ReferencedImageSequence": SEQUENCE,
    "SourceImageSequence": SEQUENCE,
    "ReferencedSOPClassUID": UID_RULE,
    "ReferencedSOPInstanceUID": UID_RULE,
    "ReferencedFrameNumber": NUMBER,
    "SeriesNumber": NUMBER,
    "InstanceNumber": NUMBER,
    "AcquisitionNumber": NUMBER,
    # What the study needs: modality, anatomy, view, vendor, patient characteristics (113108).
    "Modality": MODALITIES,
    "BodyPartExamined": BODY_PARTS,
    "AnatomicRegionSequence": CODE,
    "ViewPosition": _terms(
        "AP PA LL RL RLD LLD RLO LLO LAT LATERAL CC MLO ML LM LMO XCCL XCCM FB SIO"
    ),
    "ViewCodeSequence": CODE,
    "Laterality": _terms("R L"),
    "ImageLaterality": _terms("R L U B"),
    "PatientPosition": _terms(
        "HFP HFS HFDR HFDL FFDR FFDL FFP FFS LFP LFS RFP RFS AFDR AFDL PFDR PFDL"
    ),
    "Manufacturer": MANUFACTURER,
    "PatientSex": _terms("M F O"),
    "PatientAge": AGE,
    "PatientSize": NUMBER,
    "PatientWeight": NUMBER,
    "ImageType": IMAGE_TYPES,
    "ConversionType": _terms("DV DI DF WSD SD SI DRW SYN"),
    # Dates (shifted, 113107) and times of day.
    "StudyDate": DATE,
    "SeriesDate": DATE,
    "AcquisitionDate": DATE,
    "ContentDate": DATE,
    "AcquisitionDateTime": DATE,
    "StudyTime": TIME,
    "SeriesTime": TIME,
    "AcquisitionTime": TIME,
    "ContentTime": TIME,
    # Pixels and how to decode them.
    "SamplesPerPixel": NUMBER,
    "PhotometricInterpretation": _terms(
        "MONOCHROME1 MONOCHROME2 RGB YBR_FULL YBR_FULL_422 YBR_PARTIAL_422 YBR_PARTIAL_420 "
        "YBR_ICT YBR_RCT XYB HSV ARGB CMYK",
        "PALETTE COLOR",
    ),
    "Rows": NUMBER,
    "Columns": NUMBER,
    "BitsAllocated": NUMBER,
    "BitsStored": NUMBER,
    "HighBit": NUMBER,
    "PixelRepresentation": NUMBER,
    "PlanarConfiguration": NUMBER,
    "PixelAspectRatio": NUMBER,
    "SmallestImagePixelValue": NUMBER,
    "LargestImagePixelValue": NUMBER,
    "PixelPaddingValue": NUMBER,
    "PixelPaddingRangeLimit": NUMBER,
    "NumberOfFrames": NUMBER,
    "FrameIncrementPointer": NUMBER,
    "FrameTime": NUMBER,
    "FrameTimeVector": NUMBER,
    "PixelData": BINARY,
    "FloatPixelData": BINARY,
    "DoubleFloatPixelData": BINARY,
    "RedPaletteColorLookupTableDescriptor": NUMBER,
    "GreenPaletteColorLookupTableDescriptor": NUMBER,
    "BluePaletteColorLookupTableDescriptor": NUMBER,
    "RedPaletteColorLookupTableData": BINARY,
    "GreenPaletteColorLookupTableData": BINARY,
    "BluePaletteColorLookupTableData": BINARY,
    "SegmentedRedPaletteColorLookupTableData": BINARY,
    "SegmentedGreenPaletteColorLookupTableData": BINARY,
    "SegmentedBluePaletteColorLookupTableData": BINARY,
    "BurnedInAnnotation": YES_NO,
    "RecognizableVisualFeatures": YES_NO,
    "LossyImageCompression": _terms("00 01"),
    "LossyImageCompressionRatio": NUMBER,
    "LossyImageCompressionMethod": _terms(
        "ISO_10918_1 ISO_14495_1 ISO_15444_1 ISO_15444_2 ISO_13818_2 ISO_14496_10 "
        "ISO_23008_2 ISO_18181_1"
    ),
    # Grey levels: modality LUT, VOI LUT, presentation.
    "RescaleIntercept": NUMBER,
    "RescaleSlope": NUMBER,
    "RescaleType": _terms("HU US OD MGML Z_EFF ED EDW HU_MOD PCT"),
    "WindowCenter": NUMBER,
    "WindowWidth": NUMBER,
    "VOILUTFunction": _terms("LINEAR LINEAR_EXACT SIGMOID"),
    "VOILUTSequence": SEQUENCE,
    "ModalityLUTSequence": SEQUENCE,
    "LUTDescriptor": NUMBER,
    "LUTData": BINARY,
    "PresentationLUTShape": _terms("IDENTITY INVERSE"),
    "PixelIntensityRelationship": _terms("LIN LOG DISP"),
    "PixelIntensityRelationshipSign": NUMBER,
    # Geometry: spacing, position and orientation (stacks, volumes, measurements in mm).
    "PixelSpacing": NUMBER,
    "ImagerPixelSpacing": NUMBER,
    "NominalScannedPixelSpacing": NUMBER,
    "PixelSpacingCalibrationType": _terms("GEOMETRY FIDUCIAL"),
    "EstimatedRadiographicMagnificationFactor": NUMBER,
    "DistanceSourceToDetector": NUMBER,
    "DistanceSourceToPatient": NUMBER,
    "SliceThickness": NUMBER,
    "SpacingBetweenSlices": NUMBER,
    "SliceLocation": NUMBER,
    "ImagePositionPatient": NUMBER,
    "ImageOrientationPatient": NUMBER,
    # Acquisition physics that models and subgroups use.
    "KVP": NUMBER,
    "ExposureTime": NUMBER,
    "XRayTubeCurrent": NUMBER,
    "Exposure": NUMBER,
    # Enhanced multi-frame images: the functional groups that carry the same facts per frame.
    "SharedFunctionalGroupsSequence": SEQUENCE,
    "PerFrameFunctionalGroupsSequence": SEQUENCE,
    "PixelMeasuresSequence": SEQUENCE,
    "PlanePositionSequence": SEQUENCE,
    "PlaneOrientationSequence": SEQUENCE,
    "PixelValueTransformationSequence": SEQUENCE,
    "FrameVOILUTSequence": SEQUENCE,
    "FrameContentSequence": SEQUENCE,
    "FrameAcquisitionNumber": NUMBER,
    "FrameAcquisitionDateTime": DATE,
    "FrameReferenceDateTime": DATE,
    "FrameAcquisitionDuration": NUMBER,
    "InStackPositionNumber": NUMBER,
    "TemporalPositionIndex": NUMBER,
    "DimensionIndexValues": NUMBER,
}
KEPT: dict[BaseTag, Rule] = {_tag(keyword): rule for keyword, rule in _KEPT_KEYWORDS.items()}
_KEPT_UID_TAGS = frozenset(_tag(k) for k in KEPT_UID_KEYWORDS)

_NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT"})
_BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV"})
_NUMBER_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_TIME = re.compile(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?")
_AGE = re.compile(r"\d{3}[DWMY]")
_UID_TEXT = re.compile(r"[0-9]+(\.[0-9]+)*")


def keyed_digest(secret: str, kind: str, value: str) -> bytes:
    """HMAC-SHA256 of ``value`` under the project's ``secret``, separated by ``kind``."""
    return hmac.new(secret.encode(), f"{kind}\x00{value}".encode(), hashlib.sha256).digest()


def pseudonym(secret: str, kind: str, value: str, length: int = 16) -> str:
    """A stable, non-reversible token for ``value`` (e.g. a patient ID) in this project."""
    return keyed_digest(secret, kind, value).hex()[:length].upper()


_SITE_CODE = re.compile(r"S-[0-9A-F]{8}")


def site_code(dataset: Dataset, secret: str) -> str:
    """A coarse, non-identifying code of the institution that made ``dataset``, for subgroup
    analysis by site: ``S-`` and eight hex digits of the HMAC of its Institution Name
    (0008,0080), upper-cased with everything but letters and digits dropped so that spellings
    differing in case, spaces or punctuation share a code. Without a name, a Clinical Trial
    Site ID (0012,0030) already of that form (a file MedLoop de-identified before) is kept;
    otherwise ``""``. The name is never kept, and without the project's secret the code can be
    neither traced back to it nor checked against a list of hospital names."""
    name = str(dataset.get("InstitutionName", "") or "")
    canonical = re.sub(r"[^0-9A-Z]", "", name.upper())
    if canonical:
        return "S-" + pseudonym(secret, "site", canonical, length=8)
    earlier = str(dataset.get("ClinicalTrialSiteID", "") or "").strip()
    return earlier if _SITE_CODE.fullmatch(earlier) else ""


def replacement_uid(secret: str, uid: str) -> str:
    """A keyed 2.25 UID (an integer below 2**128, as PS3.5 B.2 allows) for ``uid``."""
    return "2.25." + str(int.from_bytes(keyed_digest(secret, "uid", uid)[:16], "big"))


def date_shift_days(secret: str, patient_key: str) -> int:
    """Days (1..365, never 0) by which this patient's dates move back; keyed per project.
    ``patient_key`` is the patient's pseudonym (as ``deidentify`` returns it)."""
    digest = int.from_bytes(keyed_digest(secret, "date", patient_key)[:4], "big")
    return 1 + digest % MAX_DATE_SHIFT_DAYS


def patient_key_of(dataset: Dataset) -> str:
    """The source identity that keys the pseudonym and the date offset: the Patient ID, or
    without one the Patient Name and birth date."""
    return str(dataset.get("PatientID", "") or "") or (
        f"{dataset.get('PatientName', '')}|{dataset.get('PatientBirthDate', '')}"
    )


def shift_date(value: str, days: int) -> str:
    """A DA value (YYYYMMDD, or the old YYYY.MM.DD) moved back ``days``; "" when unparseable."""
    digits = value.strip().replace(".", "")
    if not re.fullmatch(r"\d{8}", digits):
        return ""
    try:
        original = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
        return (original - timedelta(days=days)).strftime("%Y%m%d")
    except (ValueError, OverflowError):
        return ""


def _shift_datetime(value: str, days: int) -> str:
    """A DT value with its date part moved back; the time and UTC offset are kept. A DT less
    precise than a day cannot be shifted exactly and becomes empty."""
    match = re.fullmatch(r"(\d{8})(.*)", value.strip())
    if match is None:
        return ""
    shifted = shift_date(match.group(1), days)
    return shifted + match.group(2) if shifted else ""


# ---------------------------------------------------------------------------------------------
# Burned-in annotation


# Modalities whose pixels often carry text (patient banners, labels, captured screens).
TEXT_PRONE_MODALITIES = frozenset(
    {
        "US",  # ultrasound: patient banner on the scanner screen
        "IVUS",  # intravascular ultrasound
        "BDUS",  # bone densitometry (ultrasonic)
        "OT",  # other: frequently screen captures
        "SC",  # secondary capture (not a defined term any more, still seen)
        "XC",  # external-camera photography
        "ES",  # endoscopy
        "GM",  # general microscopy
        "SM",  # slide microscopy: slide labels
        "OP",  # ophthalmic photography
        "DOC",  # scanned documents
        "TG",  # thermography
    }
)
# SOP classes whose images are captures, photographs or ultrasound, whatever the modality says.
TEXT_PRONE_SOP_CLASS_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture family (7, 7.1 .. 7.4)
    "1.2.840.10008.5.1.4.1.1.6.",  # Ultrasound Image (and retired variants)
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image
    "1.2.840.10008.5.1.4.1.1.77.1.",  # VL endoscopic, microscopic, photographic images
    "1.2.840.10008.5.1.4.1.1.104.",  # Encapsulated PDF / CDA documents
)


def _is_text_prone_sop_class(sop_class: str) -> bool:
    return any(
        sop_class == prefix.rstrip(".") or sop_class.startswith(prefix.rstrip(".") + ".")
        for prefix in TEXT_PRONE_SOP_CLASS_PREFIXES
    )


def quarantine_reason(dataset: Dataset) -> str | None:
    """Why the ORIGINAL ``dataset`` must be held for a lead's review before annotators see it,
    or None. Call it before ``deidentify`` (which keeps Burned In Annotation but not the
    evidence). Quarantined: Burned In Annotation (0028,0301) = YES; Recognizable Visual
    Features (0028,0302) = YES; and Burned In Annotation absent for a modality in
    TEXT_PRONE_MODALITIES or a SOP class in TEXT_PRONE_SOP_CLASS_PREFIXES."""
    present = "BurnedInAnnotation" in dataset
    values = [v.upper() for v in _values(dataset["BurnedInAnnotation"])] if present else []
    burned_in = "\\".join(values)
    if "YES" in values:
        return "Burned In Annotation is YES: the pixels carry identifying text."
    if values and values != ["NO"]:  # "YES\NO", a typo: only a plain NO clears an image
        return f"Burned In Annotation is {burned_in[:40]!r}, not a plain NO."
    if str(dataset.get("RecognizableVisualFeatures", "") or "").strip().upper() == "YES":
        return "Recognizable Visual Features is YES: the image may show the patient's face."
    if burned_in:
        return None
    modality = str(dataset.get("Modality", "") or "").strip().upper()
    if modality in TEXT_PRONE_MODALITIES:
        return f"Burned In Annotation is absent and modality {modality} often has text in pixels."
    sop_class = str(dataset.get("SOPClassUID", "") or "")
    if _is_text_prone_sop_class(sop_class):
        return (
            f"Burned In Annotation is absent and SOP class {sop_class} "
            "(secondary capture, ultrasound, photograph or document) often has text in pixels."
        )
    return None


# ---------------------------------------------------------------------------------------------
# Applying the allow-list


def _values(element: DataElement) -> list[str]:
    if element.value in (None, ""):
        return []
    raw = element.value if element.VM > 1 else [element.value]
    return [str(v).strip().rstrip("\x00") for v in raw]


@cache
def _standard_meanings() -> dict[tuple[str, str], str]:
    """(coding scheme, code value) -> meaning, from the code dictionaries of the standard that
    pydicom ships (PS3.16: DCM, SCT, LN, UCUM, ...)."""
    meanings: dict[tuple[str, str], str] = {}
    for scheme, by_keyword in _STANDARD_CONCEPTS.items():
        for codes in by_keyword.values():
            for value, entry in cast(dict[str, tuple[str, list[int]]], codes).items():
                meaning = entry[0]
                meanings.setdefault((scheme, value), meaning)
    return meanings


def _clean_code_item(item: Dataset) -> Dataset | None:
    """A code item rebuilt from the standard's dictionary, or None for an unknown concept. The
    sender's Code Meaning is never kept (it is free text: "PA view of Mr John Doe")."""
    scheme = str(item.get("CodingSchemeDesignator", "") or "").strip()
    value = str(item.get("CodeValue", "") or "").strip()
    if scheme == "SRT" and value in _SNOMED_MAPPING["SRT"]:  # retired SNOMED RT -> SNOMED CT
        scheme, value = "SCT", _SNOMED_MAPPING["SRT"][value]
    meaning = _standard_meanings().get((scheme, value))
    if meaning is None:
        return None
    clean = Dataset()
    clean.CodeValue = value
    clean.CodingSchemeDesignator = scheme
    clean.CodeMeaning = meaning
    return clean


def _vendor(value: str) -> str | None:
    lowered = value.lower()
    return next((name for pattern, name in VENDORS if re.search(pattern, lowered)), None)


def _keep(element: DataElement, rule: Rule) -> bool:
    """Whether ``element`` passes ``rule``; may clean its value in place."""
    vr, kind = element.VR, rule.kind
    if kind == "number":
        if vr in _NUMERIC_VRS:
            return True
        return vr in ("DS", "IS") and all(_NUMBER_TEXT.fullmatch(v) for v in _values(element))
    if kind == "binary":
        return vr in _BINARY_VRS
    if kind == "uid":
        return vr == "UI" and all(_UID_TEXT.fullmatch(v) for v in _values(element))
    if kind == "date":
        return vr in ("DA", "DT")  # shifted or emptied by _shift_dates_and_replace_uids
    if kind == "time":
        return vr == "TM" and all(_TIME.fullmatch(v) for v in _values(element))
    if kind == "age":
        return vr == "AS" and all(_AGE.fullmatch(v) for v in _values(element))
    if kind == "terms":
        values = _values(element)
        if vr != "CS":
            return False
        if rule.prefix:
            kept: list[str] = []
            for value in values:
                if value not in rule.terms:
                    break
                kept.append(value)
            if len(kept) < len(values):
                element.value = kept if len(kept) > 1 else (kept[0] if kept else None)
            return bool(kept)
        return all(v in rule.terms for v in values)
    if kind == "manufacturer":
        vendor = _vendor(" ".join(_values(element))) if vr == "LO" else None
        element.value = vendor
        return vendor is not None
    if kind == "code":
        if vr != "SQ":
            return False
        items = [_clean_code_item(item) for item in element.value or []]
        element.value = Sequence([item for item in items if item is not None])
        return bool(element.value)
    if kind == "sequence":
        if vr != "SQ":
            return False
        for item in element.value or []:
            _keep_allowed(item)
        return True
    raise AssertionError(f"unknown rule {kind}")  # pragma: no cover


@cache
def _dictionary_vrs(tag: int) -> tuple[str, ...]:
    """The VRs the DICOM dictionary gives ``tag`` (none for a tag it does not know)."""
    return tuple(dictionary_VR(tag).split(" or ")) if dictionary_has_tag(tag) else ()


def _keep_allowed(dataset: Dataset) -> None:
    """Remove from ``dataset`` (and its nested items) every attribute the allow-list does not
    keep, or whose value fails its rule."""
    for tag in list(dataset.keys()):
        tag = BaseTag(tag)
        rule = KEPT.get(tag)
        if rule is None or tag.is_private:
            del dataset[tag]
            continue
        try:
            element = dataset[tag]
            # An attribute under a VR the dictionary does not give it (a damaged file) would
            # escape the check its rule makes by VR.
            keep = element.VR in _dictionary_vrs(tag) and _keep(element, rule)
        except Exception:  # a value pydicom cannot decode cannot be checked either
            keep = False
        if not keep:
            del dataset[tag]


def _walk(dataset: Dataset, visit: Callable[[DataElement], None]) -> None:
    def callback(_: Dataset, element: DataElement) -> None:
        visit(element)

    dataset.walk(callback)


def _map_values(element: DataElement, mapper: Callable[[str], str]) -> None:
    if element.value in (None, ""):
        return
    if element.VM > 1:
        element.value = [mapper(str(v)) for v in element.value]
    else:
        element.value = mapper(str(element.value))


def _shift_dates_and_replace_uids(dataset: Dataset, days: int, secret: str) -> None:
    """Shift every date (DA) and date-time (DT) by ``days`` and replace every UID (UI, but
    those of ``_KEPT_UID_TAGS`` and standard ones) by its keyed replacement, nested items
    included, in one walk of the data set."""

    def uid_mapper(uid: str) -> str:
        uid = uid.strip().rstrip("\x00")
        if not uid or uid.startswith(STANDARD_UID_ROOT):
            return uid
        return replacement_uid(secret, uid)

    def visit(element: DataElement) -> None:
        vr = element.VR
        if vr == "UI":
            if element.tag not in _KEPT_UID_TAGS:
                _map_values(element, uid_mapper)
        elif vr == "DA":
            _map_values(element, lambda v: shift_date(v, days))
        elif vr == "DT":
            _map_values(element, lambda v: _shift_datetime(v, days))

    _walk(dataset, visit)


def _cap_age(age: str) -> str:
    """HIPAA Safe Harbor: ages over 89 are aggregated into 90 or older."""
    match = re.fullmatch(r"(\d{3})Y", age.strip())
    return "090Y" if match and int(match.group(1)) > 89 else age


def _rebuild_file_meta(dataset: Dataset, secret: str) -> None:
    old = getattr(dataset, "file_meta", None)
    meta = FileMetaDataset()
    if isinstance(old, Dataset):
        for keyword in KEPT_FILE_META:
            if old.get(keyword):
                setattr(meta, keyword, old.get(keyword))
        instance_uid = str(old.get("MediaStorageSOPInstanceUID", "") or "").strip("\x00 ")
        if instance_uid:  # a DICOMDIR has no SOP Instance UID of its own
            meta.MediaStorageSOPInstanceUID = UID(replacement_uid(secret, instance_uid))
    if "TransferSyntaxUID" not in meta:
        # A dataset read without a meta header: name the encoding it was read with.
        implicit, little = getattr(dataset, "original_encoding", (None, None))
        if implicit is not None:
            meta.TransferSyntaxUID = (
                ImplicitVRLittleEndian
                if implicit
                else ExplicitVRLittleEndian
                if little
                else ExplicitVRBigEndian
            )
    if "SOPClassUID" in dataset:
        meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    if "SOPInstanceUID" in dataset:
        meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    dataset.file_meta = meta


def _set_markers(dataset: Dataset) -> None:
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = METHOD_DESCRIPTION
    methods = Sequence()
    for code, meaning in METHOD_CODES:
        item = Dataset()
        item.CodeValue = code
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        methods.append(item)
    dataset.DeidentificationMethodCodeSequence = methods
    dataset.LongitudinalTemporalInformationModified = "MODIFIED"


def deidentify(dataset: Dataset, *, secret: str) -> tuple[Dataset, str]:
    """De-identify ``dataset`` in place (nothing is written anywhere); return it with the
    patient's pseudonym.

    ``secret`` is the project's HMAC key. The source Patient ID (or, without one, the Patient
    Name and birth date) keys the pseudonym and the date offset. Patient Name and Patient ID
    become the pseudonym, Accession Number a keyed hash of itself (so clinical rows keyed by
    the source accession number can still be matched), the Institution Name a keyed site code
    in Clinical Trial Site ID (:func:`site_code`). Only the attributes of ``KEPT`` whose
    values pass their rules survive; the preamble is zeroed and the file meta rebuilt."""
    patient_key = patient_key_of(dataset)
    patient = pseudonym(secret, "patient", patient_key)
    site = site_code(dataset, secret)
    # Keyed on the pseudonym, which the clinical-text import knows too: text and images move
    # by the same offset.
    shift = date_shift_days(secret, patient)
    accession = str(dataset.get("AccessionNumber", "") or "").strip()

    _keep_allowed(dataset)
    for keyword in EMPTY_TYPE2:
        if keyword not in dataset:
            setattr(dataset, keyword, None)
    dataset.PatientName = patient
    dataset.PatientID = patient
    dataset.AccessionNumber = pseudonym(secret, "accession", accession) if accession else ""
    if dataset.get("PatientAge"):
        dataset.PatientAge = _cap_age(str(dataset.PatientAge))
    _shift_dates_and_replace_uids(dataset, shift, secret)
    _rebuild_file_meta(dataset, secret)
    _set_markers(dataset)
    if site:
        # The site as a keyed code in the Clinical Trial Subject module's Site ID (LO), the
        # attribute PS3.3 gives a de-identified study's site: subgroups by site need no name.
        dataset.ClinicalTrialSiteID = site
    # The 128 bytes before "DICM" are free for any use and are often an application's text.
    dataset.preamble = PREAMBLE
    return dataset, patient
