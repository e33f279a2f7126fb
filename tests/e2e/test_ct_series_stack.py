"""A CT series in the workspace (issue 21, part 1): one thumbnail for the series, one
Cornerstone3D stack in position order whatever InstanceNumber says, the wheel and the arrow
keys scroll the slices with a slice indicator, CT window presets in Hounsfield units, and an
irregular series says what is wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from active_learning.ml import synthetic_ct
from annotations.models import Instance, Series
from annotations.services import ingest
from tests.support.browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SLICES = 24
SIZE = 128


def _ingest_ct(project, tmp_path: Path, *, drop: tuple[int, ...] = ()) -> tuple[Series, list[int]]:
    """A synthetic chest CT whose InstanceNumbers lie (a random permutation), ingested in a
    shuffled order; returns the series and, per slice from the feet up, its InstanceNumber."""
    rng = np.random.default_rng(21)
    datasets = synthetic_ct.slice_datasets(synthetic_ct.generate_series(4, SLICES, SIZE))
    lies = [int(n) for n in rng.permutation(SLICES) + 1]
    for ds, number in zip(datasets, lies, strict=True):
        ds.InstanceNumber = number
    kept = [k for k in range(SLICES) if k not in drop]
    paths = synthetic_ct.write_series([datasets[k] for k in kept], tmp_path)
    for i in rng.permutation(len(paths)):
        ingest.ingest_dicom_path(project=project, path=paths[i])
    return Series.objects.get(study__project=project), [lies[k] for k in kept]


def _open(page, live_server, project) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_server, "ann")
    page.click(f"tr[data-project='{project.pk}'] >> text=Start labeling")
    page.wait_for_url(f"{live_server.url}/projects/{project.pk}/label/")
    page.wait_for_function(
        "document.querySelector('#viewer')?.dataset.slice === '1'", timeout=30_000
    )
    return errors


def _slice(page) -> int:
    return int(page.get_attribute("#viewer", "data-slice"))


def _wait_slice(page, number: int) -> None:
    page.wait_for_function(f"document.querySelector('#viewer').dataset.slice === '{number}'")


def test_a_ct_series_is_one_scrollable_stack_in_position_order(
    page, live_server, project, member, frontend_built, tmp_path, artifacts_dir: Path
):
    series, numbers = _ingest_ct(project, tmp_path)
    member("ann", "annotator")
    errors = _open(page, live_server, project)
    instance_of = dict(Instance.objects.filter(series=series).values_list("instance_number", "pk"))

    def shown_is_slice(k: int) -> None:
        """The viewer shows the k-th slice from the feet (1-based) and says so."""
        _wait_slice(page, k)
        assert page.get_attribute("#viewer", "data-instance-id") == str(instance_of[numbers[k - 1]])
        assert page.text_content(".ml-slice-indicator").startswith(f"Slice {k} / {SLICES}")

    # One thumbnail for the whole series, not one per slice.
    thumbs = page.locator("#thumbnails .ml-thumb")
    assert thumbs.count() == 1
    assert thumbs.first.get_attribute("data-series-id") == str(series.pk)
    assert f"{SLICES} slices" in thumbs.first.get_attribute("title")
    shown_is_slice(1)
    indicator = page.text_content(".ml-slice-indicator")
    assert "2.50 mm apart" in indicator
    spacing = 350 / SIZE
    times = "\N{MULTIPLICATION SIGN}"
    assert f"{spacing:.2f} {times} {spacing:.2f} mm" in indicator  # what Cornerstone uses
    assert page.locator(".ml-stack-warning").is_hidden()

    # The wheel scrolls slices (and does not zoom).
    zoom = page.get_attribute("#viewer", "data-zoom")
    box = page.locator("#viewer").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(3):
        page.mouse.wheel(0, 120)
        page.wait_for_timeout(60)
    shown_is_slice(4)
    page.mouse.wheel(0, -120)
    shown_is_slice(3)
    assert page.get_attribute("#viewer", "data-zoom") == zoom

    # The arrow keys and Page Up/Down too.
    page.focus("#viewer .ml-viewport")
    page.keyboard.press("ArrowDown")
    shown_is_slice(4)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("PageDown")
    shown_is_slice(6)
    page.keyboard.press("ArrowUp")
    shown_is_slice(5)
    page.keyboard.press("PageUp")
    shown_is_slice(4)
    for _ in range(SLICES + 3):  # stops at the last slice
        page.keyboard.press("PageDown")
    shown_is_slice(SLICES)

    # CT presets are in Hounsfield units.
    page.click("[data-preset=Lung]")
    page.wait_for_function("document.querySelector('.ml-overlay').textContent.includes('L -600')")
    assert page.text_content(".ml-overlay").startswith("W 1500 L -600")
    page.click("[data-preset=Bone]")
    page.wait_for_function("document.querySelector('.ml-overlay').textContent.includes('L 400')")
    page.keyboard.press("PageUp")
    _wait_slice(page, SLICES - 1)
    assert "W 1800 L 400" in page.text_content(".ml-overlay")  # the window stays while scrolling
    page.screenshot(path=str(artifacts_dir / "ct-series-stack.png"))
    assert errors == []


def test_an_irregular_series_shows_its_problem_over_the_image(
    page, live_server, project, member, frontend_built, tmp_path, artifacts_dir: Path
):
    series, numbers = _ingest_ct(project, tmp_path, drop=(10, 11))
    member("ann", "annotator")
    errors = _open(page, live_server, project)

    warning = page.locator(".ml-stack-warning")
    warning.wait_for(state="visible")
    text = warning.text_content()
    before = Instance.objects.get(series=series, instance_number=numbers[9]).pk
    after = Instance.objects.get(series=series, instance_number=numbers[10]).pk
    assert text.startswith("Irregular series: Missing slices")
    assert f"between instances {before} and {after}" in text
    assert "about 2 slice(s) missing" in text
    assert page.text_content(".ml-slice-indicator").startswith(f"Slice 1 / {SLICES - 2}")
    assert "mm apart" not in page.text_content(".ml-slice-indicator")
    assert "irregular" in page.locator("#thumbnails .ml-thumb").first.get_attribute("title")
    page.screenshot(path=str(artifacts_dir / "ct-series-irregular.png"))
    assert errors == []
