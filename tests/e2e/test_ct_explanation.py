"""The CT detector's heatmap in the workspace, in a real browser (issue 21): a chest CT ingested
through the real DICOM path (InstanceNumbers lying), a 3D detector version trained for a few
steps and promoted; the finding's heatmap toggle first says the explanation is being computed
(the server answered 202 and queued its task, run here as the worker runs it), then shows the
overlay of the slice on display, and the overlay follows the slices as the annotator scrolls,
each over its own slice."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from active_learning.ml import synthetic_ct
from active_learning.ml.ct_detector import CTDetector
from active_learning.models import Suggestion
from active_learning.services import versions
from annotations.models import AuditEvent
from annotations.series_stacks import stack_of
from tests.e2e.test_ct_series_stack import SIZE, SLICES, _ingest_ct, _open, _wait_slice
from tests.e2e.test_explanations import HEATMAP_BOX
from tests.e2e.test_workspace import reliable_metrics
from tests.support import queued_tasks
from tests.support.ct_volumes import TINY_CT, whole_nodule_series

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ct_version(project, settings, tmp_path):
    """Version 1: the 3D detector after a few training steps on tiny synthetic volumes (what
    is checked is where the overlays go, not how good it is), promoted."""
    settings.MODELS_DIR = tmp_path / "models"
    versions.clear_cache()
    model = CTDetector(dataclasses.replace(TINY_CT, train_steps=4, warmup_steps=1))
    volumes = [synthetic_ct.labelled_volume(s) for s in whole_nodule_series(2, start=0)]
    model.train(lambda: iter(volumes))
    directory = versions.version_directory(project, 1)
    model.save(directory)
    version = versions.register_version(project=project, number=1, directory=directory)
    version.metrics = reliable_metrics(project)
    version.save(update_fields=["metrics"])
    yield versions.promote(version)
    versions.clear_cache()


def _overlay_on(page, instance_id: int) -> dict:
    page.wait_for_function(
        f"(({HEATMAP_BOX})() || {{}}).instance === {instance_id}", timeout=60_000
    )
    return page.evaluate(HEATMAP_BOX)


def test_the_ct_heatmap_shows_on_the_slice_on_display_and_follows_scrolling(
    page, live_server, project, member, frontend_built, ct_version, tmp_path, artifacts_dir: Path
):
    series, _ = _ingest_ct(project, tmp_path / "dicom")
    case = series.study.case
    Suggestion.objects.create(
        case=case, model_version=ct_version, finding_probabilities={"nodule": 0.4}
    )
    order = stack_of(series).instance_ids
    member("ann", "annotator")
    errors = _open(page, live_server, project)
    queued_tasks.take("inference")  # left by earlier tests

    button = page.locator("button[data-heatmap=nodule]")
    button.click()
    # Not computed yet: the workspace says so, and asks again until the task has drawn it.
    waiting = page.locator("[data-banner=heatmap]")
    waiting.wait_for(timeout=30_000)
    assert waiting.inner_text().startswith("Explanation being computed")
    queued = queued_tasks.take("inference")
    assert queued == [("active_learning.explain_case", [ct_version.pk, case.pk, "nodule"])]
    assert queued_tasks.run(queued) == [True]
    # On the slice on display (slice 1, the series the model read): its own overlay.
    shown = _overlay_on(page, order[0])
    assert shown["natural"] == SIZE and button.get_attribute("aria-pressed") == "true"
    assert page.get_attribute("#viewer", "data-slice") == "1"
    first_src = page.get_attribute(".ml-heatmap", "src")

    # Scrolling: the overlay follows, each slice's over that slice.
    box = page.locator("#viewer").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(4):
        page.mouse.wheel(0, 120)
        page.wait_for_timeout(60)
    _wait_slice(page, 5)
    assert _overlay_on(page, order[4])["natural"] == SIZE
    assert page.get_attribute(".ml-heatmap", "src") != first_src
    page.screenshot(path=str(artifacts_dir / "workspace-ct-heatmap.png"))
    page.focus("#viewer .ml-viewport")
    for _ in range(SLICES - 5):
        page.keyboard.press("ArrowDown")
    _wait_slice(page, SLICES)
    _overlay_on(page, order[-1])
    page.mouse.wheel(0, -120)
    _wait_slice(page, SLICES - 1)
    _overlay_on(page, order[-2])
    # Each request named its slice and was audited; a fast scroll asked for fewer slices than
    # it passed, never for one outside the series (the first asks: a 202 or two while the
    # task ran, then the hottest slice).
    views = AuditEvent.objects.filter(action="case.view_explanation", object_id=str(case.pk))
    assert 5 <= views.count() <= SLICES + 3
    assert waiting.count() == 0 and queued_tasks.take("inference") == []

    # The toggle again hides it.
    button.click()
    page.wait_for_function(f"({HEATMAP_BOX})() === null")
    assert button.get_attribute("aria-pressed") == "false"
    assert errors == []
