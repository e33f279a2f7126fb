"""The clinical free-text scrubber: direct identifiers out, dates shifted like the images'."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset

from annotations.dicom.deidentify import date_shift_days, deidentify, shift_date
from annotations.dicom.text_scrub import scrub_clinical_text

SECRET = "project-secret-for-tests"
PATIENT = "PID-0042"
DAYS = date_shift_days(SECRET, PATIENT)


def scrub(text: str, **extra: bool) -> str:
    return scrub_clinical_text(text, secret=SECRET, patient_key=PATIENT, **extra)


def shifted(year: int, month: int, day: int) -> date:
    return date(year, month, day) - timedelta(days=DAYS)


@pytest.mark.parametrize(
    ("text", "gone", "token"),
    [
        ("Mr. John Smith presents with cough.", "John Smith", "Mr. [NAME]"),
        ("Seen by Dr Jane O'Neil today.", "O'Neil", "Dr [NAME]"),
        ("Patient: SMITH, JOHN. Chest pain.", "SMITH", "Patient: [NAME]"),
        ("Name: Maria Garcia", "Garcia", "Name: [NAME]"),
        ("Signed by Gregory House.", "House", "Signed by [NAME]"),
        ("MRN: 12345678, follow-up.", "12345678", "MRN: [ID]"),
        ("Accession No. AB123456 requested.", "AB123456", "[ID]"),
        ("Record # X99-1234 on file", "X99-1234", "[ID]"),
        ("Old chart 004455667 attached", "004455667", "[ID]"),
        ("Call (617) 555-0100 for results", "555-0100", "[PHONE]"),
        ("Fax: +44 20 7946 0958", "7946", "[PHONE]"),
        ("Phone 0161 496 0000.", "496", "[PHONE]"),
        ("Contact j.smith@example.org", "example.org", "[EMAIL]"),
        ("See https://intranet.example/patient/42", "intranet", "[URL]"),
        ("Lives at 221 Baker Street near the park", "Baker", "[ADDRESS]"),
        ("Address: 1 Long Road, Springfield", "Springfield", "Address: [ADDRESS]"),
        ("Boston MA 02115", "02115", "[ADDRESS]"),
        ("Postcode SW1A 1AA", "SW1A", "[ADDRESS]"),
        ("SSN 123-45-6789", "6789", "[ID]"),
    ],
)
def test_direct_identifiers_are_replaced_by_tokens(text: str, gone: str, token: str) -> None:
    result = scrub(text)

    assert gone not in result
    assert token in result


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A 92-year-old woman", "A 90+-year-old woman"),
        ("95 yo male", "90+ yo male"),
        ("aged 101, frail", "aged 90+, frail"),
        ("Age: 93", "Age: 90+"),
        ("A 45-year-old man", "A 45-year-old man"),
        ("aged 89", "aged 89"),
    ],
)
def test_ages_over_89_become_90_plus(text: str, expected: str) -> None:
    assert scrub(text) == expected


def test_dates_in_common_formats_move_back_by_the_same_offset_as_dicom_dates() -> None:
    new = shifted(2024, 3, 12)
    text = "Scans 2024-03-12, 2024/03/12, 12 March 2024, March 12, 2024, 12 Mar 2024, 03/12/2024."

    result = scrub(text)

    assert result == (
        f"Scans {new:%Y-%m-%d}, {new:%Y/%m/%d}, {new.day} {new:%B %Y}, {new:%B} {new.day}, "
        f"{new.year}, {new.day} {new:%b %Y}, {new:%m/%d/%Y}."
    )
    assert shift_date("20240312", DAYS) == f"{new:%Y%m%d}"  # the DICOM side agrees


def test_day_first_and_unambiguous_numeric_dates() -> None:
    new = shifted(2024, 3, 25)

    assert scrub("on 25/03/2024") == f"on {new:%d/%m/%Y}"  # 25 cannot be a month
    assert scrub("on 12.03.2024", day_first=True) == (f"on {shifted(2024, 3, 12):%d.%m.%Y}")
    assert scrub("on 31/02/2024") == "on [DATE]"
    assert scrub("on 03/12/24") == "on [DATE]"


def test_text_without_identifiers_is_unchanged() -> None:
    text = "Cough and fever for 3 days. Rule out pneumonia; CT L4-L5, HbA1c 7.1%, 1500 mL."

    assert scrub(text) == text


def test_other_patients_get_another_offset_and_empty_text_stays_empty() -> None:
    offsets = {date_shift_days(SECRET, f"PID-{n}") for n in range(20)}

    assert len(offsets) > 1
    assert scrub("") == ""


@settings(max_examples=50, deadline=None)
@given(
    family=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=10),
    mrn=st.integers(10**6, 10**10),
    phone=st.tuples(st.integers(200, 999), st.integers(200, 999), st.integers(1000, 9999)),
    day=st.dates(min_value=date(1930, 1, 1), max_value=date(2030, 12, 31)),
)
def test_generated_identifiers_in_a_history_never_survive(
    family: str, mrn: int, phone: tuple[int, int, int], day: date
) -> None:
    name = "Qz" + family
    number = f"({phone[0]}) {phone[1]}-{phone[2]}"
    text = (
        f"Mrs {name} (MRN {mrn}) referred by Dr. {name}x on {day:%d %B %Y}; "
        f"contact {number}, {name.lower()}@mail.example. Prior study {day.isoformat()}."
    )

    result = scrub(text)

    for secret_part in (name, str(mrn), number, day.isoformat(), f"{day:%d %B %Y}"):
        assert secret_part not in result, (secret_part, result)


def test_text_dates_move_with_the_same_patients_image_dates() -> None:
    dataset = Dataset()
    dataset.PatientID, dataset.StudyDate = "SOURCE-77", "20240312"
    dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    dataset.SOPInstanceUID = "1.2.826.0.1.3680043.10.77"

    _, patient = deidentify(dataset, secret=SECRET)
    text = scrub_clinical_text("Prior CT 2024-03-12.", secret=SECRET, patient_key=patient)

    study = dataset.StudyDate
    assert text == f"Prior CT {study[:4]}-{study[4:6]}-{study[6:]}."
