"""The model owner's page in a real browser: retrain now, the cycle followed live, the version
registry with promote and roll back; who may see and act; the 409 of a second cycle.

There is no Celery worker here: the test runs the cycle's stages in this process, one by one, as
the worker would (tests/active_learning/test_cycles.py, ``run_whole_cycle``), while the page
polls the API."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from active_learning.models import ModelVersion, RetrainingCycle
from active_learning.services import cycles, versions
from active_learning.services.loop_settings import update_loop_settings
from tests.support.browser import log_in

MINUS = "\u2212"  # the page writes differences with a true minus sign

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WORKER = "test:1:a"


@pytest.fixture(autouse=True)
def models_dir(tmp_path: Path):
    # Chunks of two cases: the three open cases are scored in two chunks, so the page can be
    # seen between them.
    with override_settings(MODELS_DIR=tmp_path / "models", MEDLOOP_SCORING_CHUNK=2):
        versions.clear_cache()
        yield tmp_path / "models"
        versions.clear_cache()


def _open_models_page(page, live_server, project) -> None:
    page.goto(f"{live_server.url}/projects/{project.pk}/models/")
    page.wait_for_selector("#models-page[data-state=ready]")


def _wait_text(page, selector: str, text: str) -> None:
    page.wait_for_function(
        "([sel, text]) => (document.querySelector(sel)?.textContent || '').includes(text)",
        arg=[selector, text],
    )


def _wait_progress(page, value: str) -> None:
    page.wait_for_selector(f"#cycle-progress[aria-valuenow='{value}']")


def _version_status(page, number: int) -> str:
    return page.get_attribute(f"#versions tr[data-version='{number}'] .badge", "data-status")


def _wait_version_status(page, number: int, status: str) -> None:
    page.wait_for_selector(f"#versions tr[data-version='{number}'] .badge[data-status='{status}']")


def _new_cycle(project, *, after: RetrainingCycle | None = None) -> RetrainingCycle:
    found = RetrainingCycle.objects.filter(project=project)
    if after is not None:
        found = found.exclude(pk=after.pk)
    return found.get()


def _run_rest_of_cycle(cycle: RetrainingCycle) -> None:
    cycle.refresh_from_db()
    for index in range(len(cycle.chunks)):
        cycles.run_scoring_chunk(cycle.pk, index)
    cycles.run_ranking(cycle.pk)


def test_model_owner_retrains_then_promotes_and_rolls_back(
    page, live_server, loop_project, member, artifacts_dir: Path
):
    member("mona", "model_owner")
    log_in(page, live_server, "mona")
    page.click(f"tr[data-project='{loop_project.pk}'] >> text=Models")
    page.wait_for_selector("#models-page[data-state=ready]")
    assert page.is_visible("#versions-empty") and page.is_visible("#cycle-empty")
    assert "hybrid" in page.text_content("#setting-strategy")
    assert "on" in page.text_content("#setting-auto-promote")

    page.click("#retrain")
    page.wait_for_selector("#cycle-status[data-status=queued]")
    first = _new_cycle(loop_project)
    assert page.is_disabled("#retrain")  # one cycle at a time
    assert page.is_visible("#cycle-cancel")
    page.wait_for_selector(f"#cycles tr[data-cycle='{first.pk}']")

    # Stage 1 (train, evaluate, register, promote): the page follows while it runs.
    assert cycles.run_training(first.pk, owner=WORKER)
    _wait_text(page, "#cycle-stage", "scoring")
    _wait_version_status(page, 1, "promoted")
    cycles.run_scoring_chunk(first.pk, 0)
    _wait_progress(page, "88")  # scoring spans 70-97 %: two cases of three done
    _wait_text(page, "#cycle-within", "scored 2/3 cases (1/2 chunks)")
    assert "promoted version 1" in page.text_content("#cycle-log")
    page.screenshot(path=str(artifacts_dir / "models-cycle-running.png"))

    _run_rest_of_cycle(first)
    _wait_progress(page, "100")
    page.wait_for_selector("#cycle-status[data-status=succeeded]")
    assert page.text_content("#cycle-stage") == "done"
    assert not page.is_disabled("#retrain") and not page.is_visible("#cycle-cancel")
    row = "#versions tr[data-version='1']"
    assert page.text_content(f"{row} [data-testid=label-count]") == "6"
    assert page.text_content(f"{row} .badge") == "serving"
    assert page.locator(f"{row} [data-testid=promote]").count() == 0
    assert "v1" in page.text_content(f"#cycles tr[data-cycle='{first.pk}']")
    assert "v1" in page.text_content("#setting-serving")
    page.screenshot(path=str(artifacts_dir / "models-first-version.png"), full_page=True)

    # A second cycle with auto-promote off leaves a candidate for the model owner.
    lead = get_user_model().objects.get(username="boss")
    update_loop_settings(project=loop_project, changed_by=lead, auto_promote=False)
    page.click("#retrain")
    page.wait_for_selector("#cycle-status[data-status=queued]")
    second = _new_cycle(loop_project, after=first)
    _wait_text(page, "#cycle-title", str(second.pk))
    _wait_text(page, "#setting-auto-promote", "off")
    assert cycles.run_training(second.pk, owner=WORKER)
    _run_rest_of_cycle(second)
    page.wait_for_selector("#cycle-status[data-status=succeeded]")
    _wait_version_status(page, 2, "candidate")
    assert _version_status(page, 1) == "promoted"
    assert "v2" in page.text_content(f"#cycles tr[data-cycle='{second.pk}']")
    page.screenshot(path=str(artifacts_dir / "models-candidate.png"), full_page=True)

    # Promote asks first, with both versions' figures (test_models_decisions.py: the content).
    page.click("#versions tr[data-version='2'] [data-testid=promote]")
    page.wait_for_selector("#confirm[open]")
    assert f"v2 {MINUS} v1" in page.text_content("#confirm-paired")
    page.click("#confirm-ok")
    _wait_version_status(page, 2, "promoted")
    assert _version_status(page, 1) == "retired"
    assert "v2" in page.text_content("#setting-serving")
    assert versions.promoted_version(loop_project).number == 2
    assert page.text_content("#rollback") == "Roll back to v1"
    assert page.is_hidden("#alert")

    page.click("#rollback")
    page.wait_for_selector("#confirm[open]")
    assert page.text_content("#confirm-title") == "Roll back to v1?"
    page.click("#confirm-ok")
    _wait_version_status(page, 1, "promoted")
    assert _version_status(page, 2) == "retired"
    assert versions.promoted_version(loop_project).number == 1
    page.screenshot(path=str(artifacts_dir / "models-rolled-back.png"), full_page=True)


def test_retrain_while_a_cycle_runs_shows_the_409_and_cancel_stops_it(
    page, live_server, project, member, artifacts_dir: Path
):
    member("mona", "model_owner")
    log_in(page, live_server, "mona")
    _open_models_page(page, live_server, project)
    assert page.is_hidden("#alert")
    # Started after the page loaded (the label threshold, or another model owner).
    running = cycles.trigger_cycle(project=project, trigger=RetrainingCycle.Trigger.AUTOMATIC)

    page.click("#retrain")
    page.wait_for_selector("#alert", state="visible")
    message = page.text_content("#alert-message")
    assert "already running" in message and f"cycle {running.pk}" in message
    # The page now follows that cycle.
    page.wait_for_selector("#cycle-status[data-status=queued]")
    assert page.is_disabled("#retrain")
    assert "automatic" in page.text_content(f"#cycles tr[data-cycle='{running.pk}']")
    page.screenshot(path=str(artifacts_dir / "models-conflict.png"))

    page.click("#cycle-cancel")
    page.wait_for_selector("#cycle-status[data-status=cancelled]")
    assert page.is_hidden("#alert")
    running.refresh_from_db()
    assert running.status == RetrainingCycle.Status.CANCELLED
    assert not page.is_disabled("#retrain")


def test_lead_sees_versions_and_cycles_but_cannot_act(page, live_server, project, member):
    lead = member("lena", "lead")
    ModelVersion.objects.create(
        project=project,
        number=1,
        status=ModelVersion.Status.CANDIDATE,
        label_count=4,
        strategy="hybrid",
        metrics={
            "validation": {
                "boxes": {"map_50": 0.41234},
                "findings": {"auroc_macro": 0.8},
                "reports": {"bleu_4": -1},  # "no ground truth" is not a score
            }
        },
    )
    running = cycles.trigger_cycle(project=project, triggered_by=lead)
    log_in(page, live_server, "lena")
    page.click(f"tr[data-project='{project.pk}'] >> text=Models")
    page.wait_for_selector("#models-page[data-state=ready]")

    page.wait_for_selector("#cycle-status[data-status=queued]")
    assert page.locator("#retrain").count() == 0
    assert page.locator("#rollback").count() == 0
    assert page.is_hidden("#cycle-cancel")
    row = "#versions tr[data-version='1']"
    assert page.locator(f"{row} [data-testid=promote]").count() == 0
    assert page.text_content(f"{row} td[data-metric='boxes.map_50']") == "0.412"
    assert page.text_content(f"{row} td[data-metric='findings.auroc_macro']") == "0.800"
    # "—" with a note that says why (test_models_decisions.py: the reasons).
    assert page.text_content(f"{row} td[data-metric='reports.bleu_4']") == "—1"
    assert "v1 BLEU-4 —: not defined on the reports" in page.text_content("#figure-notes")
    assert "manual · lena" in page.text_content(f"#cycles tr[data-cycle='{running.pk}']")


def test_annotator_is_refused_the_models_page(page, live_server, project, member):
    member("ann", "annotator")
    log_in(page, live_server, "ann")
    assert page.locator("text=Models").count() == 0
    response = page.goto(f"{live_server.url}/projects/{project.pk}/models/")
    assert response.status == 403
