"""Retraining progress on the Models page never looks hung (issue 18, item 6): steps within
training, cases within scoring (not only chunks), the time left, and never "queued" next to
a stage of work. The cycle's progress is written by the services a worker calls
(``cycle_claims.record_progress`` as training reports its steps, the scoring callback after each
batch); the page polls the API."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from active_learning.models import RetrainingCycle
from active_learning.services import cycle_claims, cycles
from tests.support.browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _wait_text(page, selector: str, text: str) -> None:
    page.wait_for_function(
        "([sel, text]) => (document.querySelector(sel)?.textContent || '').includes(text)",
        arg=[selector, text],
    )


def _bar_settled(page) -> None:
    """Wait until the progress bar's width has finished easing in (a CSS transition)."""
    page.wait_for_function(
        "() => document.querySelector('#cycle-progress .fill').getAnimations().length === 0"
    )


def _backdate_stage(cycle: RetrainingCycle, seconds: int) -> None:
    """The current stage began ``seconds`` ago (its pace is what the time left rests on)."""
    cycle.refresh_from_db()
    started = (timezone.now() - timedelta(seconds=seconds)).isoformat()
    RetrainingCycle.objects.filter(pk=cycle.pk).update(
        stage_progress={**cycle.stage_progress, "started_at": started}
    )


def test_training_and_scoring_progress_and_time_left(
    page, live_server, project, member, artifacts_dir: Path
):
    member("mona", "model_owner")
    # An earlier cycle gives the stages after training their time.
    earlier = RetrainingCycle.objects.create(
        project=project,
        status="succeeded",
        stage="done",
        progress=100.0,
        stage_seconds={"evaluating": 8.0, "registering": 2.0, "scoring": 30.0, "ranking": 1.0},
    )
    RetrainingCycle.objects.filter(pk=earlier.pk).update(
        created_at=timezone.now() - timedelta(hours=1)
    )
    cycle = cycles.trigger_cycle(project=project)
    log_in(page, live_server, "mona")
    page.goto(f"{live_server.url}/projects/{project.pk}/models/")
    page.wait_for_selector("#models-page[data-state=ready]")
    page.wait_for_selector("#cycle-status[data-status=queued]")
    assert page.text_content("#cycle-stage") == ""

    # The worker reports the training stage: the page never says "queued" beside it.
    cycle_claims.record_progress(
        cycle, stage="training", progress=cycle_claims.BANDS["training"][0], log="training..."
    )
    _wait_text(page, "#cycle-stage", "training")
    assert page.get_attribute("#cycle-status", "data-status") == "running"
    assert page.text_content("#cycle-status") == "running"
    page.wait_for_selector(f"#cycles tr[data-cycle='{cycle.pk}'] .badge[data-status=running]")

    # Steps within training, and the time left from their pace plus the later stages.
    cycle_claims.record_progress(
        cycle, progress=31.0, within={"unit": "steps", "done": 100, "total": 200}
    )
    _backdate_stage(cycle, 50)
    _wait_text(page, "#cycle-within", "training step 100/200")
    _wait_text(page, "#cycle-eta", "left")
    eta = page.text_content("#cycle-eta")
    # 100 steps at 2 steps/s = 50 s, then 41 s as the last cycle took the rest: 1 min 31 s.
    assert eta.startswith("about 1 min 3") and "not yet timed" not in eta, eta
    assert "100/200 steps" in page.get_attribute("#cycle-eta", "title")
    page.wait_for_selector("#cycle-progress[aria-valuenow='31']")
    _bar_settled(page)
    page.screenshot(path=str(artifacts_dir / "models-training-steps.png"))

    # Scoring: cases within a chunk move the bar before the chunk is done.
    RetrainingCycle.objects.filter(pk=cycle.pk).update(chunks=[[1, 2, 3, 4], [5, 6]])
    cycle.refresh_from_db()
    cycle_claims.record_progress(
        cycle,
        stage="scoring",
        progress=70.0,
        within={"unit": "cases", "done": 0, "total": 6, "chunks": {}},
    )
    cycles._scoring_progress(cycle.pk, 0)(3)
    _wait_text(page, "#cycle-within", "scored 3/6 cases (0/2 chunks)")
    page.wait_for_selector("#cycle-progress[aria-valuenow='83.5']")
    assert page.text_content("#cycle-stage") == "scoring"
    _backdate_stage(cycle, 6)
    # 3 cases in about 6 s: 3 more take about 6 s, then ranking 1 s (the poll adds a little).
    page.wait_for_function(
        "() => /^about ([6-9]|1[0-2]) s left$/"
        ".test(document.querySelector('#cycle-eta').textContent)"
    )
    _bar_settled(page)
    page.screenshot(path=str(artifacts_dir / "models-scoring-cases.png"))


def test_time_left_says_what_it_leaves_out_without_an_earlier_cycle(
    page, live_server, project, member
):
    member("mona", "model_owner")
    cycle = cycles.trigger_cycle(project=project)
    cycle_claims.record_progress(
        cycle, stage="training", within={"unit": "steps", "done": 40, "total": 80}
    )
    _backdate_stage(cycle, 20)
    log_in(page, live_server, "mona")
    page.goto(f"{live_server.url}/projects/{project.pk}/models/")
    page.wait_for_selector("#models-page[data-state=ready]")
    _wait_text(page, "#cycle-eta", "left")
    eta = page.text_content("#cycle-eta")
    assert eta.startswith("about 2") and "for training (later stages not yet timed)" in eta, eta
    assert page.text_content("#cycle-within") == "training step 40/80"
