"""A CT series as three planes (issue 21, part 2): axial, coronal and sagittal Cornerstone3D
volume viewports of a synthetic CT ingested through the real DICOM path, linked by crosshairs
(a click in one view moves the others' slices), CT presets on all three, and an irregular
series that stays a stack and says why."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from tests.e2e.test_ct_series_stack import SIZE, SLICES, _ingest_ct, _open, pytestmark  # noqa: F401

PLANES = ("axial", "coronal", "sagittal")


def _plane(page, plane: str) -> dict[str, str]:
    return page.eval_on_selector(f".ml-plane[data-plane={plane}]", "el => ({...el.dataset})")


def _slice(page, plane: str) -> int:
    return int(_plane(page, plane)["slice"])


def _drawn_fraction(page, plane: str) -> float:
    """Share of the view's pixels that are grey and brighter than near-black: the volume
    drawn there (the crosshair lines are coloured)."""
    png = page.locator(f".ml-plane[data-plane={plane}] .ml-plane-viewport").screenshot()
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    grey = (rgb.max(axis=2) - rgb.min(axis=2)) < 12
    return float((grey & (rgb.mean(axis=2) > 40)).mean())


def _click_at(page, plane: str, fx: float, fy: float) -> None:
    box = page.locator(f".ml-plane[data-plane={plane}] .ml-plane-viewport").bounding_box()
    page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])


def _wait_changed(page, plane: str, before: int) -> int:
    page.wait_for_function(
        f"document.querySelector('.ml-plane[data-plane={plane}]').dataset.slice !== '{before}'",
        timeout=15_000,
    )
    return _slice(page, plane)


def test_three_planes_of_a_ct_volume_are_linked_by_crosshairs(
    page, live_server, project, member, frontend_built, tmp_path, artifacts_dir: Path
):
    _ingest_ct(project, tmp_path)
    member("ann", "annotator")
    errors = _open(page, live_server, project)

    page.click("#planes-button")
    page.wait_for_selector(".ml-planes[data-ready=true]", timeout=60_000)
    assert page.get_attribute("#viewer", "data-layout") == "planes"
    assert page.get_attribute("#planes-button", "aria-pressed") == "true"
    # Each view counts the slices along its own normal: the volume is SIZE x SIZE x SLICES.
    counts = {plane: int(_plane(page, plane)["slices"]) for plane in PLANES}
    assert counts == {"axial": SLICES, "coronal": SIZE, "sagittal": SIZE}
    for plane in PLANES:
        # The volume is drawn in all three (the synthetic chest fills much of each view).
        page.wait_for_function(
            f"document.querySelector('.ml-plane[data-plane={plane}] canvas') !== null"
        )
        # A SIZE x SIZE axial slice fills much of its view; the coronal and sagittal views
        # are strips 60 mm high across 350 mm.
        assert _drawn_fraction(page, plane) > 0.02, f"the {plane} view is blank"
        assert page.text_content(f".ml-plane[data-plane={plane}] .ml-plane-label").startswith(
            plane.capitalize()
        )

    # A click in the axial view moves the crosshair there: the coronal and sagittal views
    # change slice, the axial one does not.
    axial = _slice(page, "axial")
    coronal = _slice(page, "coronal")
    sagittal = _slice(page, "sagittal")
    _click_at(page, "axial", 0.3, 0.45)
    left = _wait_changed(page, "sagittal", sagittal)
    assert _wait_changed(page, "coronal", coronal) != coronal
    assert _slice(page, "axial") == axial
    # Further right in the axial view is another sagittal slice, on the other side.
    _click_at(page, "axial", 0.7, 0.55)  # off the lines: a click near one grabs it
    right = _wait_changed(page, "sagittal", left)
    assert (right - sagittal) * (left - sagittal) < 0

    # A click higher or lower in the coronal view moves the axial view along the body.
    _click_at(page, "coronal", 0.5, 0.48)
    moved = _wait_changed(page, "axial", axial)
    assert 1 <= moved <= SLICES

    # The CT presets window all three views in Hounsfield units.
    page.click("[data-preset=Lung]")
    for plane in PLANES:
        page.wait_for_function(
            f"document.querySelector('.ml-plane[data-plane={plane}]').dataset.window"
            " === 'W 1500 L -600'"
        )
    page.screenshot(path=str(artifacts_dir / "ct-three-planes.png"))

    # Back to the stack.
    page.click("#planes-button")
    page.wait_for_function("document.querySelector('#viewer').dataset.layout === 'stack'")
    assert page.locator(".ml-planes").is_hidden()
    assert page.get_attribute("#planes-button", "aria-pressed") == "false"
    assert errors == []


def test_an_irregular_series_stays_a_stack_and_says_why(
    page, live_server, project, member, frontend_built, tmp_path, artifacts_dir: Path
):
    _ingest_ct(project, tmp_path, drop=(10, 11))
    member("ann", "annotator")
    errors = _open(page, live_server, project)

    page.click("#planes-button")
    page.wait_for_function(
        "document.querySelector('.ml-status').textContent.includes('not a regular volume')"
    )
    status = page.text_content(".ml-status")
    assert status.startswith("This series is not a regular volume, so it stays a stack:")
    assert "Missing slices" in status
    assert page.get_attribute("#viewer", "data-layout") != "planes"
    assert page.locator(".ml-planes").is_hidden()
    assert page.get_attribute("#planes-button", "aria-pressed") == "false"
    assert page.text_content(".ml-slice-indicator").startswith(f"Slice 1 / {SLICES - 2}")
    page.screenshot(path=str(artifacts_dir / "ct-planes-irregular.png"))
    assert errors == []
