"""3D lesion boxes (issue 21, part 3): a box drawn on one slice of a regular CT or MR series and
extended over a range of its slices, stored with its series in voxel coordinates (the pixels
drawn and the 1-based slice range, in position order) and in patient coordinates (mm), which
are computed here from the series' geometry. Anything that keeps a range from being one box in
one volume is refused with a message naming it."""

from __future__ import annotations

from dataclasses import dataclass

from annotations.dicom.box_geometry import VolumeGeometry, patient_box
from annotations.dicom.series_geometry import SeriesStack
from annotations.models import Box, Instance
from annotations.series_stacks import stack_and_headers
from annotations.services.errors import InvalidInput


@dataclass(frozen=True)
class SeriesVolume:
    """A series as read for 3D boxes: its stack, and its geometry when it is a regular volume."""

    stack: SeriesStack
    geometry: VolumeGeometry | None

    def slice_of(self, instance_id: int) -> int:
        """The 1-based place of a slice in position order."""
        return self.stack.instance_ids.index(instance_id) + 1


def series_volume(series_id: int) -> SeriesVolume:
    """The series' stack, with its volume geometry when the stack is regular and has two or
    more slices with position, orientation and spacing."""
    stack, headers = stack_and_headers(series_id)
    ordered = [headers[i] for i in stack.instance_ids]
    usable = (
        stack.regular
        and len(ordered) >= 2
        and stack.slice_spacing
        and all(h.position and h.orientation and h.pixel_spacing for h in ordered)
    )
    if not usable:
        return SeriesVolume(stack, None)
    first = ordered[0]
    geometry = VolumeGeometry(
        positions=[h.position for h in ordered],  # type: ignore[misc]
        orientation=first.orientation,  # type: ignore[arg-type]
        pixel_spacing=first.pixel_spacing,  # type: ignore[arg-type]
        slice_spacing=float(stack.slice_spacing),  # type: ignore[arg-type]
    )
    return SeriesVolume(stack, geometry)


def place_volume_box(
    box: Box,
    *,
    instance: Instance,
    slices: tuple[int, int] | list[int],
    where: str,
    volumes: dict[int, SeriesVolume],
) -> None:
    """Make ``box`` (drawn on ``instance``, not yet saved) a 3D box over ``slices`` = (first,
    last), 1-based and inclusive in the series' position order: sets its series, slice range
    and patient coordinates. ``volumes`` caches each series read during one request. Raises
    InvalidInput (``where`` names the box) for a range that is not two whole numbers in order,
    a series that is not a regular volume, a range outside the series, a box not on a slice of
    its range, or a frame other than 1."""
    if len(slices) != 2 or not all(isinstance(n, int) for n in slices):
        raise InvalidInput(f"{where}: slices must be [first, last], two slice numbers.")
    first, last = int(slices[0]), int(slices[1])
    if first > last:
        raise InvalidInput(f"{where}: slices [{first}, {last}]: the first comes after the last.")
    if box.frame != 1:
        raise InvalidInput(
            f"{where}: a 3D box is drawn on a slice (frame 1), not frame {box.frame}."
        )
    volume = volumes.get(instance.series_id)
    if volume is None:
        volume = volumes[instance.series_id] = series_volume(instance.series_id)
    count = len(volume.stack.instance_ids)
    if volume.geometry is None:
        why = " ".join(volume.stack.problems) or (
            f"it has {count} slice(s) with position, orientation and spacing"
        )
        raise InvalidInput(
            f"{where}: series {instance.series_id} is not a regular volume, so a 3D box cannot"
            f" be placed on it: {why}"
        )
    if first < 1 or last > count:
        raise InvalidInput(
            f"{where}: slices {first}..{last} lie outside series {instance.series_id}'s slices"
            f" 1..{count}."
        )
    drawn = volume.slice_of(instance.pk)
    if not first <= drawn <= last:
        raise InvalidInput(
            f"{where}: the box is drawn on slice {drawn}, outside its range {first}..{last}."
        )
    box.series_id = instance.series_id
    box.slice_first, box.slice_last = first, last
    box.patient_mm = patient_box(
        volume.geometry,
        x=box.x,
        y=box.y,
        width=box.width,
        height=box.height,
        slice_first=first,
        slice_last=last,
    ).as_json()


def snapshot_fields(box: Box) -> dict[str, object]:
    """A 3D box's series, slice range and patient coordinates for a submitted revision's JSON;
    nothing for a 2D box (its revisions read as before)."""
    slices = slice_range(box)
    if slices is None:
        return {}
    return {
        "series_id": box.series_id,
        "slices": list(slices),
        "patient_mm": box.patient_mm,
    }


def slice_range(box: Box) -> tuple[int, int] | None:
    """A stored box's [first, last] slices, or None for a 2D box."""
    if box.slice_first is None or box.slice_last is None:
        return None
    return (box.slice_first, box.slice_last)


def suggestion_box(
    *,
    box_id: str,
    series_id: int,
    x: float,
    y: float,
    width: float,
    height: float,
    slices: tuple[int, int] | list[int],
    finding: str,
    score: float,
    volumes: dict[int, SeriesVolume] | None = None,
) -> dict[str, object]:
    """A 3D model suggestion as it is stored in a suggestion's ``boxes`` (the shape the
    workspace, the shown-suggestion record and review read): the same fields as a 2D suggestion
    box (``id``, ``instance_id``, ``frame`` 1, pixels ``x, y, width, height``, ``finding``,
    ``score``) plus a 3D box's ``series_id``, ``slices`` [first, last] (1-based, inclusive, in
    position order) and ``patient_mm`` (as :class:`~annotations.models.Box` stores them).
    ``instance_id`` is the slice at the middle of the range, where the workspace shows it
    first. In: the box in voxels of series ``series_id``; raises InvalidInput as
    :func:`place_volume_box` does (a series that is no regular volume, a range outside it)."""
    volumes = {} if volumes is None else volumes
    volume = volumes.get(series_id)
    if volume is None:
        volume = volumes[series_id] = series_volume(series_id)
    where = f"suggestion box {box_id}"
    count = len(volume.stack.instance_ids)
    if count == 0:
        raise InvalidInput(f"{where}: series {series_id} has no visible slices.")
    middle = min(count, max(1, (int(slices[0]) + int(slices[-1])) // 2))
    instance = Instance.objects.get(pk=volume.stack.instance_ids[middle - 1])
    row = Box(instance=instance, frame=1, x=x, y=y, width=width, height=height, finding=finding)
    place_volume_box(row, instance=instance, slices=slices, where=where, volumes=volumes)
    return {
        "id": box_id,
        "instance_id": instance.pk,
        "frame": 1,
        "x": x,
        "y": y,
        "width": width,
        "height": height,
        "finding": finding,
        "score": score,
        "series_id": series_id,
        "slices": [row.slice_first, row.slice_last],
        "patient_mm": row.patient_mm,
    }
