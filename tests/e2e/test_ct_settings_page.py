"""A CT project's settings page (issue 21): it names the model kind the project trains (the 3D
CT detector, by modality) and offers only that kind's model settings (no findings or report
floors: the CT detector has neither head); what a model owner saves there is the CT detector's
settings, and a value out of range is refused by the server, naming it."""

from __future__ import annotations

import pytest

from active_learning.services.loop_settings import loop_settings
from annotations.services import projects
from tests.support.browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_ct_projects_loop_settings_are_the_ct_detectors(
    page, live_server, make_user, artifacts_dir, frontend_built
):
    creator = make_user("ct-owner", is_staff=True)
    project = projects.create_project(
        name="Chest CT", created_by=creator, modality="CT", validation_fraction=0.0
    )
    otto = make_user("otto")
    projects.add_member(project=project, user=otto, role="model_owner", added_by=None)
    log_in(page, live_server, "otto")
    page.click(f"tr[data-project='{project.pk}'] >> text=Settings")
    page.wait_for_selector("#settings[data-state=ready]")

    assert page.inner_text("#model-kind") == "ct_retinanet3d"
    for absent in ("report_metric_floor", "finding_precision_target", "min_finding_positives"):
        assert page.locator(f"#f-model_config-{absent}").count() == 0, absent
    # Its operating points match boxes at 3D IoU 0.1, and the AP floor is measured there.
    assert "3D IoU 0.1" in page.inner_text("label[for=f-model_config-min_class_ap]")
    # The CT detector's defaults fill the fields it has.
    assert page.input_value("#f-model_config-train_steps") == "200"

    page.fill("#f-model_config-box_precision_target", "0")
    page.click("#loop-form button[type=submit]")
    page.wait_for_selector("#loop-form .form-error:not([hidden])")
    error = page.inner_text("#loop-form .form-error")
    assert "box_precision_target" in error and "ct_retinanet3d" in error, error
    assert loop_settings(project).model_config == {}

    page.fill("#f-model_config-box_precision_target", "0.8")
    page.fill("#f-model_config-train_steps", "40")
    page.click("#loop-form button[type=submit]")
    page.wait_for_function(
        "document.querySelector('#loop-form .form-status').textContent.includes('Saved')"
    )
    page.screenshot(path=str(artifacts_dir / "ct-project-settings-loop.png"), full_page=True)
    assert loop_settings(project).model_config == {"box_precision_target": 0.8, "train_steps": 40}
