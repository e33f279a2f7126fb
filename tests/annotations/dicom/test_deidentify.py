"""De-identification (PS3.15 Annex E Basic Profile): fake identifiers injected into pydicom's
real test files never survive, UIDs stay valid and linked, markers are set."""

from __future__ import annotations

import copy
import io
import re
import warnings
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_files
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from annotations.dicom.deidentify import (
    date_shift_days,
    deidentify,
    patient_key_of,
    pseudonym,
    quarantine_reason,
    replacement_uid,
)

SECRET = "project-secret-for-tests"
REQUIRED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")


def _read(path: str) -> FileDataset | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            dataset = pydicom.dcmread(path, force=False)
        except Exception:
            return None
    if not all(dataset.get(k) for k in REQUIRED_UIDS):
        return None
    return dataset


def _corpus() -> dict[str, bytes]:
    """Files of pydicom's corpus that are on disk, readable, and carry the four UIDs."""
    files = {}
    for path in sorted(get_testdata_files()):
        if Path(path).is_file() and Path(path).stat().st_size < 400_000 and _read(path):
            files[path] = Path(path).read_bytes()
    return files


CORPUS = _corpus()


def _load(path: str) -> FileDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(CORPUS[path]))


def _serialise(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _all_elements(dataset: Dataset) -> list[DataElement]:
    elements: list[DataElement] = []
    meta = getattr(dataset, "file_meta", None)
    for ds in (meta, dataset):
        if ds is not None:
            elements.extend(ds.iterall())
    return elements


@dataclass(frozen=True)
class FakeIdentity:
    family: str
    given: str
    patient_id: str
    other_id: str
    accession: str
    institution: str
    physician: str
    station: str
    serial: str
    free_text: str
    when: date
    uid_numbers: tuple[int, int, int, int, int]

    def tokens(self) -> list[str]:
        return [
            self.family,
            self.given,
            self.patient_id,
            self.other_id,
            self.accession,
            self.institution,
            self.physician,
            self.station,
            self.serial,
            *self.free_text.split(),
            self.when.strftime("%Y%m%d"),
            *self.uids(),
        ]

    def uids(self) -> list[str]:
        return [f"1.2.826.0.1.3680043.10.{n}" for n in self.uid_numbers]


# Lower-case letters after a capital: never produced by pseudonyms (upper-case hex) or dummies.
_token = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(["Qx", "Zv", "Kj", "Wq"]),
    st.text(alphabet="abcdefghjkmnpqrstuvwxyz", min_size=6, max_size=10),
)
identities = st.builds(
    FakeIdentity,
    family=_token,
    given=_token,
    patient_id=_token,
    other_id=_token,
    accession=_token,
    institution=_token,
    physician=_token,
    station=_token,
    serial=_token,
    free_text=st.lists(_token, min_size=1, max_size=3).map(" ".join),
    # Years no corpus file uses, so a shifted corpus date can never equal an injected one.
    when=st.dates(min_value=date(1901, 1, 1), max_value=date(1950, 12, 31)),
    uid_numbers=st.tuples(*[st.integers(10**6, 10**12)] * 5).filter(lambda t: len(set(t)) == 5),
)


