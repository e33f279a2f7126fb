"""The single-frame instances of one series as a stack of slices: ordered by their position along
the slice normal (ImagePositionPatient projected on the normal of ImageOrientationPatient, never
InstanceNumber), with the spacing between slices and a plain-words report of what makes a series
irregular (missing slices, varying spacing, mixed orientations, a slice of another size).

Pure: plain values in, plain values out; no models, no files (annotations.series_stacks reads
the headers). Positions and spacings are in millimetres, in the DICOM patient coordinate system
(LPS). Slices go in increasing position along the normal (row x column direction cosines): for
axial slices in the usual orientation, from feet to head."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Direction cosines that differ by less than this are the same orientation (about 0.06 degree).
ORIENTATION_TOLERANCE = 1e-3
# Two slices closer than this (mm) along the normal are at the same position.
SAME_POSITION_MM = 1e-3
# A step between neighbouring slices may differ from the usual step by this much (mm, or this
# share of the step, whichever is larger) before the series counts as irregular. Scanners write
# positions rounded to a few decimals.
SPACING_TOLERANCE_MM = 0.05
SPACING_TOLERANCE_SHARE = 0.05


@dataclass(frozen=True)
class SliceHeader:
    """What a stored single-frame instance says about where its pixels are.

    ``position``: ImagePositionPatient (x, y, z of the centre of the first pixel, mm);
    ``orientation``: ImageOrientationPatient (row then column direction cosines, 6 numbers);
    ``pixel_spacing``: PixelSpacing (between rows, between columns; mm). None where absent."""

    instance_id: int
    rows: int
    columns: int
    instance_number: int | None = None
    frames: int = 1
    position: tuple[float, float, float] | None = None
    orientation: tuple[float, float, float, float, float, float] | None = None
    pixel_spacing: tuple[float, float] | None = None
    slice_thickness: float | None = None
    # The stored file could not be read (missing, damaged): no geometry is known.
    unreadable: bool = False


@dataclass(frozen=True)
class SeriesStack:
    """The slices of a series in viewing order.

    ``instance_ids``: in order; ``positions``: each slice's distance along ``normal`` (mm), in
    the same order, empty when not sorted by position; ``slice_spacing``: the usual step between
    neighbouring slices (mm; None for fewer than two positioned slices); ``sorted_by``:
    "position" or "instance_number" (the fallback when geometry is missing or mixed);
    ``problems``: one sentence each, empty for a regular series (a volume can be built)."""

    instance_ids: list[int]
    sorted_by: str
    positions: list[float] = field(default_factory=list)
    normal: tuple[float, float, float] | None = None
    slice_spacing: float | None = None
    pixel_spacing: tuple[float, float] | None = None
    slice_thickness: float | None = None
    rows: int | None = None
    columns: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def regular(self) -> bool:
        return not self.problems


def orientation_name(orientation: Sequence[float]) -> str:
    """ "axial", "coronal" or "sagittal" by the axis the normal is closest to ("oblique" when
    it is closer to none by more than 45 degrees in every plane)."""
    row, column = np.asarray(orientation[:3], float), np.asarray(orientation[3:6], float)
    normal = np.abs(np.cross(row, column))
    axis = int(np.argmax(normal))
    if normal[axis] < np.sqrt(0.5):
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def _describe_orientation(orientation: Sequence[float]) -> str:
    numbers = ", ".join(f"{value:g}" for value in orientation)
    return f"{orientation_name(orientation)} ({numbers})"


def _ids(headers: Sequence[SliceHeader], limit: int = 5) -> str:
    ids = [str(h.instance_id) for h in headers]
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _by_instance_number(headers: Sequence[SliceHeader]) -> list[SliceHeader]:
    return sorted(
        headers,
        key=lambda h: (h.instance_number is None, h.instance_number or 0, h.instance_id),
    )


def _size_problems(headers: Sequence[SliceHeader]) -> tuple[tuple[int, int], list[str]]:
    sizes = Counter((h.rows, h.columns) for h in headers)
    usual = sizes.most_common(1)[0][0]
    odd = [h for h in headers if (h.rows, h.columns) != usual]
    problems = []
    if odd:
        sizes_seen = sorted({f"{h.columns}x{h.rows}" for h in odd})
        problems.append(
            f"{len(odd)} slice(s) of another size ({', '.join(sizes_seen)} pixels, instance(s) "
            f"{_ids(odd)}) in a series of {usual[1]}x{usual[0]}-pixel slices: they do not "
            "stack into one volume."
        )
    return usual, problems


def _spacing_problems(
    ordered: Sequence[SliceHeader], positions: np.ndarray
) -> tuple[float | None, list[str]]:
    if len(positions) < 2:
        return None, []
    steps = np.diff(positions)
    problems = []
    same = np.flatnonzero(steps < SAME_POSITION_MM)
    if len(same):
        first = int(same[0])
        problems.append(
            f"{len(same)} pair(s) of slices at the same position, e.g. instances "
            f"{ordered[first].instance_id} and {ordered[first + 1].instance_id} at "
            f"{positions[first]:.2f} mm: duplicates or two acquisitions in one series."
        )
        steps = steps[steps >= SAME_POSITION_MM]
        if not len(steps):
            return None, problems
    spacing = float(np.median(steps))
    tolerance = max(SPACING_TOLERANCE_MM, SPACING_TOLERANCE_SHARE * spacing)
    all_steps = np.diff(positions)
    gaps, uneven = [], []
    for i, step in enumerate(all_steps):
        if step < SAME_POSITION_MM or abs(step - spacing) <= tolerance:
            continue
        missing = round(step / spacing) - 1
        if missing >= 1 and abs(step - (missing + 1) * spacing) <= tolerance * (missing + 1):
            gaps.append((i, float(step), missing))
        else:
            uneven.append((i, float(step)))
    for i, step, missing in gaps:
        problems.append(
            f"Missing slices: a gap of {step:.2f} mm between instances "
            f"{ordered[i].instance_id} and {ordered[i + 1].instance_id} (at {positions[i]:.2f} "
            f"and {positions[i + 1]:.2f} mm) where slices are {spacing:.2f} mm apart; about "
            f"{missing} slice(s) missing."
        )
    if uneven:
        found = sorted({f"{step:.2f}" for _, step in uneven})
        i = uneven[0][0]
        problems.append(
            f"Varying slice spacing: steps of {', '.join(found)} mm (first between instances "
            f"{ordered[i].instance_id} and {ordered[i + 1].instance_id}) where slices are "
            f"usually {spacing:.2f} mm apart."
        )
    return spacing, problems


def order_slices(headers: Sequence[SliceHeader]) -> SeriesStack:
    """The slices of one series in order along their normal, with the problems that keep them
    from forming a regular volume (see SeriesStack). Never raises on odd geometry: a series
    without usable geometry comes back in InstanceNumber order with a problem saying why."""
    if not headers:
        return SeriesStack(instance_ids=[], sorted_by="position")
    problems: list[str] = []
    multi = [h for h in headers if h.frames > 1]
    if multi:
        problems.append(
            f"{len(multi)} instance(s) hold several frames (instance(s) {_ids(multi)}): a stack "
            "is made of single-frame slices."
        )
    usual_size, size_problems = _size_problems(headers)
    problems += size_problems
    spacings = Counter(h.pixel_spacing for h in headers if h.pixel_spacing is not None)
    pixel_spacing = spacings.most_common(1)[0][0] if spacings else None
    if len(spacings) > 1:
        found = ", ".join(f"{r:g}x{c:g}" for r, c in sorted(spacings))
        problems.append(f"Pixel spacing differs between slices: {found} mm.")
    thicknesses = Counter(h.slice_thickness for h in headers if h.slice_thickness is not None)
    thickness = thicknesses.most_common(1)[0][0] if thicknesses else None

    def stack(ordered: Sequence[SliceHeader], sorted_by: str, **geometry: Any) -> SeriesStack:
        return SeriesStack(
            instance_ids=[h.instance_id for h in ordered],
            sorted_by=sorted_by,
            pixel_spacing=pixel_spacing,
            slice_thickness=thickness,
            rows=usual_size[0],
            columns=usual_size[1],
            problems=problems,
            **geometry,
        )

    unreadable = [h for h in headers if h.unreadable]
    unplaced = [
        h for h in headers if not h.unreadable and (h.position is None or h.orientation is None)
    ]
    if unreadable:
        problems.append(
            f"The stored file of {len(unreadable)} slice(s) could not be read (instance(s) "
            f"{_ids(unreadable)}): shown in InstanceNumber order; ask an administrator."
        )
    if unplaced:
        problems.append(
            f"{len(unplaced)} slice(s) lack ImagePositionPatient or ImageOrientationPatient "
            f"(instance(s) {_ids(unplaced)}): shown in InstanceNumber order, which may be wrong."
        )
    if unreadable or unplaced:
        return stack(_by_instance_number(headers), "instance_number")

    orientations = np.array([h.orientation for h in headers], float)
    # The orientation most slices share is the series'; the others are the odd ones.
    usual = Counter(tuple(float(v) for v in np.round(o, 3)) for o in orientations).most_common(1)[
        0
    ][0]
    reference = np.array(usual, float)
    mixed = np.abs(orientations - reference).max(axis=1) > ORIENTATION_TOLERANCE
    if mixed.any():
        others = [h for h, m in zip(headers, mixed, strict=True) if m]
        kinds = sorted({_describe_orientation(h.orientation or ()) for h in others})
        problems.append(
            f"Mixed orientations: {len(others)} slice(s) (instance(s) {_ids(others)}) are "
            f"{'; '.join(kinds)} while the other {len(headers) - len(others)} are "
            f"{_describe_orientation(usual)}: not one stack of parallel slices, shown in "
            "InstanceNumber order."
        )
        return stack(_by_instance_number(headers), "instance_number")

    normal = np.cross(reference[:3], reference[3:])
    normal /= np.linalg.norm(normal) or 1.0
    distances = np.array([h.position for h in headers], float) @ normal
    numbers = [h.instance_number if h.instance_number is not None else 0 for h in headers]
    order = sorted(range(len(headers)), key=lambda i: (distances[i], numbers[i]))
    ordered = [headers[i] for i in order]
    positions = distances[order]
    spacing, spacing_problems = _spacing_problems(ordered, positions)
    problems += spacing_problems
    return stack(
        ordered,
        "position",
        positions=[round(float(p), 4) for p in positions],
        normal=(float(normal[0]), float(normal[1]), float(normal[2])),
        slice_spacing=None if spacing is None else round(spacing, 4),
    )
