"""Pixel pipeline: pydicom's own test corpus end to end, then the display rules one by one."""

from __future__ import annotations

import fnmatch
import io
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import pack_bits
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian

from annotations.dicom.pixels import (
    UnsupportedPixelData,
    cached_render,
    check_decodable,
    decode_frame,
    frame_count,
    render_png,
    to_display,
)

# --------------------------------------------------------------------------------------------
# The corpus: every file pydicom ships on disk.
# pydicom.data.get_testdata_files() would download the files it lists online, so the package
# folder is globbed instead (DICOMDIR trees included).
# --------------------------------------------------------------------------------------------
CORPUS_ROOT = Path(pydicom.__file__).parent / "data" / "test_files"
CORPUS = sorted(
    p.relative_to(CORPUS_ROOT).as_posix() for p in CORPUS_ROOT.rglob("*") if p.is_file()
)

NOT_DICOM = "missing DICOM File Meta Information header or the 'DICM' prefix"
# dcmread(force=False) refuses these: not DICOM at all, or DICOM without a Part 10 header.
EXPECTED_UNREADABLE = {
    "README.txt": NOT_DICOM,
    "crayons.icc": NOT_DICOM,
    "dicomdirtests/README.txt": NOT_DICOM,
    "dicomdirtests/TINY_ALPHA/README": NOT_DICOM,
    "ExplVR_BigEndNoMeta.dcm": NOT_DICOM,
    "ExplVR_LitEndNoMeta.dcm": NOT_DICOM,
    "no_meta.dcm": NOT_DICOM,
    "rtplan.dump": NOT_DICOM,
    "rtstruct.dcm": NOT_DICOM,
    "rtstruct.dump": NOT_DICOM,
    "test1.json": NOT_DICOM,
    "test_PN.json": NOT_DICOM,
    "zipMR.gz": NOT_DICOM,
}

NO_PIXELS = "no pixel data: the dataset has no (7FE0,0010) Pixel Data"
# Readable DICOM whose pixels are refused, with the start of the reason given.
EXPECTED_REFUSED = {
    # Not images: structured reports, RT plans, DICOMDIRs, a waveform, header-only test files.
    "UN_sequence.dcm": NO_PIXELS,
    "dicomdirtests/DICOMDIR": NO_PIXELS,
    "dicomdirtests/DICOMDIR-bigEnd": NO_PIXELS,
    "dicomdirtests/DICOMDIR-empty.dcm": NO_PIXELS,
    "dicomdirtests/DICOMDIR-implicit": NO_PIXELS,
    "dicomdirtests/DICOMDIR-nooffset": NO_PIXELS,
    "dicomdirtests/DICOMDIR-nopatient": NO_PIXELS,
    "dicomdirtests/DICOMDIR-reordered": NO_PIXELS,
    "dicomdirtests/TINY_ALPHA/DICOMDIR": NO_PIXELS,
    "empty_charset_LEI.dcm": NO_PIXELS,
    "no_meta_group_length.dcm": NO_PIXELS,
    "priv_SQ.dcm": NO_PIXELS,
    "reportsi.dcm": NO_PIXELS,
    "reportsi_with_empty_number_tags.dcm": NO_PIXELS,
    "rtplan.dcm": NO_PIXELS,
    "rtplan_truncated.dcm": NO_PIXELS,
    "test-SR.dcm": NO_PIXELS,
    "waveform_ecg.dcm": NO_PIXELS,
    # Broken or undecodable images.
    "JPEG-lossy.dcm": (
        "transfer syntax 1.2.840.10008.1.2.4.51 (JPEG Extended (Process 2 and 4)): "
        "pixel data could not be decoded: "
    ),
    "JPEG2000-embedded-sequence-delimiter.dcm": (
        "transfer syntax 1.2.840.10008.1.2.4.91 (JPEG 2000 Image Compression): "
        "pixel data could not be decoded: "
    ),
    "MR_truncated.dcm": "pixel data truncated: expected 8192 bytes, found 8130",
    "badVR.dcm": "invalid value '1A' for (0028,0008) Number of Frames",
    "meta_missing_tsyntax.dcm": (
        "no transfer syntax: the file meta information has no (0002,0010) Transfer Syntax UID"
    ),
    "nested_priv_SQ.dcm": "missing required attribute (0028,0002) SamplesPerPixel",
}
# The TINY_ALPHA DICOMDIR tree's instances are header-only: all refused for want of pixels.
TINY_ALPHA_INSTANCES = "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM*"
TINY_ALPHA_INSTANCE_COUNT = 50
# Rendering every frame of a long cine or volume adds time and no coverage: sample these.
MAX_DISPLAYED_FRAMES = 8


