"""De-identification applied to every DICOM dataset before it is stored (in memory only).

Profile: DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile (113100), with
- Retain Longitudinal Temporal Information with Modified Dates Option (113107): every DA and DT
  value that is kept is shifted back by a keyed per-patient offset of 1-365 days (times of day are
  kept), and Longitudinal Temporal Information Modified (0028,0303) is "MODIFIED";
- Retain Patient Characteristics Option (113108): Patient's Sex, Age, Size and Weight are kept
  (an age over 89 years becomes "090Y", as HIPAA Safe Harbor asks).

The action table (D, Z, X, U and the compound actions) is Table E.1-1 as shipped by
dicom-anonymizer (``dicomanonymizer.dicom_anonymization_databases``, the newest edition it
carries). Only the table is used: dicom-anonymizer's engine applies it to the top level only and
keeps its UID map in memory, so the actions are applied here, at every nesting level.

UIDs are mapped by HMAC-SHA256 with the project's secret to 2.25 UIDs: the same source UID gives
the same replacement in every batch, process and restart, so series and references stay linked.
UIDs of the standard (1.2.840.10008.*) and identifiers of classes, syntaxes and coding schemes
are kept. All private attributes, attributes the data dictionary does not know, command and
group-length elements are removed, and the file meta header is rebuilt from scratch.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from datetime import date, timedelta

from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector
from pydicom.datadict import dictionary_has_tag, dictionary_VR, repeater_has_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

STANDARD_UID_ROOT = "1.2.840.10008."
ANNEX_E_EDITION = "dicomfields_2026c"  # the newest Table E.1-1 in dicom-anonymizer 2.1.0
MAX_DATE_SHIFT_DAYS = 365
DUMMY_TEXT = "ANONYMIZED"
METHOD_DESCRIPTION = "MedLoop: PS3.15 Basic Profile, modified dates, patient chars"
# CID 7050 codes of the profile and of each option applied.
METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ("113108", "Retain Patient Characteristics Option"),
)

# Table E.1-1 categories -> the action MedLoop applies. Without IOD tables, a compound action
# resolves to the stricter choice, except where a type-1/2 attribute would go missing:
# Z/D -> Z (empty); X/Z, X/D, X/Z/D -> X (remove); X/Z/U* -> keep the sequence, replace its UIDs.
_CATEGORY_ACTION = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z",
    "X_Z_TAGS": "X",
    "X_D_TAGS": "X",
    "X_Z_D_TAGS": "X",
    "X_Z_U_STAR_TAGS": "U",
}
# Retain Patient Characteristics Option (113108): these are kept (K) instead of Z/X.
RETAINED_CHARACTERISTICS = ("PatientSex", "PatientAge", "PatientSize", "PatientWeight")
# Dates and times the longitudinal option does not retain: they follow the Basic Profile.
NOT_RETAINED_TEMPORAL = ("PatientBirthDate", "PatientBirthTime")
# UI attributes that name a class, syntax or coding scheme, not an instance: never replaced.
KEPT_UID_KEYWORDS = (
    "SOPClassUID",
    "MediaStorageSOPClassUID",
    "ReferencedSOPClassUID",
    "ReferencedSOPClassUIDInFile",
    "AffectedSOPClassUID",
    "RequestedSOPClassUID",
    "SOPClassesInStudy",
    "TransferSyntaxUID",
    "ReferencedTransferSyntaxUIDInFile",
    "ImplementationClassUID",
    "CodingSchemeUID",
    "ContextUID",
    "MappingResourceUID",
    "RelatedGeneralSOPClassUID",
    "OriginalSpecializedSOPClassUID",
)
# The file meta header is rebuilt with these only: AE titles and addresses are dropped.
KEPT_FILE_META = ("MediaStorageSOPClassUID", "TransferSyntaxUID")


def _tag(keyword: str) -> BaseTag:
    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - a typo in the lists above
        raise KeyError(keyword)
    return BaseTag(tag)


def _load_action_table() -> tuple[dict[BaseTag, str], list[tuple[int, int, int, int, str]]]:
    tables = dicom_anonymization_database_selector(ANNEX_E_EDITION)
    exact: dict[BaseTag, str] = {}
    masked: list[tuple[int, int, int, int, str]] = []
    for category, action in _CATEGORY_ACTION.items():
        for entry in tables[category]:
            if len(entry) == 4:  # repeating groups such as (60xx,3000) Overlay Data
                group, element, group_mask, element_mask = entry
                masked.append((group, element, group_mask, element_mask, action))
            else:
                exact[BaseTag((entry[0] << 16) | entry[1])] = action
    for keyword in RETAINED_CHARACTERISTICS:
        exact[_tag(keyword)] = "K"
    return exact, masked


ACTIONS, MASKED_ACTIONS = _load_action_table()
_KEPT_UID_TAGS = frozenset(_tag(k) for k in KEPT_UID_KEYWORDS)
_NOT_RETAINED_TEMPORAL_TAGS = frozenset(_tag(k) for k in NOT_RETAINED_TEMPORAL)


def profile_action(tag: BaseTag) -> str | None:
    """The Basic Profile action for ``tag`` as MedLoop applies it, or None when not listed."""
    action = ACTIONS.get(tag)
    if action is not None:
        return action
    for group, element, group_mask, element_mask, masked_action in MASKED_ACTIONS:
        if tag.group & group_mask == group & group_mask and (
            tag.element & element_mask == element & element_mask
        ):
            return masked_action
    return None


def keyed_digest(secret: str, kind: str, value: str) -> bytes:
    """HMAC-SHA256 of ``value`` under the project's ``secret``, separated by ``kind``."""
    return hmac.new(secret.encode(), f"{kind}\x00{value}".encode(), hashlib.sha256).digest()


