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
from pydicom.datadict import keyword_for_tag
from pydicom.tag import BaseTag

from annotations.dicom.deidentify import KEPT, PREAMBLE, RETAINED_CHARACTERISTICS, deidentify
from tests.support.markers import encoded, leaks, marked_dataset

SECRET = "allow-list-tests"
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
    assert not dataset.StudyTime  # type 2: present, empty


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


def test_pydicom_never_quotes_an_incoming_value_in_the_logs(caplog) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    dataset.SpecificCharacterSet = "JOHNDOE"
    dataset.InstitutionName = "Doe Clinic"
    data = encoded(dataset)

    with caplog.at_level("DEBUG"):
        reread = pydicom.dcmread(io.BytesIO(data))
        str(reread.InstitutionName)  # decoding with the unknown character set logs

    assert caplog.records, "pydicom logged nothing: the check would prove nothing"
    assert "JOHNDOE" not in caplog.text