def _inject(dataset: FileDataset, fake: FakeIdentity) -> None:
    study_uid, series_uid, sop_uid, frame_uid, referenced_uid = fake.uids()
    day = fake.when.strftime("%Y%m%d")
    dataset.PatientName = f"{fake.family}^{fake.given}"
    dataset.PatientID = fake.patient_id
    dataset.IssuerOfPatientID = fake.institution
    dataset.OtherPatientIDsSequence = Sequence([Dataset()])
    dataset.OtherPatientIDsSequence[0].PatientID = fake.other_id
    dataset.AccessionNumber = fake.accession
    dataset.PatientBirthDate = day
    for keyword in ("StudyDate", "SeriesDate", "ContentDate", "AcquisitionDate"):
        setattr(dataset, keyword, day)
    dataset.AcquisitionDateTime = day + "101500"
    dataset.InstitutionName = fake.institution
    dataset.InstitutionAddress = fake.free_text
    dataset.ReferringPhysicianName = fake.physician
    dataset.PerformingPhysicianName = fake.physician
    dataset.OperatorsName = fake.physician
    dataset.StationName = fake.station
    dataset.DeviceSerialNumber = fake.serial
    dataset.PatientAddress = fake.free_text
    dataset.PatientTelephoneNumbers = fake.serial
    dataset.AdditionalPatientHistory = fake.free_text
    dataset.ImageComments = fake.free_text
    dataset.StudyDescription = fake.free_text
    dataset.StudyInstanceUID = study_uid
    dataset.SeriesInstanceUID = series_uid
    dataset.SOPInstanceUID = sop_uid
    dataset.FrameOfReferenceUID = frame_uid
    dataset.file_meta.MediaStorageSOPInstanceUID = sop_uid
    dataset.file_meta.SourceApplicationEntityTitle = fake.station
    block = dataset.private_block(0x0011, "MEDLOOP FAKE", create=True)
    block.add_new(0x10, "LO", fake.patient_id)
    # A kept sequence (X/Z/U*) with identifiers, a private block and a deeper level inside.
    item = Dataset()
    item.ReferencedSOPClassUID = dataset.SOPClassUID
    item.ReferencedSOPInstanceUID = referenced_uid
    item.PatientName = f"{fake.given}^{fake.family}"
    item.InstitutionName = fake.institution
    item.private_block(0x0013, "MEDLOOP NESTED", create=True).add_new(0x01, "LO", fake.other_id)
    deeper = Dataset()
    deeper.ReferencedSOPInstanceUID = sop_uid
    deeper.OperatorsName = fake.physician
    deeper.ContentDate = day
    item.SourceImageSequence = Sequence([deeper])
    dataset.ReferencedImageSequence = Sequence([item])
    # A sequence the profile removes outright.
    request = Dataset()
    request.AccessionNumber = fake.accession
    request.RequestedProcedureID = fake.serial
    dataset.RequestAttributesSequence = Sequence([request])


@pytest.mark.skipif(not CORPUS, reason="pydicom's test files are not on disk")
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(path=st.sampled_from(sorted(CORPUS)), fake=identities)
def test_injected_identifiers_never_survive_deidentification(path: str, fake: FakeIdentity) -> None:
    dataset = _load(path)
    _inject(dataset, fake)
    patient = pseudonym(SECRET, "patient", fake.patient_id)

    _, returned = deidentify(dataset, secret=SECRET)
    stored = _serialise(dataset)
    reread = pydicom.dcmread(io.BytesIO(stored))

    assert returned == patient
    for token in fake.tokens():
        assert token.encode() not in stored, f"{token!r} survived in the bytes of {path}"
    for element in _all_elements(reread):
        assert not element.tag.is_private, f"private {element.tag} kept in {path}"
        if element.VR not in ("SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN"):
            text = str(element.value)
            assert not any(t in text for t in fake.tokens()), f"{element} kept in {path}"
    for keyword in REQUIRED_UIDS:
        assert UID(str(reread[keyword].value)).is_valid, keyword
    assert reread.file_meta.MediaStorageSOPInstanceUID == reread.SOPInstanceUID
    assert reread.SOPClassUID == _load(path).SOPClassUID  # a standard UID is kept
    assert reread.PatientName == patient and reread.PatientID == patient
    assert reread.AccessionNumber == pseudonym(SECRET, "accession", fake.accession)
    assert reread.PatientIdentityRemoved == "YES"
    assert reread.LongitudinalTemporalInformationModified == "MODIFIED"
    codes = [item.CodeValue for item in reread.DeidentificationMethodCodeSequence]
    assert codes[0] == "113100" and {"113107", "113108"} <= set(codes)
    assert all(i.CodingSchemeDesignator == "DCM" for i in reread.DeidentificationMethodCodeSequence)
    # References inside sequences follow the mapping, so they still point at the right instance.
    deeper = reread.ReferencedImageSequence[0].SourceImageSequence[0]
    assert deeper.ReferencedSOPInstanceUID == reread.SOPInstanceUID
    assert "RequestAttributesSequence" not in reread


@pytest.mark.parametrize("path", sorted(CORPUS), ids=lambda p: Path(p).name)
def test_every_corpus_file_stays_a_valid_file_after_deidentification(path: str) -> None:
    original = _load(path)
    dataset = _load(path)

    deidentify(dataset, secret=SECRET)
    reread = pydicom.dcmread(io.BytesIO(_serialise(dataset)))

    for keyword in REQUIRED_UIDS:
        assert UID(str(reread[keyword].value)).is_valid
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert reread[keyword].value == replacement_uid(SECRET, str(original[keyword].value))
    assert reread.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert reread.get("Modality") == original.get("Modality")
    assert "PatientID" in reread and "PatientName" in reread
    assert not any(e.tag.is_private for e in reread.iterall())
    if "PixelData" in original:
        assert reread.PixelData == original.PixelData


