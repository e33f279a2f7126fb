"""Reads: a series as a stack of slices (annotations.dicom.series_geometry) from the geometry in
its stored, de-identified files. The geometry tags are not columns of Instance, so each file's
header is read once (pydicom, stop_before_pixels) and cached under the file's SHA-256: a stored
file never changes, so the cache never goes stale."""

from __future__ import annotations

from typing import Any

import pydicom
from django.core.cache import cache

from annotations.dicom.series_geometry import SeriesStack, SliceHeader, order_slices
from annotations.models import Instance, Series
from annotations.services.ingest import storage_path

CACHE_PREFIX = "medloop:slice-header:v1:"
CACHE_SECONDS = 30 * 24 * 3600
GEOMETRY_TAGS = [
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
]


def _numbers(value: Any, count: int) -> list[float] | None:
    if value is None:
        return None
    try:
        numbers = [float(v) for v in (value if isinstance(value, list | tuple) else list(value))]
    except (TypeError, ValueError):
        return None
    if len(numbers) != count or any(n != n or abs(n) == float("inf") for n in numbers):
        return None
    return numbers


def _read_geometry(instance: Instance) -> dict[str, Any]:
    """The geometry tags of the stored file as plain numbers (None where absent or malformed)."""
    try:
        dataset = pydicom.dcmread(
            storage_path(instance.file_path), stop_before_pixels=True, specific_tags=GEOMETRY_TAGS
        )
    except Exception:  # a missing or damaged file: the stack says the slice has no geometry
        return {"unreadable": True}

    def value(keyword: str) -> Any:
        try:
            return dataset.get(keyword)
        except Exception:  # a value pydicom cannot convert counts as absent
            return None

    thickness = _numbers([value("SliceThickness")], 1) if "SliceThickness" in dataset else None
    return {
        "position": _numbers(value("ImagePositionPatient"), 3),
        "orientation": _numbers(value("ImageOrientationPatient"), 6),
        "pixel_spacing": _numbers(value("PixelSpacing"), 2),
        "slice_thickness": thickness[0] if thickness else None,
    }


def slice_headers(instances: list[Instance]) -> list[SliceHeader]:
    """The geometry of each instance, from the cache or its stored file (cached then)."""
    keys = {instance.pk: CACHE_PREFIX + instance.sha256 for instance in instances}
    cached = cache.get_many(list(keys.values()))
    fresh: dict[str, dict[str, Any]] = {}
    headers = []
    for instance in instances:
        key = keys[instance.pk]
        geometry = cached.get(key)
        if geometry is None:
            geometry = fresh[key] = _read_geometry(instance)
        position, orientation = geometry.get("position"), geometry.get("orientation")
        spacing = geometry.get("pixel_spacing")
        headers.append(
            SliceHeader(
                instance_id=instance.pk,
                rows=instance.rows,
                columns=instance.columns,
                instance_number=instance.instance_number,
                frames=instance.number_of_frames,
                position=tuple(position) if position else None,  # type: ignore[arg-type]
                orientation=tuple(orientation) if orientation else None,  # type: ignore[arg-type]
                pixel_spacing=tuple(spacing) if spacing else None,  # type: ignore[arg-type]
                slice_thickness=geometry.get("slice_thickness"),
                unreadable=bool(geometry.get("unreadable")),
            )
        )
    # An unreadable file is not cached: the next read tries again.
    cache.set_many(
        {k: v for k, v in fresh.items() if not v.get("unreadable")}, timeout=CACHE_SECONDS
    )
    return headers


def stack_and_headers(series_id: int) -> tuple[SeriesStack, dict[int, SliceHeader]]:
    """The series' visible (not quarantined) instances as an ordered stack of slices, and each
    slice's geometry by instance id."""
    instances = list(
        Instance.objects.filter(series_id=series_id, quarantined=False).order_by(
            "instance_number", "id"
        )
    )
    headers = slice_headers(instances)
    return order_slices(headers), {header.instance_id: header for header in headers}


def stack_of(series: Series) -> SeriesStack:
    """The series' visible (not quarantined) instances as an ordered stack of slices."""
    return stack_and_headers(series.pk)[0]
