"""Pixel pipeline: decode DICOM pixel data and render it for the viewer (pure; no Django).

Decoding is pydicom's own (``pydicom.pixels``, with the pylibjpeg plugins for JPEG baseline and
lossless, JPEG-LS, JPEG 2000 and RLE), so the stored values MedLoop serves are exactly those of
``Dataset.pixel_array``. Rendering follows the DICOM grayscale pipeline (PS3.4 N.2):

    stored values -> Modality LUT (Rescale Slope/Intercept or Modality LUT Sequence)
                  -> VOI (explicit window, else the file's first Window Center/Width,
                          else its VOI LUT Sequence, else the frame's min/max)
                  -> MONOCHROME1 inverted, so that white always means dense
                  -> optional user inversion -> uint8

Colour images go RGB -> uint8: YBR is converted to RGB by the decoder (as pydicom does by default),
PALETTE COLOR through its palette (``apply_color_lut``); an explicit window, if given, is applied
to each channel. Presentation LUT Shape, overlays, ICC profiles and the Supplemental/Enhanced
palette modules are not applied.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi,
    apply_windowing,
    as_pixel_options,
    get_decoder,
)
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import UID

from annotations.atomic_files import write_atomically

__all__ = [
    "UnsupportedPixelData",
    "cache_size",
    "cached_render",
    "check_decodable",
    "decode_frame",
    "evict_least_recently_used",
    "frame_count",
    "render_png",
    "to_display",
]

_PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# (tag, keyword) of the Image Pixel attributes a decoder needs, in the order they are checked.
_REQUIRED_ATTRIBUTES = (
    (0x00280002, "SamplesPerPixel"),
    (0x00280004, "PhotometricInterpretation"),
    (0x00280010, "Rows"),
    (0x00280011, "Columns"),
    (0x00280100, "BitsAllocated"),
)
# Required for integer Pixel Data only: float pixel data has neither.
_REQUIRED_FOR_INTEGER = (
    (0x00280101, "BitsStored"),
    (0x00280103, "PixelRepresentation"),
)

# pydicom and its plugins raise these for bad or undecodable pixel data; anything else is a bug.
_DECODE_ERRORS = (
    ValueError,
    RuntimeError,
    NotImplementedError,
    AttributeError,
    KeyError,
    TypeError,
)


class UnsupportedPixelData(Exception):
    """The pixel data of a dataset cannot be decoded; the message says why, for a person."""


def _tag_name(tag: int, keyword: str) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {keyword}"


def _has_pixel_data(dataset: Dataset) -> bool:
    return any(keyword in dataset for keyword in _PIXEL_DATA_KEYWORDS)


def _transfer_syntax(dataset: Dataset) -> UID:
    file_meta = getattr(dataset, "file_meta", None)
    tsyntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if not tsyntax:
        raise UnsupportedPixelData(
            "no transfer syntax: the file meta information has no (0002,0010) Transfer Syntax UID"
        )
    return UID(str(tsyntax))


def _describe(tsyntax: UID) -> str:
    name = tsyntax.name if tsyntax.name != str(tsyntax) else "unknown"
    return f"transfer syntax {tsyntax} ({name})"


def frame_count(dataset: Dataset) -> int:
    """Number of frames in the pixel data: Number of Frames (0028,0008), or 1 when absent.

    Returns 0 for a dataset without pixel data (a structured report, a DICOMDIR, an RT plan).
    A missing, empty or zero Number of Frames counts as 1, as pydicom decodes it.

    Raises:
        UnsupportedPixelData: Number of Frames is not a whole number (such as ``"1A"``).
    """
    if not _has_pixel_data(dataset):
        return 0
    if 0x00280008 not in dataset:
        return 1
    raw = dataset[0x00280008].value
    try:
        frames = int(raw) if raw not in (None, "") else 1
    except (TypeError, ValueError):
        raise UnsupportedPixelData(
            f"invalid value {str(raw)!r} for (0028,0008) Number of Frames"
        ) from None
    if frames < 0:
        raise UnsupportedPixelData(f"invalid value {frames} for (0028,0008) Number of Frames")
    return max(frames, 1)


def _decode(dataset: Dataset, frame: int | None) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode like ``pydicom.pixels.pixel_array(dataset, index=frame)``, keeping the properties.

    The properties (``photometric_interpretation``, ``bits_stored``, ...) describe the returned
    array, which may differ from the dataset: YBR is returned as RGB.
    """
    tsyntax = _transfer_syntax(dataset)
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError:
        raise UnsupportedPixelData(
            f"{_describe(tsyntax)} cannot be decoded: pydicom has no decoder for it"
        ) from None
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies)
        raise UnsupportedPixelData(
            f"{_describe(tsyntax)} cannot be decoded: no decoding plugin is installed"
            + (f" ({missing})" if missing else "")
        )
    try:
        options = as_pixel_options(dataset)
        arr, properties = decoder.as_array(dataset, index=frame, validate=True, **options)
    except _DECODE_ERRORS as exc:
        detail = " ".join(str(exc).split())
        raise UnsupportedPixelData(
            f"{_describe(tsyntax)}: pixel data could not be decoded: {detail}"
        ) from exc
    return arr, properties


