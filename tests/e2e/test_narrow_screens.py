"""Pages on the screens people have (issue 18, item 9): at 1024 px the Models page does not
scroll sideways, the workspace keeps a large image and the dashboard's tiles say all they say;
at 1366 px Recent cycles keeps its "Took" column inside its card."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from active_learning.models import RetrainingCycle
from tests.e2e.test_models_decisions import _versions
from tests.e2e.test_workspace import _open_workspace, _suggest
from tests.support.browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SIDEWAYS = "() => [document.documentElement.scrollWidth, window.innerWidth]"
# Elements whose text is cut short (an ellipsis or hidden overflow), with their text.
CLIPPED = """(selector) => [...document.querySelectorAll(selector)]
  .filter((el) => el.scrollWidth > el.clientWidth + 1).map((el) => el.textContent)"""


def _cycles(project, user) -> None:
    """Eight finished cycles, long ones started by hand, so that Took reads "1 h 12 min"."""
    now = timezone.now()
    for n in range(8):
        cycle = RetrainingCycle.objects.create(
            project=project,
            status=RetrainingCycle.Status.SUCCEEDED,
            stage="done",
            progress=100.0,
            trigger=RetrainingCycle.Trigger.MANUAL,
            triggered_by=user,
        )
        start = now - timedelta(hours=n + 2)
        RetrainingCycle.objects.filter(pk=cycle.pk).update(
            started_at=start, finished_at=start + timedelta(minutes=72 + n)
        )


def test_models_page_fits_1024_and_keeps_took_inside_its_card_at_1366(
    browser, live_server, project, member, artifacts_dir: Path
):
    _versions(project)
    owner = member("modelowner_with_a_long_name", "model_owner")
    _cycles(project, owner)
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    page = context.new_page()
    try:
        log_in(page, live_server, owner.username)
        page.goto(f"{live_server.url}/projects/{project.pk}/models/")
        page.wait_for_selector("#models-page[data-state=ready]")
        page.wait_for_selector("#cycles tbody tr")
        width, inner = page.evaluate(SIDEWAYS)
        page.screenshot(path=str(artifacts_dir / "models-1024.png"), full_page=True)
        assert width <= inner, f"the Models page is {width} px wide in a {inner} px window"

        page.set_viewport_size({"width": 1366, "height": 768})
        card = page.locator("section.card:has(#cycles)").bounding_box()
        for cell in page.locator("#cycles tbody td:last-child").all():
            box = cell.bounding_box()
            assert box["x"] + box["width"] <= card["x"] + card["width"], (
                f"Took {cell.text_content()!r} spills out of Recent cycles"
            )
        assert page.evaluate(CLIPPED, "#cycles td") == []
        width, inner = page.evaluate(SIDEWAYS)
        assert width <= inner
        page.screenshot(path=str(artifacts_dir / "models-1366.png"), full_page=True)
    finally:
        context.close()


def test_workspace_keeps_a_large_image_at_1024(
    browser, live_server, project, member, cases, artifacts_dir: Path
):
    _suggest(project, cases)
    member("ann", "annotator")
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    page = context.new_page()
    try:
        log_in(page, live_server, "ann")
        _open_workspace(page, live_server, project)
        viewer = page.locator("#viewer").bounding_box()
        side = min(viewer["width"], viewer["height"])
        page.screenshot(path=str(artifacts_dir / "workspace-1024.png"))
        assert side >= 540, f"the image gets {side:.0f} px of a 1024 x 768 window"
        width, inner = page.evaluate(SIDEWAYS)
        assert width <= inner
        # Context, findings and report stay within the window.
        for selector in (".left", ".right", ".findings-table"):
            box = page.locator(selector).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= inner + 1, selector
    finally:
        page.goto("about:blank")
        context.close()


@pytest.mark.parametrize("width", [1024, 1366])
def test_dashboard_tiles_say_everything_they_say(
    browser, live_server, project, member, cases, width: int, artifacts_dir: Path
):
    # Some cases are validation holds, so that a tile says "… · +N validation".
    for case in cases[:6]:
        case.is_validation = True
        case.save(update_fields=["is_validation"])
    member("lena", "lead")
    context = browser.new_context(viewport={"width": width, "height": 768})
    page = context.new_page()
    try:
        log_in(page, live_server, "lena")
        page.goto(f"{live_server.url}/projects/{project.pk}/dashboard/")
        page.wait_for_selector("#dashboard[data-state=ready]", timeout=30_000)
        page.screenshot(path=str(artifacts_dir / f"dashboard-{width}.png"))
        assert page.locator(".tile .detail").count() > 0
        assert page.evaluate(CLIPPED, ".tile .detail, .tile .value, .tile .label") == []
        scroll, inner = page.evaluate(SIDEWAYS)
        assert scroll <= inner
    finally:
        context.close()
