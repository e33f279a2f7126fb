"""A 3D lesion box drawn in the browser (issue 21, part 3): drawn on one slice of a CT series
ingested through the real DICOM path, extended with "]" to a later slice, it is stored with
its series, the right slice range and patient coordinates (mm), and shown on every slice it
covers and on no other."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from active_learning.ml import synthetic_ct
from annotations.models import Box
from annotations.series_stacks import stack_of
from tests.e2e.test_ct_series_stack import _ingest_ct, _open, _wait_slice, pytestmark  # noqa: F401


def _stored_box(predicate, timeout_s: float = 20.0) -> Box:
    """The stored box once the autosave has stored one that meets ``predicate``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        box = Box.objects.filter(annotation__annotator__username="ann").first()
        if box is not None and predicate(box):
            return box
        time.sleep(0.1)
    raise AssertionError(f"no stored box met the condition; last: {box and box.__dict__}")


def _boxes_drawn(page) -> int:
    """Boxes Cornerstone draws on the slice on display (its SVG layer, one group per box)."""
    return page.locator("#viewer svg [data-annotation-uid]").count()


def _go_to_slice(page, number: int) -> None:
    now = int(page.get_attribute("#viewer", "data-slice"))
    key = "PageDown" if number > now else "PageUp"
    for _ in range(abs(number - now)):
        page.keyboard.press(key)
    _wait_slice(page, number)


def draw_box_at_the_centre(page) -> None:
    """Drag a box with the rectangle tool around the middle of the slice on display."""
    page.click("[data-tool=rectangle]")
    area = page.locator("#viewer .ml-viewport").bounding_box()
    cx, cy = area["x"] + area["width"] / 2, area["y"] + area["height"] / 2
    page.mouse.move(cx - 60, cy - 40)
    page.mouse.down()
    page.mouse.move(cx + 20, cy + 30, steps=8)
    page.mouse.up()


def test_a_3d_box_drawn_in_the_browser_is_stored_with_its_slice_range_and_patient_mm(
    page, live_server, project, member, frontend_built, tmp_path, artifacts_dir: Path
):
    series, _ = _ingest_ct(project, tmp_path)
    member("ann", "annotator")
    errors = _open(page, live_server, project)
    order = stack_of(series).instance_ids
    page.focus("#viewer .ml-viewport")
    _go_to_slice(page, 5)

    draw_box_at_the_centre(page)  # on slice 5
    drawn = _stored_box(lambda b: b.width > 0)
    assert drawn.instance_id == order[4] and drawn.slice_first is None

    # Scroll to slice 9 and extend the selected box there.
    page.focus("#viewer .ml-viewport")
    _go_to_slice(page, 9)
    assert _boxes_drawn(page) == 0  # a 2D box is on its own slice only
    page.keyboard.press("]")
    box = _stored_box(lambda b: b.slice_last == 9)

    assert (box.series_id, box.slice_first, box.slice_last) == (series.pk, 5, 9)
    assert box.instance_id == order[4]
    # Patient coordinates by hand from the synthetic series' geometry: the first pixel's
    # centre at the origin, pixels 350/SIZE mm apart, slices 2.5 mm apart from the origin's z.
    ct = synthetic_ct.generate_series(4, len(order), 128)
    px, dz = ct.pixel_spacing_mm, ct.slice_spacing_mm
    ox, oy, oz = ct.origin_mm
    expected_min = [ox + (box.x - 0.5) * px, oy + (box.y - 0.5) * px, oz + 4 * dz - dz / 2]
    expected_max = [
        ox + (box.x + box.width - 0.5) * px,
        oy + (box.y + box.height - 0.5) * px,
        oz + 8 * dz + dz / 2,
    ]
    assert box.patient_mm["min"] == pytest.approx(expected_min, abs=2e-3)
    assert box.patient_mm["max"] == pytest.approx(expected_max, abs=2e-3)

    # Shown on every slice it covers, with its range in its label, and on no other.
    page.wait_for_function("document.querySelector('#viewer svg [data-annotation-uid]') !== null")
    assert "slices 5\N{EN DASH}9" in page.locator("#viewer svg").first.text_content()
    for number, shown in ((7, 1), (5, 1), (4, 0), (9, 1), (10, 0)):
        _go_to_slice(page, number)
        page.wait_for_function(
            f"document.querySelectorAll('#viewer svg [data-annotation-uid]').length === {shown}"
        )
    _go_to_slice(page, 7)
    page.wait_for_function("document.querySelector('#viewer svg [data-annotation-uid]') !== null")
    page.screenshot(path=str(artifacts_dir / "ct-3d-box.png"))
    assert errors == []