def _expected_refusal(name: str) -> str | None:
    if fnmatch.fnmatch(name, TINY_ALPHA_INSTANCES):
        return NO_PIXELS
    return EXPECTED_REFUSED.get(name)


def _read(name: str) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the corpus is deliberately full of invalid values
        return pydicom.dcmread(CORPUS_ROOT / name)


def test_corpus_is_present_with_every_file_the_tables_name() -> None:
    names = set(CORPUS)
    assert len(names) > 150
    assert set(EXPECTED_UNREADABLE) <= names
    assert set(EXPECTED_REFUSED) <= names
    assert len(fnmatch.filter(names, TINY_ALPHA_INSTANCES)) == TINY_ALPHA_INSTANCE_COUNT


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", CORPUS)
def test_corpus_file_is_decoded_as_pydicom_does_or_refused_with_its_reason(name: str) -> None:
    try:
        dataset = _read(name)
    except InvalidDicomError as exc:
        assert name in EXPECTED_UNREADABLE, f"{name} unexpectedly unreadable: {exc}"
        assert EXPECTED_UNREADABLE[name] in str(exc)
        return
    assert name not in EXPECTED_UNREADABLE, f"{name} is readable now"

    expected_refusal = _expected_refusal(name)
    try:
        check_decodable(dataset)
    except UnsupportedPixelData as exc:
        assert expected_refusal is not None, f"{name} unexpectedly refused: {exc}"
        assert str(exc).startswith(expected_refusal)
        # A refusal is never a file pydicom itself decodes, and every entry point says why.
        with pytest.raises(Exception):  # noqa: B017 - any error pydicom raises
            _read(name).pixel_array  # noqa: B018
        with pytest.raises(UnsupportedPixelData):
            decode_frame(dataset, 0)
        with pytest.raises(UnsupportedPixelData):
            to_display(dataset, 0)
        return
    assert expected_refusal is None, f"{name} should be refused: {expected_refusal}"

    reference = _read(name).pixel_array
    frames = frame_count(dataset)
    assert frames >= 1
    expected_frames = [reference] if frames == 1 else list(reference)
    assert len(expected_frames) == frames
    for index, expected in enumerate(expected_frames):
        decoded = decode_frame(dataset, index)
        assert decoded.dtype == expected.dtype
        np.testing.assert_array_equal(decoded, expected, err_msg=f"{name} frame {index}")

    shown = sorted({int(i) for i in np.linspace(0, frames - 1, min(frames, MAX_DISPLAYED_FRAMES))})
    for index in shown:
        display = to_display(dataset, index)
        assert display.dtype == np.uint8
        rows, columns = expected_frames[index].shape[:2]
        assert display.shape in ((rows, columns), (rows, columns, 3))
    png = render_png(dataset, frames - 1, max_size=64)
    assert png.startswith(b"\x89PNG")


# --------------------------------------------------------------------------------------------
# Synthetic datasets, one rule each.
# --------------------------------------------------------------------------------------------
def make_dataset(
    pixels: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: int | None = None
) -> Dataset:
    """An in-memory Explicit VR Little Endian image holding ``pixels`` as stored values."""
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.set_pixel_data(pixels, photometric, bits_stored or pixels.dtype.itemsize * 8)
    return dataset