def test_same_secret_gives_identical_output_and_another_secret_other_uids() -> None:
    path = next(p for p in CORPUS if p.endswith("CT_small.dcm"))
    first, second, other = _load(path), _load(path), _load(path)

    deidentify(first, secret=SECRET)
    deidentify(second, secret=SECRET)
    _, other_patient = deidentify(other, secret="another project")

    assert _serialise(first) == _serialise(second)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert first[keyword].value != other[keyword].value
    assert first.PatientID != other_patient


def test_two_instances_of_one_series_stay_in_one_new_series() -> None:
    path = next(p for p in CORPUS if p.endswith("MR_small.dcm"))
    first, second = _load(path), _load(path)
    second.SOPInstanceUID = "1.2.826.0.1.3680043.10.99.2"
    second.ReferencedImageSequence = Sequence([Dataset()])
    second.ReferencedImageSequence[0].ReferencedSOPInstanceUID = first.SOPInstanceUID

    deidentify(first, secret=SECRET)
    deidentify(second, secret=SECRET)

    assert first.StudyInstanceUID == second.StudyInstanceUID
    assert first.SeriesInstanceUID == second.SeriesInstanceUID
    assert first.get("FrameOfReferenceUID") == second.get("FrameOfReferenceUID")
    assert first.SOPInstanceUID != second.SOPInstanceUID
    assert second.ReferencedImageSequence[0].ReferencedSOPInstanceUID == first.SOPInstanceUID
    assert first.PatientID == second.PatientID


def test_dates_move_back_by_the_patients_keyed_offset_and_times_are_kept() -> None:
    path = next(p for p in CORPUS if p.endswith("CT_small.dcm"))
    dataset = _load(path)
    dataset.StudyDate, dataset.StudyTime = "20240312", "101500"
    dataset.AcquisitionDateTime = "20240312101500.000000+0100"
    days = date_shift_days(SECRET, pseudonym(SECRET, "patient", patient_key_of(dataset)))

    deidentify(dataset, secret=SECRET)

    expected = (date(2024, 3, 12) - timedelta(days=days)).strftime("%Y%m%d")
    assert 1 <= days <= 365
    assert dataset.StudyDate == expected and dataset.StudyTime == "101500"
    assert dataset.AcquisitionDateTime == expected + "101500.000000+0100"
    assert dataset.PatientBirthDate in ("", None) if "PatientBirthDate" in dataset else True


def test_patient_characteristics_are_kept_and_ages_over_89_aggregated() -> None:
    path = next(p for p in CORPUS if p.endswith("CT_small.dcm"))
    dataset = _load(path)
    dataset.PatientSex, dataset.PatientAge, dataset.PatientWeight = "F", "095Y", "61"
    dataset.EthnicGroup = "Qxrare"

    deidentify(dataset, secret=SECRET)

    assert (dataset.PatientSex, dataset.PatientAge, dataset.PatientWeight) == ("F", "090Y", 61)
    assert "EthnicGroup" not in dataset


def test_the_site_is_kept_only_as_a_keyed_code() -> None:
    """Issue 16: Institution Name goes; its keyed code (one per site whatever the spelling's
    case, spaces or punctuation; another per project secret) stays in Clinical Trial Site ID,
    where a report's site subgroups read it."""
    path = next(p for p in CORPUS if p.endswith("CT_small.dcm"))

    def code(name: str | None, secret: str = SECRET, site_id: str | None = None) -> str | None:
        dataset = _load(path)
        if "InstitutionName" in dataset:
            del dataset.InstitutionName
        if name is not None:
            dataset.InstitutionName = name
        if site_id is not None:
            dataset.ClinicalTrialSiteID = site_id
        deidentify(dataset, secret=secret)
        stored = _serialise(dataset)
        assert "InstitutionName" not in dataset
        if name:
            assert name.encode() not in stored and b"Mary" not in stored
        return dataset.get("ClinicalTrialSiteID")

    first = code("St. Mary's Hospital")
    assert first is not None and re.fullmatch(r"S-[0-9A-F]{8}", first)
    assert code("ST MARYS HOSPITAL") == first
    assert code("Mary Royal Infirmary") not in (None, first)
    assert code("St. Mary's Hospital", secret="another-project") != first
    assert code(None) is None  # no site named: unknown
    # A code MedLoop wrote before survives re-ingest; any other site id is free text.
    assert code(None, site_id=first) == first
    assert code(None, site_id="Mary's site 7") is None