def check_decodable(dataset: Dataset) -> None:
    """Raise :class:`UnsupportedPixelData` unless every frame of ``dataset`` can be decoded.

    Checks, in order: pixel data present; a transfer syntax; a pydicom decoder with an installed
    plugin; the Image Pixel attributes a decoder needs, with valid values; for native (uncompressed)
    data, enough bytes for all frames; then decodes the first and the last frame (cheap even for a
    large multi-frame file; the last catches truncated encapsulated data).
    """
    if not _has_pixel_data(dataset):
        raise UnsupportedPixelData("no pixel data: the dataset has no (7FE0,0010) Pixel Data")
    tsyntax = _transfer_syntax(dataset)

    required = list(_REQUIRED_ATTRIBUTES)
    if "PixelData" in dataset:
        required += _REQUIRED_FOR_INTEGER
    for tag, keyword in required:
        if tag not in dataset or dataset[tag].value in (None, ""):
            raise UnsupportedPixelData(f"missing required attribute {_tag_name(tag, keyword)}")
    frames = frame_count(dataset)

    if not tsyntax.is_encapsulated and "PixelData" in dataset:
        try:
            expected = get_expected_length(dataset, "bytes")
        except _DECODE_ERRORS as exc:
            raise UnsupportedPixelData(f"invalid Image Pixel attributes: {exc}") from exc
        found = len(dataset.PixelData)
        if found < expected:
            raise UnsupportedPixelData(
                f"pixel data truncated: expected {expected} bytes, found {found}"
            )

    _decode(dataset, 0)
    if frames > 1:
        _decode(dataset, frames - 1)


def decode_frame(dataset: Dataset, frame: int) -> np.ndarray:
    """Stored values of one frame, exactly as pydicom's ``ds.pixel_array`` gives them.

    Args:
        dataset: a dataset with pixel data and a transfer syntax in its file meta.
        frame: 0-based frame index (0 for a single-frame image).

    Returns:
        (Rows, Columns) for one sample per pixel, (Rows, Columns, 3) for colour; the dtype is
        pydicom's (uint8/int8 ... uint32/int32 by Bits Allocated and Pixel Representation, in the
        file's byte order for native big endian; float32/float64 for float pixel data). Colour is
        RGB: YBR_FULL and YBR_FULL_422 are converted, as pydicom does by default. Values are stored
        values: no Modality LUT, no VOI.

    Raises:
        IndexError: ``frame`` is not in ``range(frame_count(dataset))``.
        UnsupportedPixelData: the pixel data cannot be decoded.
    """
    return _decode(dataset, _checked_frame(dataset, frame))[0]


def _checked_frame(dataset: Dataset, frame: int) -> int:
    frames = frame_count(dataset)
    if frames == 0:
        raise UnsupportedPixelData("no pixel data: the dataset has no (7FE0,0010) Pixel Data")
    if not 0 <= frame < frames:
        raise IndexError(f"frame {frame} out of range: the image has {frames} frame(s)")
    return frame


def _window_dataset(center: float, width: float, function: str) -> Dataset:
    """A minimal dataset for ``apply_windowing`` whose output range is 0..255.

    ``apply_windowing`` maps to the range of the stored values; with 8 unsigned bits and no
    rescale that range is exactly the display range.
    """
    if function == "LINEAR" and width < 1:
        function = "LINEAR_EXACT"  # LINEAR needs width >= 1; float data (SUV, Gy) has narrower
    window = Dataset()
    window.PhotometricInterpretation = "MONOCHROME2"
    window.BitsStored = 8
    window.PixelRepresentation = 0
    window.WindowCenter = center
    window.WindowWidth = width
    window.VOILUTFunction = function
    return window


def _voi_function(dataset: Dataset) -> str:
    function = str(dataset.get("VOILUTFunction", "") or "LINEAR").upper()
    return function if function in ("LINEAR", "LINEAR_EXACT", "SIGMOID") else "LINEAR"


