"""Whether a parsed DICOM data set is all there.

pydicom reads a truncated file without complaint: the last value is just shorter than its
header says, or (when the file ends inside the meta header, or an undefined length runs to the
end of the file) the data set is empty. A corrupt length field looks the same: its value runs
past the end of the file. Every way DICOM reaches MedLoop (files, C-STORE, DICOMweb) asks here
before anything is stored."""

from __future__ import annotations

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

UNDEFINED_LENGTH = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010


def incomplete_reason(dataset: Dataset) -> str | None:
    """Why ``dataset`` ends early (empty, or a top-level value shorter than its declared
    length), or None when it is complete. Looks only at the raw elements: converts nothing."""
    # keep_deferred: a raw element is returned as read, never converted (conversion of a
    # damaged value raises, and is the ingest's business later).
    elements = [dataset.get_item(tag, keep_deferred=True) for tag in sorted(dataset.keys())]
    if not elements:
        return (
            "truncated: no data elements after the file meta information "
            "(the file ends early or a length field is corrupt)"
        )
    for element in elements:
        if not isinstance(element, RawDataElement) or element.value is None:
            continue
        if element.length != UNDEFINED_LENGTH and len(element.value) < element.length:
            what = "pixel data truncated" if element.tag == PIXEL_DATA else "truncated"
            return (
                f"{what} or corrupt length: element {element.tag} declares "
                f"{element.length} bytes but only {len(element.value)} remain in the file"
            )
    return None