def test_class_and_syntax_uids_are_never_replaced() -> None:
    path = next(p for p in CORPUS if p.endswith("CT_small.dcm"))
    dataset = _load(path)
    syntax = dataset.file_meta.TransferSyntaxUID

    deidentify(dataset, secret=SECRET)

    assert dataset.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert dataset.file_meta.TransferSyntaxUID == syntax


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, scheme, meaning
    return code


def test_code_sequences_keep_known_concepts_with_the_dictionary_meaning_only() -> None:
    """A sender's Code Meaning is free text ("PA view of Mr John Doe"): a known concept is
    rebuilt from the standard's dictionary (a retired SNOMED RT code becomes SNOMED CT), an
    unknown one is removed, and a sequence left with nothing is removed."""
    path = next(p for p in CORPUS if p.endswith("CT_small.dcm"))
    dataset = _load(path)
    dataset.ViewCodeSequence = Sequence([_code("272479007", "SCT", "PA view of Mr John Doe")])
    dataset.AnatomicRegionSequence = Sequence(
        [_code("T-D3000", "SRT", "Chest of John Doe"), _code("JD-1930", "99LOCAL", "John Doe")]
    )
    dataset.PrimaryAnatomicStructureSequence = Sequence([_code("51185008", "SCT", "Chest")])
    dataset.ViewModifierCodeSequence = Sequence([_code("ZZ9", "99LOCAL", "MRN-998877")])
    dataset.ViewCodeSequence[0].ViewModifierCodeSequence = dataset.ViewModifierCodeSequence

    deidentify(dataset, secret=SECRET)

    assert [(c.CodeValue, c.CodeMeaning) for c in dataset.ViewCodeSequence] == [
        ("272479007", "postero-anterior")
    ]
    assert [(c.CodingSchemeDesignator, c.CodeValue) for c in dataset.AnatomicRegionSequence] == [
        ("SCT", "51185008")
    ]
    assert "John Doe" not in str(dataset) and "MRN-998877" not in str(dataset)
    assert "PrimaryAnatomicStructureSequence" not in dataset
    assert "ViewModifierCodeSequence" not in dataset


def _quarantine_case(**attributes: str) -> Dataset:
    dataset = Dataset()
    dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    return dataset


@pytest.mark.parametrize(
    ("attributes", "quarantined"),
    [
        ({"Modality": "CT"}, False),
        ({"Modality": "CT", "BurnedInAnnotation": "YES"}, True),
        ({"Modality": "US"}, True),
        ({"Modality": "US", "BurnedInAnnotation": "NO"}, False),
        ({"Modality": "OT"}, True),
        ({"Modality": "XC"}, True),
        ({"Modality": "ES"}, True),
        ({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"}, True),
        ({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7.4", "Modality": "CT"}, True),
        ({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.77.1.4", "Modality": "CT"}, True),
        ({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.77", "Modality": "CT"}, False),
        ({"Modality": "MR", "RecognizableVisualFeatures": "YES"}, True),
        ({"Modality": "CT", "BurnedInAnnotation": ["YES", "NO"]}, True),
        ({"Modality": "CT", "BurnedInAnnotation": "MAYBE"}, True),
    ],
)
def test_images_that_may_carry_burned_in_text_are_quarantined(
    attributes: dict[str, str], quarantined: bool
) -> None:
    reason = quarantine_reason(_quarantine_case(**attributes))

    assert (reason is not None) is quarantined
    if reason:
        assert "Burned In Annotation" in reason or "Recognizable" in reason


def test_deidentification_works_on_a_copy_without_touching_other_datasets() -> None:
    path = next(p for p in CORPUS if p.endswith("CT_small.dcm"))
    original = _load(path)
    kept = copy.deepcopy(original)

    deidentify(copy.deepcopy(original), secret=SECRET)

    assert original.PatientName == kept.PatientName


def test_a_uid_or_date_under_a_damaged_vr_does_not_survive() -> None:
    """Replacement and shifting go by VR: a Frame of Reference UID sent as LO, or a date as
    LO, would keep the original value, so such an element is dropped."""
    path = next(p for p in CORPUS if p.endswith("CT_small.dcm"))
    dataset = _load(path)
    original_uid = "1.2.826.0.1.3680043.10.99.77"
    dataset.add_new(0x00200052, "LO", original_uid)  # Frame of Reference UID, damaged VR
    dataset.add_new(0x00080021, "LO", "20240131")  # Series Date, damaged VR
    deidentify(dataset, secret=SECRET)
    assert "FrameOfReferenceUID" not in dataset and "SeriesDate" not in dataset
    assert original_uid.encode() not in _serialise(dataset)