def _first_value(value: Any) -> float | None:
    """First number of a DS value of VM 1-n, or None when absent or not a number."""
    if value is None or value == "":
        return None
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        value = value[0] if len(value) else None  # a MultiValue of VM > 1
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map [low, high] linearly onto [0, 255] as float64 (a flat image maps to 0)."""
    values = values.astype(np.float64)
    if not high > low:
        return np.zeros(values.shape, dtype=np.float64)
    return (values - low) * (255.0 / (high - low))


def _as_integers(values: np.ndarray) -> np.ndarray:
    """Integer input for a LUT lookup: rescaled CT values are whole numbers held as float64."""
    if np.issubdtype(values.dtype, np.integer):
        return values
    return np.rint(np.nan_to_num(values)).astype(np.int64)


def _file_voi(values: np.ndarray, dataset: Dataset) -> np.ndarray | None:
    """The file's VOI of modality values as 0..255 float64; None when it has no usable VOI."""
    center = _first_value(dataset.get("WindowCenter"))
    width = _first_value(dataset.get("WindowWidth"))
    if center is not None and width is not None and width > 0:
        return apply_windowing(values, _window_dataset(center, width, _voi_function(dataset)))

    sequence = dataset.get("VOILUTSequence")
    if sequence and "LUTDescriptor" in sequence[0] and "LUTData" in sequence[0]:
        try:
            descriptor = sequence[0].LUTDescriptor
            entries = int(descriptor[0]) or 2**16
            first_mapped = int(descriptor[1])
            # The LUT's own output extent, so a 12-bit LUT declared as 16 bits is not dark.
            lut = apply_voi(np.arange(first_mapped, first_mapped + entries), dataset)
            mapped = apply_voi(_as_integers(values), dataset)
        except _DECODE_ERRORS:
            return None
        return _stretch(mapped, float(lut.min()), float(lut.max()))
    return None


def _grey_display(
    stored: np.ndarray,
    dataset: Dataset,
    photometric: str,
    window_center: float | None,
    window_width: float | None,
) -> np.ndarray:
    values = apply_modality_lut(stored, dataset)
    if window_center is not None and window_width is not None:
        display = apply_windowing(
            values, _window_dataset(window_center, window_width, _voi_function(dataset))
        )
    else:
        file_display = _file_voi(values, dataset)
        if file_display is not None:
            display = file_display
        else:
            finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
            low = float(finite.min()) if finite.size else 0.0
            high = float(finite.max()) if finite.size else 0.0
            display = _stretch(np.nan_to_num(values, nan=low), low, high)
    if photometric == "MONOCHROME1":
        display = 255.0 - display
    return display


def _colour_display(
    stored: np.ndarray,
    dataset: Dataset,
    photometric: str,
    bits_stored: int,
    window_center: float | None,
    window_width: float | None,
) -> np.ndarray:
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(stored, dataset)[..., :3]  # drop an alpha palette
        full_scale = 65535.0 if rgb.dtype == np.uint16 else 255.0
    else:
        rgb = stored
        full_scale = float(2**bits_stored - 1) if stored.dtype.kind in "ui" else 255.0
    if window_center is not None and window_width is not None:
        return apply_windowing(rgb, _window_dataset(window_center, window_width, "LINEAR"))
    if full_scale == 255.0:
        return rgb.astype(np.float64)
    return _stretch(rgb, 0.0, full_scale)


def to_display(
    dataset: Dataset,
    frame: int = 0,
    *,
    window_center: float | None = None,
    window_width: float | None = None,
    invert: bool = False,
) -> np.ndarray:
    """Render one frame for display.

    Args:
        dataset: a decodable dataset (see :func:`check_decodable`).
        frame: 0-based frame index.
        window_center, window_width: an explicit VOI window, in modality units (Hounsfield units
            for CT after Rescale Slope/Intercept); give both or neither. Without them, the file's
            first Window Center/Width is used, else its VOI LUT Sequence, else the frame's min/max.
            For colour images the window is applied to each channel's stored values.
        invert: flip the result (after MONOCHROME1 has been turned into white = dense).

    Returns:
        uint8 array, (Rows, Columns) for grayscale or (Rows, Columns, 3) RGB for colour;
        0 is black, 255 white.

    Raises:
        IndexError: ``frame`` is out of range.
        UnsupportedPixelData: the pixel data cannot be decoded.
        ValueError: only one of the window parameters, or a window width <= 0.
    """
    if (window_center is None) != (window_width is None):
        raise ValueError("window_center and window_width must be given together")
    if window_width is not None and not window_width > 0:
        raise ValueError(f"window_width must be > 0, got {window_width}")

    stored, properties = _decode(dataset, _checked_frame(dataset, frame))
    photometric = str(properties.get("photometric_interpretation", "MONOCHROME2"))
    if stored.ndim == 3 or photometric == "PALETTE COLOR":
        try:
            display = _colour_display(
                stored,
                dataset,
                photometric,
                int(properties.get("bits_stored") or 8),
                window_center,
                window_width,
            )
        except _DECODE_ERRORS as exc:
            raise UnsupportedPixelData(f"{photometric} image cannot be rendered: {exc}") from exc
    else:
        display = _grey_display(stored, dataset, photometric, window_center, window_width)
    if invert:
        display = 255.0 - display
    return np.clip(np.rint(display), 0, 255).astype(np.uint8)


