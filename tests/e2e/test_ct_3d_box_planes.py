"""A 3D box in the three planes (issue 21, part 3): drawn on a slice of a CT series ingested
through the real DICOM path and extended over slices 5..9, it appears in the axial, coronal and
sagittal views as the rectangle each view's plane cuts from it (its depth in mm across the
slices in the coronal view), and in no view whose plane misses it; a crosshair move brings it
into or out of the other views; extending it in the stack view and deleting it update the
planes."""

from __future__ import annotations

from pathlib import Path

import pytest

from active_learning.ml import synthetic_ct
from tests.e2e.test_ct_3d_box import _go_to_slice, _stored_box, draw_box_at_the_centre
from tests.e2e.test_ct_series_stack import SIZE, _ingest_ct, _open, pytestmark  # noqa: F401

CUTS = ".ml-plane[data-plane={plane}] .ml-plane-boxes g[data-box-id]"


def _cuts(page, plane: str) -> int:
    return page.locator(CUTS.format(plane=plane)).count()


def _wait_cuts(page, plane: str, count: int) -> None:
    page.wait_for_function(
        f"document.querySelectorAll({CUTS.format(plane=plane)!r}).length === {count}",
        timeout=15_000,
    )


def _cut(page, plane: str) -> dict[str, float]:
    """The cut's rectangle on screen (CSS pixels)."""
    return page.locator(CUTS.format(plane=plane) + " rect").first.bounding_box()


def _aspect(page, plane: str) -> float:
    """Height over width of the cut as drawn (its own geometry, without the stroke)."""
    rect = page.locator(CUTS.format(plane=plane) + " rect").first
    return float(rect.get_attribute("height")) / float(rect.get_attribute("width"))


def _click_in(page, plane: str, fx: float, fy: float, within: dict | None = None) -> None:
    """Click at a fraction of the view, or of the rectangle ``within``."""
    area = (
        within or page.locator(f".ml-plane[data-plane={plane}] .ml-plane-viewport").bounding_box()
    )
    page.mouse.click(area["x"] + fx * area["width"], area["y"] + fy * area["height"])


def _open_planes(page) -> None:
    page.click("#planes-button")
    page.wait_for_selector(".ml-planes[data-ready=true]", timeout=60_000)


def test_a_3d_box_is_cut_by_each_plane_and_follows_the_crosshairs_and_its_extent(
    page, live_server, project, member, frontend_built, tmp_path, artifacts_dir: Path
):
    _ingest_ct(project, tmp_path)
    member("ann", "annotator")
    errors = _open(page, live_server, project)
    page.focus("#viewer .ml-viewport")
    _go_to_slice(page, 5)
    draw_box_at_the_centre(page)
    _stored_box(lambda b: b.width > 0)
    page.focus("#viewer .ml-viewport")
    _go_to_slice(page, 9)
    page.keyboard.press("]")
    box = _stored_box(lambda b: b.slice_last == 9)
    assert (box.slice_first, box.slice_last) == (5, 9)

    _open_planes(page)
    # The views open at the volume's middle: slice 12 or 13 of 24 is above the box, so the
    # axial plane misses it; the coronal and sagittal planes through the middle row and
    # column cross it (it was drawn around the image's centre).
    assert page.get_attribute(".ml-planes", "data-boxes") == "1"
    _wait_cuts(page, "coronal", 1)
    _wait_cuts(page, "sagittal", 1)
    assert _cuts(page, "axial") == 0
    # In the coronal view the cut is the box's width across and its depth (5 slices of
    # 2.5 mm) up and down, on the view's own mm scale.
    ct = synthetic_ct.generate_series(4, 24, SIZE)
    width_mm, depth_mm = box.width * ct.pixel_spacing_mm, 5 * ct.slice_spacing_mm
    coronal = _cut(page, "coronal")
    assert _aspect(page, "coronal") == pytest.approx(depth_mm / width_mm, rel=0.05)

    # A click on the box in the coronal view moves the crosshairs there: the axial view goes
    # to a slice of the box and shows its cut, the box's outline as drawn.
    _click_in(page, "coronal", 0.2, 0.8, within=coronal)  # away from the crosshair lines
    _wait_cuts(page, "axial", 1)
    axial = _cut(page, "axial")
    assert _aspect(page, "axial") == pytest.approx(box.height / box.width, rel=0.05)
    assert _cuts(page, "coronal") == 1 and _cuts(page, "sagittal") == 1
    page.screenshot(path=str(artifacts_dir / "ct-3d-box-planes.png"))

    # A click in the axial view level with the box but far to its side moves the sagittal
    # plane out of the box: its cut disappears there, the other two stay.
    view = page.locator(".ml-plane[data-plane=axial] .ml-plane-viewport").bounding_box()
    page.mouse.click(view["x"] + 0.9 * view["width"], axial["y"] + 0.1 * axial["height"])
    _wait_cuts(page, "sagittal", 0)
    assert _cuts(page, "axial") == 1 and _cuts(page, "coronal") == 1

    # Back in the stack view, the box is extended up to slice 14: the planes show the new
    # extent (the axial plane at the middle now meets it, the coronal cut is twice as deep).
    page.click("#planes-button")
    page.wait_for_function("document.querySelector('#viewer').dataset.layout === 'stack'")
    page.focus("#viewer .ml-viewport")
    _go_to_slice(page, 14)
    page.keyboard.press("]")
    _stored_box(lambda b: b.slice_last == 14)
    _open_planes(page)
    _wait_cuts(page, "axial", 1)
    _wait_cuts(page, "coronal", 1)
    assert _aspect(page, "coronal") == pytest.approx(2 * depth_mm / width_mm, rel=0.05)

    # Deleting the box (still selected) while the planes are shown takes it out of all three.
    page.keyboard.press("Delete")
    for plane in ("axial", "coronal", "sagittal"):
        _wait_cuts(page, plane, 0)
    assert page.get_attribute(".ml-planes", "data-boxes") == "0"
    assert errors == []
