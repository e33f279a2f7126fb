"""The Models page flags a version trained on a patient who withdrew consent, and retrains
without them in one click (issue 17): the new cycle's label snapshot leaves the patient's
labels out, and the version it makes carries no flag.

No Celery worker: the test runs the cycle's stages in this process, as the worker would."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import override_settings

from active_learning.models import RetrainingCycle
from active_learning.services import cycles, versions, withdrawals
from annotations.models import Annotation, Patient
from annotations.services import consent
from tests.support.browser import log_in
from tests.support.training import run_whole_cycle as _train

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def models_dir(tmp_path: Path):
    with override_settings(MODELS_DIR=tmp_path / "models"):
        versions.clear_cache()
        yield
        versions.clear_cache()


def test_a_version_trained_on_withdrawn_data_is_flagged_and_retrained_without_them(
    page, live_server, loop_project, member, artifacts_dir: Path
):
    first = _train(cycles.trigger_cycle(project=loop_project, trigger="manual"))
    assert first.status == RetrainingCycle.Status.SUCCEEDED
    trained_on = {pk for pk, _ in first.label_snapshot}
    # A patient one of whose training labels version 1 learnt from withdraws.
    label = Annotation.objects.filter(pk__in=trained_on, case__is_validation=False).first()
    patient = Patient.objects.get(studies__case=label.case)
    withdrawn_labels = set(
        Annotation.objects.filter(case__study__patient=patient).values_list("pk", flat=True)
    )
    consent.withdraw(patient=patient, source="lead")

    member("mona", "model_owner")
    log_in(page, live_server, "mona")
    page.goto(f"{live_server.url}/projects/{loop_project.pk}/models/")
    page.wait_for_selector("#models-page[data-state=ready]")
    flag = "#versions tr[data-version='1'] [data-testid=withdrawn-flag]"
    page.wait_for_selector(flag)
    assert page.text_content(flag) == "trained on withdrawn data"
    count = len(withdrawn_labels & trained_on)
    assert f"{count} training label" in page.get_attribute(flag, "title")
    page.screenshot(path=str(artifacts_dir / "models-withdrawn-flag.png"), full_page=True)

    page.click("#versions tr[data-version='1'] [data-testid=retrain-without-withdrawn]")
    page.wait_for_selector("#cycle-status[data-status=queued]")
    second = RetrainingCycle.objects.exclude(pk=first.pk).get(project=loop_project)
    assert second.triggered_by.username == "mona"
    again = "#versions tr[data-version='1'] [data-testid=retrain-without-withdrawn]"
    assert page.is_disabled(again)  # one cycle at a time

    second = _train(second)
    assert second.status == RetrainingCycle.Status.SUCCEEDED
    snapshot = {pk for pk, _ in second.label_snapshot}
    assert snapshot and not snapshot & withdrawn_labels
    # Every other training label is still in.
    remaining = withdrawals.training_annotations(loop_project).values_list("pk", flat=True)
    assert snapshot == set(remaining)
    page.wait_for_selector("#versions tr[data-version='2']")
    assert page.locator("#versions tr[data-version='2'] [data-testid=withdrawn-flag]").count() == 0
    assert page.locator(flag).count() == 1  # version 1 keeps its flag
    page.screenshot(path=str(artifacts_dir / "models-retrained-without.png"), full_page=True)


def test_a_lead_sees_the_flag_but_no_retrain_button(page, live_server, loop_project):
    first = _train(cycles.trigger_cycle(project=loop_project, trigger="manual"))
    label = Annotation.objects.filter(
        pk__in=[pk for pk, _ in first.label_snapshot], case__is_validation=False
    ).first()
    consent.withdraw(patient=Patient.objects.get(studies__case=label.case), source="lead")
    log_in(page, live_server, "boss")  # the loop project's lead: sees models, may not train
    page.goto(f"{live_server.url}/projects/{loop_project.pk}/models/")
    page.wait_for_selector("#versions tr[data-version='1'] [data-testid=withdrawn-flag]")
    assert page.locator("[data-testid=retrain-without-withdrawn]").count() == 0
