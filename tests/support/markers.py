"""A DICOM image with a marker string in every text-like attribute of pydicom's data
dictionary, for the de-identification tests (unit and every-way-in)."""

from __future__ import annotations

import io
import re
import warnings

import pydicom
from pydicom.data import get_testdata_file
from pydicom.datadict import DicomDictionary, RepeatersDictionary, keyword_for_tag
from pydicom.dataset import Dataset, FileDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

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
    """Where the marker (any case) or the marker date (DICOM or ISO form) appears in ``data``.

    The date counts only where it starts a value: not inside a longer number, so that a
    random UID (``2.25.`` and 39 digits) that happens to hold the eight digits is no leak."""
    found = []
    lowered = data.lower()
    needles = (
        re.escape(marker.lower().encode()),
        re.escape(marker[:16].lower().encode()),
        rb"(?<![0-9.])" + re.escape(MARKER_DATE.encode()),
        # The same date as a database or JSON date (``1917-04-23``).
        rb"(?<![0-9.])"
        + re.escape(f"{MARKER_DATE[:4]}-{MARKER_DATE[4:6]}-{MARKER_DATE[6:]}".encode()),
    )
    for needle in needles:
        match = re.search(needle, lowered)
        if match is not None:
            at = match.start()
            found.append(f"{needle!r} at byte {at}: {data[max(at - 40, 0) : at + 40]!r}")
    return found