def render_png(
    dataset: Dataset,
    frame: int = 0,
    *,
    window_center: float | None = None,
    window_width: float | None = None,
    invert: bool = False,
    max_size: int | None = None,
) -> bytes:
    """PNG bytes of :func:`to_display`'s image (8-bit L or RGB).

    Args:
        max_size: when given, the image is shrunk (never enlarged) so that its longer side is at
            most ``max_size`` pixels, keeping the aspect ratio: for thumbnails.
    """
    pixels = to_display(
        dataset,
        frame,
        window_center=window_center,
        window_width=window_width,
        invert=invert,
    )
    image = Image.fromarray(np.ascontiguousarray(pixels), mode="RGB" if pixels.ndim == 3 else "L")
    if max_size is not None:
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size}")
        image.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def cached_render(
    cache_dir: Path,
    key_parts: tuple[Any, ...],
    produce: Callable[[], bytes],
    *,
    suffix: str = ".png",
    max_bytes: int | None = None,
) -> bytes:
    """Return the cached bytes for ``key_parts``, calling ``produce`` and storing them on a miss.

    The key is the SHA-256 of ``key_parts`` as JSON (values that JSON cannot hold are written as
    ``str()``), so the caller includes everything the output depends on: the instance's SHA-256,
    the frame, the window, inversion, size. Files go to ``cache_dir/<2 hex>/<sha256><suffix>``;
    a write goes to a temporary file in the same folder and is moved into place with
    ``os.replace``, so a reader never sees a partial file and concurrent producers are harmless.

    With ``max_bytes`` the cache is bounded: a hit marks its file as used (its modification
    time), and after each write the least recently used files are deleted until the cache
    holds at most ``max_bytes``; an output larger than the bound is returned, not stored.
    Every distinct window a client asks for is a new file, so without a bound a client could
    fill the disk."""
    canonical = json.dumps(list(key_parts), default=str, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    path = Path(cache_dir) / digest[:2] / f"{digest}{suffix}"
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        pass
    else:
        if max_bytes is not None:
            _mark_used(path)
        return content
    content = produce()
    if max_bytes is not None and len(content) > max_bytes:
        return content
    write_atomically(path, content, suffix=suffix)
    if max_bytes is not None:
        evict_least_recently_used(Path(cache_dir), max_bytes, suffix=suffix)
    return content


def _mark_used(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):  # evicted by another process since read
        os.utime(path)


def cache_size(cache_dir: Path, *, suffix: str = ".png") -> int:
    """Bytes held by the cache files under ``cache_dir`` (temporary files not counted)."""
    total = 0
    for entry in Path(cache_dir).glob(f"??/*{suffix}"):
        try:
            total += entry.stat().st_size
        except FileNotFoundError:
            continue
    return total


def evict_least_recently_used(cache_dir: Path, max_bytes: int, *, suffix: str = ".png") -> int:
    """Delete the least recently used cache files (oldest modification time first) until the
    cache under ``cache_dir`` holds at most ``max_bytes``; return how many were deleted.

    Safe beside other processes: a file another one deleted first is skipped, and a reader that
    opened a file before its deletion still reads it whole (POSIX)."""
    entries: list[tuple[int, str, int]] = []
    total = 0
    for entry in Path(cache_dir).glob(f"??/*{suffix}"):
        if entry.name.startswith("."):
            continue
        try:
            status = entry.stat()
        except FileNotFoundError:
            continue
        entries.append((status.st_mtime_ns, str(entry), status.st_size))
        total += status.st_size
    if total <= max_bytes:
        return 0
    deleted = 0
    for _, name, size in sorted(entries):
        if total <= max_bytes:
            break
        with contextlib.suppress(FileNotFoundError):  # another process evicted it first
            os.unlink(name)
        total -= size
        deleted += 1
    return deleted