def test_ct_rescale_intercept_is_applied_so_the_window_is_in_hounsfield_units() -> None:
    # Stored 0, 1024, 1064, 2024 with intercept -1024 are -1024 (air), 0 (water), 40, 1000 HU.
    ct = make_dataset(np.array([[0, 1024], [1064, 2024]], dtype=np.int16), bits_stored=12)
    ct.RescaleSlope = 1
    ct.RescaleIntercept = -1024

    display = to_display(ct, window_center=40, window_width=80)

    assert display[0, 0] == 0
    assert display[0, 1] == 0  # water is at the bottom of a 0..80 HU window
    assert abs(int(display[1, 0]) - 128) <= 2
    assert display[1, 1] == 255


def test_rescale_slope_scales_stored_values() -> None:
    dose = make_dataset(np.array([[0, 100]], dtype=np.uint16))
    dose.RescaleSlope = 0.5
    dose.RescaleIntercept = 0
    # 100 stored is 50 after the slope: the centre of a 0..100 window.
    assert abs(int(to_display(dose, window_center=50, window_width=100)[0, 1]) - 128) <= 2


def test_window_maps_below_to_black_above_to_white_and_centre_to_mid_grey() -> None:
    image = make_dataset(np.array([[0, 999, 1500, 2001, 4095]], dtype=np.uint16), bits_stored=12)
    image.WindowCenter = 1500
    image.WindowWidth = 1000

    display = to_display(image)

    assert display[0, 0] == 0
    assert display[0, 1] == 0
    assert abs(int(display[0, 2]) - 128) <= 1
    assert display[0, 3] == 255
    assert display[0, 4] == 255


def test_explicit_window_overrides_the_files_window() -> None:
    image = make_dataset(np.array([[100, 200]], dtype=np.uint16))
    image.WindowCenter = [5000, 300]  # the first of several windows is the default
    image.WindowWidth = [10, 10]

    assert to_display(image).tolist() == [[0, 0]]
    assert to_display(image, window_center=150, window_width=100).tolist() == [[0, 255]]


def test_without_any_voi_the_frame_min_and_max_span_black_to_white() -> None:
    signed = make_dataset(np.array([[-2000, 0, 2000]], dtype=np.int16))
    assert to_display(signed).tolist() == [[0, 128, 255]]


def test_monochrome1_is_inverted_so_that_white_is_dense() -> None:
    values = np.array([[0, 100, 4095]], dtype=np.uint16)
    monochrome1 = make_dataset(values, "MONOCHROME1", bits_stored=12)
    monochrome2 = make_dataset(values, "MONOCHROME2", bits_stored=12)

    display1, display2 = to_display(monochrome1), to_display(monochrome2)

    assert display1[0, 0] == 255  # the lowest MONOCHROME1 value is white
    assert display1[0, 2] == 0
    np.testing.assert_array_equal(display1.astype(int), 255 - display2.astype(int))


def test_invert_flag_flips_after_monochrome1_inversion() -> None:
    values = np.array([[0, 100, 4095]], dtype=np.uint16)
    monochrome1 = make_dataset(values, "MONOCHROME1", bits_stored=12)
    monochrome2 = make_dataset(values, "MONOCHROME2", bits_stored=12)

    np.testing.assert_array_equal(to_display(monochrome1, invert=True), to_display(monochrome2))
    np.testing.assert_array_equal(
        to_display(monochrome2, invert=True).astype(int), 255 - to_display(monochrome2)
    )


def _voi_lut_item(first_mapped: int, data: list[int], bits: int) -> Dataset:
    item = Dataset()
    item.add_new(0x00283002, "US", [len(data), first_mapped, bits])  # LUT Descriptor
    item.add_new(0x00283006, "US", data)  # LUT Data
    return item


