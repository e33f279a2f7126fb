"""The allow-list: a marker written into every text-like attribute of pydicom's whole data
dictionary (top level and inside every sequence), into private tags, the file meta header and
the preamble never survives de-identification; and the allow-list keeps nothing that the
standard's Basic Profile (Table E.1-1) removes, except what the two options retain."""

from __future__ import annotations

import io
import warnings

import pydicom
import pytest
from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pydicom.datadict import DicomDictionary, RepeatersDictionary, keyword_for_tag
from pydicom.dataset import Dataset, FileDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from annotations.dicom.deidentify import KEPT, PREAMBLE, RETAINED_CHARACTERISTICS, deidentify

SECRET = "allow-list-tests"
# Text-like VRs: free text, names, codes, addresses, and dates and times (a kept date is
# shifted, so an unshifted marker date is a leak; an unparseable date or time is removed).
TEXT_VRS = ("AE", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UR", "UT")
MARKER_DATE = "19170423"


def _marker_value(vr: str, marker: str) -> str:
    if vr == "DA":
        return MARKER_DATE
    if vr == "DT":
        return MARKER_DATE + "101500"
    if vr in ("AE", "CS", "SH"):
        return marker[:16]
    if vr == "UR":
        return f"http://{marker}.example/"
    return marker


def _text_tags() -> list[tuple[BaseTag, str]]:
    tags = []
    for tag, (vr, _vm, _name, _retired, keyword) in DicomDictionary.items():
        tag = BaseTag(tag)
        if vr in TEXT_VRS and tag.group not in (0x0000, 0x0002) and keyword:
            tags.append((tag, vr))
    return tags


TEXT_TAGS = _text_tags()
SEQUENCE_TAGS = [
    BaseTag(tag)
    for tag, (vr, *_rest) in DicomDictionary.items()
    if vr == "SQ" and BaseTag(tag).group not in (0x0000, 0x0002)
]


def _marked_item(marker: str, depth: int) -> Dataset:
    """An item with the marker in a code, a name, free text and a private tag, nesting deeper."""
    item = Dataset()
    item.CodeValue = marker[:16]
    item.CodingSchemeDesignator = "SCT"
    item.CodeMeaning = f"PA view of {marker}"
    item.PatientName = marker
    item.TextValue = marker
    item.InstitutionName = marker
    item.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.10.4242"
    item.private_block(0x0019, "MARKER CREATOR", create=True).add_new(0x01, "LO", marker)
    if depth > 0:
        item.ContentSequence = Sequence([_marked_item(marker, depth - 1)])
        item.ReferencedImageSequence = Sequence([_marked_item(marker, depth - 1)])
    return item


def marked_dataset(marker: str) -> FileDataset:
    """A real image (pydicom's CT_small.dcm) with the marker in every text-like attribute of
    the data dictionary, in an item of every sequence of the dictionary, in repeating-group
    text (overlay comments), private tags, the file meta header and the preamble."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    # What an image cannot do without (a marker there makes the file undecodable, and the terms
    # test checks those values); UIDs are not text.
    keep = {"PhotometricInterpretation", "Modality"}
    for tag, vr in TEXT_TAGS:
        if keyword_for_tag(tag) not in keep:
            dataset.add_new(tag, vr, _marker_value(vr, marker))
    for tag in SEQUENCE_TAGS:
        dataset.add_new(tag, "SQ", Sequence([_marked_item(marker, depth=1)]))
    for mask, (vr, *_rest) in RepeatersDictionary.items():
        if vr in TEXT_VRS and mask.startswith("60"):
            dataset.add_new(BaseTag(int(mask.replace("x", "0"), 16)), vr, marker)
    dataset.private_block(0x0009, "MARKER CREATOR", create=True).add_new(0x10, "LT", marker)
    dataset.add_new(0x00110010, "LO", marker)  # a private creator itself
    dataset.file_meta.SourceApplicationEntityTitle = marker[:16]
    dataset.file_meta.PrivateInformationCreatorUID = "1.2.826.0.1.3680043.10.4243"
    dataset.file_meta.ImplementationVersionName = marker[:16]
    dataset.preamble = (f"{marker} MRN-998877 DOB 1930-01-01".encode() + b"\0" * 128)[:128]
    return dataset


def encoded(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def leaks(data: bytes, marker: str) -> list[str]:
    """Where the marker (any case) or the marker date appears in ``data``."""
    found = []
    lowered = data.lower()
    for needle in (marker.lower().encode(), marker[:16].lower().encode(), MARKER_DATE.encode()):
        at = lowered.find(needle)
        if at >= 0:
            found.append(f"{needle!r} at byte {at}: {data[max(at - 40, 0) : at + 40]!r}")
    return found


# Markers: letters and digits in mixed case, long enough never to occur by chance.
markers = st.builds(
    lambda head, tail: f"Zq{head}Mk{tail}",
    st.text(alphabet="abcdefghjkmnpqrstuvwxyz", min_size=5, max_size=8),
    st.text(alphabet="0123456789", min_size=3, max_size=5),
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(marker=markers)
def test_a_marker_in_any_text_attribute_never_survives(marker: str) -> None:
    dataset = marked_dataset(marker)
    assert marker.encode() in encoded(dataset)  # the marker is there before

    deidentify(dataset, secret=SECRET)
    stored = encoded(dataset)

    assert not leaks(stored, marker)
    assert stored[:128] == PREAMBLE
    reread = pydicom.dcmread(io.BytesIO(stored))
    assert reread.Rows == 128 and reread.pixel_array.shape == (128, 128)
    assert reread.Modality == "CT"


def test_the_preamble_is_zeroed() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    dataset.preamble = b"JOHN DOE MRN-998877 DOB 1930-01-01".ljust(128, b" ")

    deidentify(dataset, secret=SECRET)

    stored = encoded(dataset)
    assert stored[:132] == b"\0" * 128 + b"DICM"
    assert b"JOHN DOE" not in stored


@pytest.mark.parametrize(
    ("keyword", "vr", "value"),
    [
        ("PatientBirthName", "PN", "DOE^JOHN"),  # (0010,1005)
        ("PatientReligiousPreference", "LO", "MRN-998877"),  # (0010,21F0)
        ("PersonName", "PN", "Doe^John"),  # (0040,A123)
        ("TextValue", "UT", "Call John Doe at 555-123-4567, MRN-998877"),
        ("DeviceID", "LO", "John Doe's phone"),  # (0018,1003)
        ("CommentsOnThePerformedProcedureStep", "ST", "Call John Doe at 555-123-4567"),
    ],
)
def test_attributes_outside_the_allow_list_are_removed(keyword: str, vr: str, value: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    setattr(dataset, keyword, value)
    dataset.add_new(0x00100033, "LO", "John Doe strain")  # Patient's Primary Language?
    dataset.add_new(0x00100034, "LO", "John Doe code")
    dataset.add_new(0x00140104, "PN", "Doe^John")
    dataset.add_new(0x00142006, "PN", "Doe^John")
    dataset.add_new(0x00400400, "LT", "Call John Doe at 555-123-4567, MRN-998877")

    deidentify(dataset, secret=SECRET)

    stored = encoded(dataset)
    assert keyword not in dataset
    for tag in (0x00100033, 0x00100034, 0x00140104, 0x00142006, 0x00400400):
        assert tag not in dataset
    assert b"Doe" not in stored and b"998877" not in stored


def test_values_outside_the_terms_are_removed_and_vendors_are_named_canonically() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    dataset.BodyPartExamined = "JOHNDOE"
    dataset.ViewPosition = "PA"
    dataset.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "JOHN DOE"]
    dataset.Manufacturer = "SIEMENS for John Doe's clinic"
    dataset.StudyTime = "JOHN"

    deidentify(dataset, secret=SECRET)

    assert "BodyPartExamined" not in dataset
    assert dataset.ViewPosition == "PA"
    assert list(dataset.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert dataset.Manufacturer == "Siemens Healthineers"
    assert "StudyTime" not in dataset


def _basic_profile_removes() -> set[BaseTag]:
    tables = dicom_anonymization_database_selector("dicomfields_2026c")
    removed = set()
    for category in ("D_TAGS", "Z_TAGS", "X_TAGS", "Z_D_TAGS", "X_Z_TAGS", "X_D_TAGS"):
        for entry in tables[category]:
            if len(entry) == 2:
                removed.add(BaseTag((entry[0] << 16) | entry[1]))
    for category in ("X_Z_D_TAGS",):
        for entry in tables[category]:
            if len(entry) == 2:
                removed.add(BaseTag((entry[0] << 16) | entry[1]))
    return removed


def test_the_allow_list_keeps_nothing_the_basic_profile_removes_but_the_options() -> None:
    """Kept though the Basic Profile removes or blanks them: dates and times (option 113107,
    dates shifted), the patient characteristics (option 113108)."""
    retained = set(RETAINED_CHARACTERISTICS)
    overlap = {
        keyword_for_tag(tag)
        for tag in _basic_profile_removes() & set(KEPT)
        if KEPT[tag].kind not in ("date", "time") and keyword_for_tag(tag) not in retained
    }
    assert not overlap, f"kept though the Basic Profile removes them: {sorted(overlap)}"