def pseudonym(secret: str, kind: str, value: str, length: int = 16) -> str:
    """A stable, non-reversible token for ``value`` (e.g. a patient ID) in this project."""
    return keyed_digest(secret, kind, value).hex()[:length].upper()


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
    burned_in = str(dataset.get("BurnedInAnnotation", "") or "").strip().upper()
    if burned_in == "YES":
        return "Burned In Annotation is YES: the pixels carry identifying text."
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
# Applying the profile


def _empty(element: DataElement) -> None:
    element.value = Sequence() if element.VR == "SQ" else None


def _dummy(element: DataElement) -> None:
    """D: a non-empty value consistent with the VR that carries nothing of the original."""
    vr = element.VR
    if vr == "SQ":
        element.value = Sequence()  # an item of dummies would still look like data; see docs
    elif vr in ("AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"):
        element.value = DUMMY_TEXT
    elif vr == "UR":
        element.value = "http://anonymized.invalid"
    elif vr == "AS":
        element.value = "000Y"
    elif vr in ("DS", "IS"):
        element.value = "0"
    elif vr in ("FD", "FL", "SS", "US", "SL", "UL", "SV", "UV"):
        element.value = 0
    elif vr == "DA":
        element.value = "19000101"
    elif vr == "DT":
        element.value = "19000101000000"
    elif vr == "TM":
        element.value = "000000"
    else:  # binary and anything else: nothing meaningful to put there
        element.value = None


# VRs whose values are rewritten by VR (UIDs replaced, dates shifted): an attribute that should
# have one of them but arrives under another cannot be processed safely.
_VR_DRIVEN = frozenset({"UI", "DA", "DT", "TM"})


def _apply_profile(dataset: Dataset) -> None:
    """Apply the table's actions to every attribute of ``dataset`` and of its nested items."""
    for tag in list(dataset.keys()):
        tag = BaseTag(tag)
        if tag.is_private or tag.group == 0 or tag.element == 0:
            del dataset[tag]  # private, command or group-length elements
            continue
        if not (dictionary_has_tag(tag) or repeater_has_tag(tag)):
            del dataset[tag]  # unknown public attribute: its content cannot be judged
            continue
        try:
            element = dataset[tag]
        except Exception:  # a value pydicom cannot decode cannot be checked either
            del dataset[tag]
            continue
        expected_vr = dictionary_VR(tag) if dictionary_has_tag(tag) else None
        if expected_vr in _VR_DRIVEN and expected_vr != element.VR:
            # A UID, date or time under another VR (a damaged file) would escape its
            # replacement or shift, which go by VR: drop it.
            del dataset[tag]
            continue
        action = profile_action(tag)
        if (
            action in ("D", "Z", "X")
            and element.VR in ("DA", "DT", "TM")
            and tag not in _NOT_RETAINED_TEMPORAL_TAGS
        ):
            action = "C"  # 113107: kept, dates shifted in _shift_dates
        if action == "X":
            del dataset[tag]
        elif action == "Z":
            _empty(element)
        elif action == "D":
            _dummy(element)
        elif element.VR == "SQ" and element.value:
            for item in element.value:
                _apply_profile(item)


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


def _replace_uids(dataset: Dataset, secret: str) -> None:
    def mapper(uid: str) -> str:
        uid = uid.strip().rstrip("\x00")
        if not uid or uid.startswith(STANDARD_UID_ROOT):
            return uid
        return replacement_uid(secret, uid)

    def visit(element: DataElement) -> None:
        if element.VR == "UI" and element.tag not in _KEPT_UID_TAGS:
            _map_values(element, mapper)

    _walk(dataset, visit)


def _shift_dates(dataset: Dataset, days: int) -> None:
    def visit(element: DataElement) -> None:
        if element.VR == "DA":
            _map_values(element, lambda v: shift_date(v, days))
        elif element.VR == "DT":
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
    the source accession number can still be matched)."""
    patient_key = patient_key_of(dataset)
    patient = pseudonym(secret, "patient", patient_key)
    # Keyed on the pseudonym, which the clinical-text import knows too: text and images move
    # by the same offset.
    shift = date_shift_days(secret, patient)
    accession = str(dataset.get("AccessionNumber", "") or "").strip()

    dataset.remove_private_tags()
    _apply_profile(dataset)
    dataset.PatientName = patient
    dataset.PatientID = patient
    dataset.AccessionNumber = pseudonym(secret, "accession", accession) if accession else ""
    if dataset.get("PatientAge"):
        dataset.PatientAge = _cap_age(str(dataset.PatientAge))
    _shift_dates(dataset, shift)
    _replace_uids(dataset, secret)
    _rebuild_file_meta(dataset, secret)
    _set_markers(dataset)
    return dataset, patient
