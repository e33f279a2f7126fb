"""Ordering the slices of a series by position along the slice normal, and naming what makes a
series irregular (annotations.dicom.series_geometry)."""

from __future__ import annotations

import numpy as np
import pytest

from annotations.dicom.series_geometry import SliceHeader, order_slices, orientation_name

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)


def axial_series(
    count: int, spacing: float = 2.5, *, start: float = -40.0, size: int = 64
) -> list[SliceHeader]:
    return [
        SliceHeader(
            instance_id=100 + k,
            rows=size,
            columns=size,
            instance_number=k + 1,
            position=(-100.0, -120.0, start + k * spacing),
            orientation=AXIAL,
            pixel_spacing=(0.7, 0.7),
            slice_thickness=spacing,
        )
        for k in range(count)
    ]


def _with(header: SliceHeader, **changes: object) -> SliceHeader:
    return SliceHeader(**{**header.__dict__, **changes})


def test_slices_are_ordered_by_position_when_instance_numbers_lie():
    rng = np.random.default_rng(3)
    headers = axial_series(20)
    truth = [h.instance_id for h in headers]
    lying_numbers = rng.permutation(20) + 1
    shuffled = [
        _with(headers[i], instance_number=int(lying_numbers[i])) for i in rng.permutation(20)
    ]
    stack = order_slices(shuffled)
    assert stack.instance_ids == truth
    assert stack.sorted_by == "position"
    assert stack.slice_spacing == pytest.approx(2.5)
    assert stack.positions == pytest.approx([-40.0 + 2.5 * k for k in range(20)])
    assert stack.regular and stack.problems == []
    # The InstanceNumber order is a different order: the test above could fail.
    by_number = [h.instance_id for h in sorted(shuffled, key=lambda h: h.instance_number)]
    assert by_number != truth


def test_order_follows_the_normal_of_an_oblique_orientation_not_z():
    # Rows along x, columns tilted 30 degrees out of the y axis towards z: the normal has a y
    # component, so position along the normal, not along z, sets the order.
    a = np.deg2rad(30)
    orientation = (1.0, 0.0, 0.0, 0.0, float(np.cos(a)), float(np.sin(a)))
    normal = np.cross(orientation[:3], orientation[3:])
    headers = [
        SliceHeader(
            instance_id=k,
            rows=32,
            columns=32,
            instance_number=10 - k,
            position=tuple(float(v) for v in (np.array([0.0, 5.0, 0.0]) + 3.0 * k * normal)),
            orientation=orientation,
        )
        for k in range(6)
    ]
    stack = order_slices(list(reversed(headers)))
    assert stack.instance_ids == [0, 1, 2, 3, 4, 5]
    assert stack.slice_spacing == pytest.approx(3.0)
    assert stack.regular


def test_a_gap_in_the_series_is_reported_with_the_slices_around_it():
    headers = axial_series(12)
    without = headers[:5] + headers[7:]  # slices 6 and 7 (ids 105, 106) are missing
    stack = order_slices(without)
    assert not stack.regular
    assert stack.slice_spacing == pytest.approx(2.5)
    [problem] = stack.problems
    assert "Missing slices" in problem
    assert "104 and 107" in problem
    assert "7.50 mm" in problem
    assert "about 2 slice(s) missing" in problem


def test_varying_spacing_is_reported():
    headers = axial_series(10)
    moved = headers[:6] + [
        _with(h, position=(-100.0, -120.0, h.position[2] + 1.1)) for h in headers[6:]
    ]
    stack = order_slices(moved)
    assert not stack.regular
    assert any("Varying slice spacing" in p and "3.60" in p for p in stack.problems)


def test_mixed_orientations_give_a_clear_message_not_a_volume():
    headers = axial_series(8)
    headers[3] = _with(headers[3], orientation=CORONAL)
    stack = order_slices(headers)
    assert not stack.regular
    assert stack.sorted_by == "instance_number"
    [problem] = stack.problems
    assert "Mixed orientations" in problem
    assert "instance(s) 103" in problem
    assert "are coronal (1, 0, 0, 0, 0, -1) while the other 7 are axial" in problem


def test_the_odd_orientation_is_the_rare_one_even_when_it_comes_first():
    headers = axial_series(6)
    headers[0] = _with(headers[0], orientation=CORONAL)
    [problem] = order_slices(headers).problems
    assert "instance(s) 100) are coronal" in problem and "other 5 are axial" in problem


def test_a_slice_of_another_size_is_named():
    headers = axial_series(8)
    headers[5] = _with(headers[5], rows=32, columns=48)
    stack = order_slices(headers)
    assert not stack.regular
    assert (stack.rows, stack.columns) == (64, 64)
    [problem] = stack.problems
    assert "another size" in problem and "48x32" in problem and "105" in problem


def test_duplicate_positions_are_reported():
    headers = axial_series(6)
    headers.append(_with(headers[2], instance_id=999, instance_number=99))
    stack = order_slices(headers)
    assert any("same position" in p and "999" in p for p in stack.problems)


def test_missing_geometry_falls_back_to_instance_number_and_says_so():
    headers = [_with(h, position=None) if h.instance_id == 102 else h for h in axial_series(5)]
    stack = order_slices(list(reversed(headers)))
    assert stack.sorted_by == "instance_number"
    assert stack.instance_ids == [100, 101, 102, 103, 104]
    assert any("lack ImagePositionPatient" in p and "102" in p for p in stack.problems)


def test_a_single_slice_is_a_regular_stack_without_spacing():
    stack = order_slices(axial_series(1))
    assert stack.instance_ids == [100] and stack.slice_spacing is None and stack.regular
    assert order_slices([]).instance_ids == []


@pytest.mark.parametrize(
    ("orientation", "name"),
    [(AXIAL, "axial"), (CORONAL, "coronal"), ((0, 1, 0, 0, 0, -1), "sagittal")],
)
def test_orientation_names(orientation, name):
    assert orientation_name(orientation) == name