def test_voi_lut_sequence_is_applied_when_the_file_has_no_window() -> None:
    image = make_dataset(np.array([[0, 10, 11, 12, 300]], dtype=np.uint16))
    # A 4-entry LUT from stored value 10: below maps to the first entry, above to the last.
    image.VOILUTSequence = Sequence([_voi_lut_item(10, [0, 1000, 3000, 4095], 12)])

    display = to_display(image)

    assert display.tolist() == [[0, 0, 62, 187, 255]]


def test_window_takes_precedence_over_voi_lut_sequence() -> None:
    image = make_dataset(np.array([[0, 10, 11, 12, 300]], dtype=np.uint16))
    image.VOILUTSequence = Sequence([_voi_lut_item(10, [4095, 3000, 1000, 0], 12)])
    image.WindowCenter = 150
    image.WindowWidth = 300
    assert to_display(image)[0, 4] == 255  # rising window, not the falling LUT


def test_palette_colour_is_rendered_through_its_palette() -> None:
    image = make_dataset(np.array([[0, 1, 2]], dtype=np.uint8), "PALETTE COLOR", bits_stored=8)
    red, green, blue = ([65535, 0, 0], [0, 65535, 0], [0, 0, 32896])
    for colour, entries in zip(("Red", "Green", "Blue"), (red, green, blue), strict=True):
        setattr(image, f"{colour}PaletteColorLookupTableDescriptor", [3, 0, 16])
        setattr(
            image,
            f"{colour}PaletteColorLookupTableData",
            np.array(entries, dtype="<u2").tobytes(),
        )

    display = to_display(image)

    assert display.shape == (1, 3, 3)
    assert display.tolist() == [[[255, 0, 0], [0, 255, 0], [0, 0, 128]]]


def test_ybr_full_is_converted_to_rgb() -> None:
    # Pure red in YCbCr (full range): Y = 0.299 * 255, Cb = 128 - 0.1687 * 255, Cr = 255.
    image = make_dataset(np.array([[[76, 85, 255]]], dtype=np.uint8), "YBR_FULL", bits_stored=8)

    decoded = decode_frame(image, 0)
    display = to_display(image)

    assert decoded.shape == display.shape == (1, 1, 3)
    assert abs(int(display[0, 0, 0]) - 255) <= 2
    assert int(display[0, 0, 1]) <= 2
    assert int(display[0, 0, 2]) <= 2


def test_rgb_with_16_bits_is_scaled_to_8_bits() -> None:
    image = make_dataset(np.array([[[0, 2048, 4095]]], dtype=np.uint16), "RGB", bits_stored=12)
    assert to_display(image).tolist() == [[[0, 128, 255]]]


def test_float_pixel_data_is_decoded_and_stretched() -> None:
    values = np.array([[-1.5, 0.0, 1.5]], dtype=np.float32)
    image = Dataset()
    image.file_meta = FileMetaDataset()
    image.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    image.Rows, image.Columns = values.shape
    image.SamplesPerPixel = 1
    image.PhotometricInterpretation = "MONOCHROME2"
    image.BitsAllocated = 32
    image.FloatPixelData = values.tobytes()

    check_decodable(image)
    np.testing.assert_array_equal(decode_frame(image, 0), values)
    assert to_display(image).tolist() == [[0, 128, 255]]


def test_multi_frame_decodes_and_renders_the_requested_frame() -> None:
    frames = np.stack([np.full((2, 3), value, dtype=np.uint16) for value in (10, 20, 30)])
    image = make_dataset(frames)

    assert frame_count(image) == 3
    for index, value in enumerate((10, 20, 30)):
        decoded = decode_frame(image, index)
        assert decoded.shape == (2, 3)
        assert (decoded == value).all()
    assert to_display(image, 1, window_center=20, window_width=1001)[0, 0] == 128
    assert to_display(image, 2, window_center=20, window_width=19)[0, 0] == 255
    with pytest.raises(IndexError, match="frame 3 out of range"):
        decode_frame(image, 3)


