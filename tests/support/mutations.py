"""Malformed DICOM files derived from pydicom's test corpus, for the ingest paths' fuzz tests.

Each ``Mutation`` is one broken file: its bytes, a name for reports, and the words a refusal
must contain to count as naming what is wrong. Byte-level damage is done at offsets found in
the original file (element headers are searched for as their encoded bytes), so the broken
part is the one the name says."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pydicom
from PIL import Image
from pydicom.data import get_testdata_file

# Explicit VR little endian, 128 x 128, 16 bits: the main source of mutations.
CT = "CT_small.dcm"
# Deflated explicit VR little endian.
DEFLATED = "image_dfl.dcm"

PREAMBLE_AND_MAGIC = 132
ROWS_HEADER = b"\x28\x00\x10\x00US"  # (0028,0010) Rows, explicit VR
PIXEL_DATA_HEADER = b"\xe0\x7f\x10\x00OW\x00\x00"  # (7FE0,0010) Pixel Data, OW
PATIENT_NAME_HEADER = b"\x10\x00\x10\x00PN"  # (0010,0010) Patient's Name
SOP_INSTANCE_UID_HEADER = b"\x08\x00\x18\x00UI"  # (0008,0018) SOP Instance UID
SOP_CLASS_UID_HEADER = b"\x08\x00\x16\x00UI"  # (0008,0016) SOP Class UID
PHOTOMETRIC_HEADER = b"\x28\x00\x04\x00CS"  # (0028,0004) Photometric Interpretation


@dataclass(frozen=True)
class Mutation:
    """One malformed file. ``reason``: words a refusal must contain (it names the fault).
    ``has_meta``: the file meta header is intact, so a DICOM sender can propose the file as
    it is (C-STORE carries the data set after the meta header)."""

    name: str
    data: bytes
    reason: str
    has_meta: bool = True


def corpus_bytes(name: str) -> bytes:
    return Path(get_testdata_file(name)).read_bytes()  # type: ignore[arg-type]


def meta_end(data: bytes) -> int:
    """Offset of the first data set element after the (0002) group of a Part 10 file."""
    (group_length,) = struct.unpack_from("<I", data, PREAMBLE_AND_MAGIC + 8)
    return PREAMBLE_AND_MAGIC + 12 + int(group_length)


def _find(data: bytes, header: bytes) -> int:
    offset = data.find(header, meta_end(data))
    assert offset >= 0, f"{header!r} not found"
    return offset


def _patch(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


def _rewrite(name: str, change: Callable[[pydicom.FileDataset], None]) -> bytes:
    """The corpus file re-encoded by pydicom after ``change`` (semantic damage)."""
    dataset = pydicom.dcmread(get_testdata_file(name))
    change(dataset)
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=False)
    return buffer.getvalue()


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (16, 16), color=128).save(buffer, format="PNG")
    return buffer.getvalue()


def _drop_pixel_data(ds: pydicom.FileDataset) -> None:
    del ds.PixelData


def _halve_pixel_data(ds: pydicom.FileDataset) -> None:
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]


def _with_transfer_syntax(data: bytes, uid: str) -> bytes:
    """``data`` with its meta header rewritten to claim ``uid``; the data set bytes unchanged."""
    meta = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).file_meta
    meta.TransferSyntaxUID = uid
    buffer = io.BytesIO()
    buffer.write(data[:PREAMBLE_AND_MAGIC])
    pydicom.filewriter.write_file_meta_info(buffer, meta, enforce_standard=True)
    return buffer.getvalue() + data[meta_end(data) :]


def _deflated_garbage() -> bytes:
    data = corpus_bytes(DEFLATED)
    start = meta_end(data)
    # Bytes that are not a deflate stream at all, then a stream that inflates to noise.
    noise = bytes((i * 37 + 11) % 256 for i in range(len(data) - start))
    return data[:start] + noise


def _deflated_noise_that_inflates() -> bytes:
    data = corpus_bytes(DEFLATED)
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    body = bytes((i * 131 + 7) % 251 for i in range(4096))
    return data[: meta_end(data)] + compressor.compress(body) + compressor.flush()


def _fresh_uids(data: bytes, index: int) -> bytes:
    """``data`` with the study, series and instance UIDs of CT_small made unique to ``index``
    (same lengths, so every offset and length in the file stays as it was)."""
    for uid in CT_UIDS:
        data = data.replace(uid.encode(), f"{uid[:-3]}{100 + index:03d}".encode())
    return data


CT_UIDS = (  # longest first: none is a prefix of another, but be safe
    "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322",  # SOP Instance UID
    "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322",  # Series Instance UID
    "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322",  # Study Instance UID
)


@cache
def mutations() -> tuple[Mutation, ...]:
    """Every malformed file (deterministic bytes, built once). Files derived from CT_small
    carry UIDs of their own, so no mutation can pass for a duplicate of another."""
    ct = corpus_bytes(CT)
    end = meta_end(ct)
    rows = _find(ct, ROWS_HEADER)
    pixels = _find(ct, PIXEL_DATA_HEADER)
    name = _find(ct, PATIENT_NAME_HEADER)
    sop_uid = _find(ct, SOP_INSTANCE_UID_HEADER)
    sop_class = _find(ct, SOP_CLASS_UID_HEADER)
    photometric = _find(ct, PHOTOMETRIC_HEADER)
    built = [
        Mutation("zero-byte.dcm", b"", "empty file", has_meta=False),
        Mutation("image.png", _png(), "not a DICOM file", has_meta=False),
        Mutation("notes.txt", b"Patient: Doe^John\nNot an image.\n", "not a DICOM file", False),
        # Truncated at several offsets: in the preamble, right after "DICM", inside the meta
        # header, right after it, inside the data set, inside the pixel data, one byte short.
        Mutation("cut-in-preamble.dcm", ct[:64], "not a DICOM file", has_meta=False),
        Mutation("cut-after-dicm.dcm", ct[:PREAMBLE_AND_MAGIC], "truncated", has_meta=False),
        Mutation("cut-in-meta.dcm", ct[: PREAMBLE_AND_MAGIC + 60], "truncated", has_meta=False),
        Mutation("cut-after-meta.dcm", ct[:end], "truncated"),
        Mutation("cut-in-dataset.dcm", ct[: (end + rows) // 2], "truncated"),
        Mutation("cut-in-pixel-data.dcm", ct[: pixels + 5000], "pixel data truncated"),
        Mutation("cut-one-byte-short.dcm", ct[:-1], "truncated"),
        # Corrupted lengths: past the end of the file, odd (the parse goes out of step), a
        # 4 GB pixel data length, an undefined length on native pixel data.
        Mutation(
            "name-length-past-end.dcm",
            _patch(ct, name + 6, struct.pack("<H", 0xFFFF)),
            "(0010,0010) declares 65535 bytes",
        ),
        Mutation("uid-length-odd.dcm", _patch(ct, sop_uid + 6, struct.pack("<H", 63)), "length"),
        Mutation("rows-length-odd.dcm", _patch(ct, rows + 6, struct.pack("<H", 3)), "length"),
        Mutation(
            "pixel-length-huge.dcm",
            _patch(ct, pixels + 8, struct.pack("<I", 0xFFFFFFF0)),
            "pixel data truncated or corrupt length",
        ),
        Mutation(
            "pixel-length-undefined.dcm",
            _patch(ct, pixels + 8, struct.pack("<I", 0xFFFFFFFF)),
            "length field is corrupt",
        ),
        # Wrong VRs: Rows as a float (FD needs 8 bytes, it has 2), as a sequence (another
        # header layout) and as no VR at all.
        Mutation("rows-vr-fd.dcm", _patch(ct, rows + 4, b"FD"), "malformed DICOM content"),
        Mutation("rows-vr-sq.dcm", _patch(ct, rows + 4, b"SQ"), "element (0028,0010) declares"),
        Mutation("rows-vr-unknown.dcm", _patch(ct, rows + 4, b"Q#"), "Value Representation"),
        # NUL bytes inside values (PostgreSQL refuses NUL in text and JSON): a SOP Class UID
        # that is no UID, a Photometric Interpretation that is no known value.
        Mutation("sop-class-nul.dcm", _patch(ct, sop_class + 8, b"\x00"), "is not a valid UID"),
        # The SOP Instance UID as LO: de-identification maps UIDs by their VR, so it would
        # keep the original identifier.
        Mutation("sop-uid-vr-lo.dcm", _patch(ct, sop_uid + 4, b"LO"), "(VR LO) is not a valid UID"),
        Mutation(
            "photometric-nul.dcm",
            _patch(ct, photometric + 8, b"\x00"),
            "'Photometric Interpretation' value '\\x00ONOCHROME2'",
        ),
        # The "DICM" magic damaged: with the preamble kept, the file is noise from byte 0.
        Mutation("dicm-corrupted.dcm", _patch(ct, 128, b"DICX"), "not a DICOM file", False),
        Mutation("no-pixel-data.dcm", _rewrite(CT, _drop_pixel_data), "no pixel data"),
        Mutation("short-pixel-data.dcm", _rewrite(CT, _halve_pixel_data), "pixel data truncated"),
        Mutation(
            "transfer-syntax-unknown.dcm",
            _with_transfer_syntax(ct, "1.2.3.4.5.6.7.8.9"),
            "not a known transfer syntax",
        ),
        Mutation(
            "transfer-syntax-not-a-uid.dcm",
            _with_transfer_syntax(ct, "not-a-uid"),
            "not a known transfer syntax",
        ),
        Mutation(
            "transfer-syntax-jpeg-on-native.dcm",
            _with_transfer_syntax(ct, pydicom.uid.JPEGBaseline8Bit),
            "pixel data could not be decoded",
        ),
        Mutation("deflated-garbage.dcm", _deflated_garbage(), "decompressing"),
        Mutation("deflated-noise.dcm", _deflated_noise_that_inflates(), "corrupt length"),
    ]
    return tuple(
        Mutation(m.name, _fresh_uids(m.data, index), m.reason, m.has_meta)
        for index, m in enumerate(built)
    )


def valid_file() -> tuple[str, bytes]:
    """A good file (MR_small, not a source of the mutations above) to send after them."""
    return "MR_small.dcm", corpus_bytes("MR_small.dcm")


def with_meta_of(source: bytes, body: bytes) -> bytes:
    """``body`` as the data set behind ``source``'s file meta header: what a DICOM sender can
    carry of a file that is not DICOM at all (C-STORE sends only the data set)."""
    return source[: meta_end(source)] + body
