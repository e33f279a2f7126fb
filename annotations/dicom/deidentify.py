"""De-identification applied to every DICOM dataset before it is stored.

Keyed and deterministic per project (HMAC-SHA256 with the project's secret), so the same source
identifier or UID maps to the same replacement in every batch and after restarts, and series
stay linked. What is applied (PS3.15 Annex E, Basic Application Level Confidentiality Profile,
with the Retain Longitudinal Temporal Information with Modified Dates option):
- direct identifiers in ``REMOVE`` are deleted, those in ``EMPTY`` kept empty (type 2);
- Patient Name and Patient ID become the patient's pseudonym, Accession Number a keyed hash;
- every UID that is not a standard's own (1.2.840.10008.*) is replaced by a keyed 2.25 UID,
  in nested sequences and the file meta too;
- dates are shifted by a per-patient offset of 0-365 days; private tags are removed;
- Patient Identity Removed = YES, the De-identification Method Code Sequence is added.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, timedelta

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

STANDARD_UID_ROOT = "1.2.840.10008."

REMOVE = (
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "MilitaryRank",
    "BranchOfService",
    "MedicalRecordLocator",
    "EthnicGroup",
    "Occupation",
    "PatientComments",
    "AdditionalPatientHistory",
    "PatientInsurancePlanCodeSequence",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "InstitutionCodeSequence",
    "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord",
    "OperatorsName",
    "RequestingPhysician",
    "StationName",
    "DeviceSerialNumber",
    "ImageComments",
    "StudyComments",
    "RequestAttributesSequence",
    "ReferencedPatientSequence",
    "PatientBirthTime",
    "CountryOfResidence",
    "RegionOfResidence",
    "IssuerOfPatientID",
)
EMPTY = ("ReferringPhysicianName", "StudyID", "PatientBirthDate")
DATE_KEYWORDS = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")
MAX_DATE_SHIFT_DAYS = 365
# CID 7050 codes: Basic profile, and the longitudinal-temporal (modified dates) option.
METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
)


def keyed_digest(secret: str, kind: str, value: str) -> bytes:
    return hmac.new(secret.encode(), f"{kind}\x00{value}".encode(), hashlib.sha256).digest()


def pseudonym(secret: str, kind: str, value: str, length: int = 16) -> str:
    """A stable, non-reversible token for ``value`` (e.g. a patient ID) in this project."""
    return keyed_digest(secret, kind, value).hex()[:length].upper()


def replacement_uid(secret: str, uid: str) -> str:
    """A keyed 2.25 UID (an integer below 2**128, as PS3.5 B.2 allows) for ``uid``."""
    return "2.25." + str(int.from_bytes(keyed_digest(secret, "uid", uid)[:16], "big"))


def date_shift_days(secret: str, patient_key: str) -> int:
    return int.from_bytes(keyed_digest(secret, "date", patient_key)[:4], "big") % (
        MAX_DATE_SHIFT_DAYS + 1
    )


def _shift_date(value: str, days: int) -> str:
    try:
        original = date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except (ValueError, IndexError):
        return ""
    return (original - timedelta(days=days)).strftime("%Y%m%d")


def _replace_uids(dataset: Dataset, secret: str) -> None:
    def visit(ds: Dataset, element: DataElement) -> None:
        if element.VR != "UI" or element.value in (None, ""):
            return
        if element.VM > 1:
            element.value = [
                v if str(v).startswith(STANDARD_UID_ROOT) else replacement_uid(secret, str(v))
                for v in element.value
            ]
        elif not str(element.value).startswith(STANDARD_UID_ROOT):
            element.value = replacement_uid(secret, str(element.value))

    dataset.walk(visit)


def _delete_everywhere(dataset: Dataset, keywords: tuple[str, ...]) -> None:
    tags = {BaseTag(tag) for k in keywords if (tag := tag_for_keyword(k)) is not None}

    def visit(ds: Dataset, element: DataElement) -> None:
        if element.tag in tags:
            del ds[element.tag]

    dataset.walk(visit)


def deidentify(dataset: Dataset, *, secret: str) -> tuple[Dataset, str]:
    """De-identify ``dataset`` in place; return it with the patient's pseudonym.

    ``secret`` is the project's HMAC key. The source Patient ID (or, without one, the Patient
    Name and birth date) keys the pseudonym and the date offset."""
    patient_key = str(dataset.get("PatientID", "") or "") or (
        f"{dataset.get('PatientName', '')}|{dataset.get('PatientBirthDate', '')}"
    )
    patient = pseudonym(secret, "patient", patient_key)
    shift = date_shift_days(secret, patient_key)

    dataset.remove_private_tags()
    _delete_everywhere(dataset, REMOVE)
    for keyword in EMPTY:
        if keyword in dataset:
            dataset.data_element(keyword).value = ""  # type: ignore[union-attr]
    dataset.PatientName = patient
    dataset.PatientID = patient
    if dataset.get("AccessionNumber"):
        dataset.AccessionNumber = pseudonym(secret, "accession", str(dataset.AccessionNumber))
    for keyword in DATE_KEYWORDS:
        if dataset.get(keyword):
            dataset.data_element(keyword).value = _shift_date(  # type: ignore[union-attr]
                str(dataset.get(keyword)), shift
            )
    _replace_uids(dataset, secret)
    meta = getattr(dataset, "file_meta", None)
    if isinstance(meta, FileMetaDataset) and "SOPInstanceUID" in dataset:
        meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID

    dataset.PatientIdentityRemoved = "YES"
    dataset.LongitudinalTemporalInformationModified = "MODIFIED"
    methods = Sequence()
    for code, meaning in METHOD_CODES:
        item = Dataset()
        item.CodeValue = code
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        methods.append(item)
    dataset.DeidentificationMethodCodeSequence = methods
    dataset.DeidentificationMethod = "MedLoop: PS3.15 Annex E basic profile, dates modified"
    return dataset, patient