def test_single_frame_decode_is_the_whole_image() -> None:
    values = np.arange(12, dtype=np.uint8).reshape(3, 4)
    image = make_dataset(values)
    assert frame_count(image) == 1
    np.testing.assert_array_equal(decode_frame(image, 0), values)


def test_an_image_without_pixel_data_has_no_frames_and_is_refused() -> None:
    report = Dataset()
    report.file_meta = FileMetaDataset()
    report.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    assert frame_count(report) == 0
    with pytest.raises(UnsupportedPixelData, match=r"^no pixel data"):
        check_decodable(report)


def test_truncated_native_multi_frame_is_refused_with_both_lengths() -> None:
    image = make_dataset(np.zeros((2, 4, 4), dtype=np.uint16))
    image.PixelData = image.PixelData[:40]
    with pytest.raises(UnsupportedPixelData, match="expected 64 bytes, found 40"):
        check_decodable(image)


def test_transfer_syntax_pydicom_cannot_decode_is_refused_by_name() -> None:
    image = make_dataset(np.zeros((4, 4), dtype=np.uint8))
    image.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.4.100")
    with pytest.raises(UnsupportedPixelData) as refusal:
        check_decodable(image)
    assert str(refusal.value) == (
        "transfer syntax 1.2.840.10008.1.2.4.100 (MPEG2 Main Profile / Main Level) "
        "cannot be decoded: pydicom has no decoder for it"
    )


def test_one_bit_pixel_data_is_unpacked_and_shown_black_and_white() -> None:
    bits = np.array([[0, 1, 1, 0, 1, 0, 0, 1]], dtype=np.uint8)
    image = make_dataset(bits)
    image.BitsAllocated = image.BitsStored = 1
    image.HighBit = 0
    image.PixelData = pack_bits(bits)

    check_decodable(image)
    np.testing.assert_array_equal(decode_frame(image, 0), bits)
    assert to_display(image).tolist() == [[0, 255, 255, 0, 255, 0, 0, 255]]


def test_window_parameters_must_come_together_and_be_positive() -> None:
    image = make_dataset(np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="together"):
        to_display(image, window_center=10)
    with pytest.raises(ValueError, match="> 0"):
        to_display(image, window_center=10, window_width=0)


def test_thumbnail_keeps_the_aspect_ratio_and_never_enlarges() -> None:
    image = make_dataset(np.tile(np.arange(200, dtype=np.uint8), (100, 1)))

    thumbnail = Image.open(io.BytesIO(render_png(image, max_size=50)))
    full = Image.open(io.BytesIO(render_png(image, max_size=1000)))

    assert thumbnail.size == (50, 25)
    assert thumbnail.mode == "L"
    assert full.size == (200, 100)


def test_rgb_png_round_trips_the_display_pixels() -> None:
    pixels = np.array([[[255, 0, 0], [0, 255, 0]]], dtype=np.uint8)
    image = make_dataset(pixels, "RGB", bits_stored=8)
    png = Image.open(io.BytesIO(render_png(image)))
    assert png.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(png), pixels)


def test_cache_produces_once_then_serves_the_stored_bytes(tmp_path: Path) -> None:
    calls: list[int] = []

    def produce() -> bytes:
        calls.append(1)
        return b"rendered-%d" % len(calls)

    key = ("instance-sha256", 0, 40.0, 400.0, False, 256)
    first = cached_render(tmp_path, key, produce)
    again = cached_render(tmp_path, key, produce)
    other = cached_render(tmp_path, (*key[:-1], 128), produce)

    assert first == again == b"rendered-1"
    assert other == b"rendered-2"
    assert len(calls) == 2
    stored = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert len(stored) == 2  # no temporary files left behind
    assert all(p.suffix == ".png" and not p.name.startswith(".tmp") for p in stored)


def test_cache_leaves_nothing_when_production_fails(tmp_path: Path) -> None:
    def produce() -> bytes:
        raise UnsupportedPixelData("no pixel data")

    with pytest.raises(UnsupportedPixelData):
        cached_render(tmp_path, ("sha", 0), produce)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
