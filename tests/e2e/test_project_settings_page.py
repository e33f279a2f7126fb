"""The project settings page (issue 18, item 3): leads change the label schema (warned when an
edit forces the loop to start cold), the queue and the members; model owners change the loop;
each sees the other parts read-only; a lead cannot grant the admin role; annotators are refused.
The server enforces each refusal, not the page."""

from __future__ import annotations

import pytest

from active_learning.models import LoopSettings, ModelVersion
from active_learning.services.loop_settings import loop_settings, update_loop_settings
from annotations.models import AuditEvent, Membership, Project
from tests.support.browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _open_settings(page, live_server, project, username: str) -> None:
    log_in(page, live_server, username)
    page.click(f"tr[data-project='{project.pk}'] >> text=Settings")
    page.wait_for_selector("#settings[data-state=ready]")


def _wait_status(page, form: str, text: str) -> None:
    page.wait_for_function(
        "([form, text]) => document.querySelector('#settings').dataset.state === 'ready'"
        " && document.querySelector(form + ' .form-status').textContent.includes(text)",
        arg=[form, text],
    )


def _wait_error(page, form: str) -> str:
    page.wait_for_selector(f"{form} .form-error:not([hidden])")
    return page.inner_text(f"{form} .form-error")


def test_lead_changes_the_queue_and_the_schema_and_is_warned_of_a_cold_start(
    page, live_server, project, member, artifacts_dir, frontend_built
):
    member("lena", "lead")
    ModelVersion.objects.create(project=project, number=1, status="promoted")
    _open_settings(page, live_server, project, "lena")

    # The loop is the model owner's: shown read-only, no save button.
    assert page.locator("#loop.read-only").count() == 1
    assert page.locator("#f-acquisition_strategy").is_disabled()
    assert not page.locator("#loop-form button[type=submit]").is_visible()
    assert page.input_value("#f-acquisition_strategy") == "hybrid"

    # Queue: a bad lease time is refused by the server, naming the field; a good one is saved.
    page.fill("#f-lease_seconds", "10")
    page.click("#queue-form button[type=submit]")
    assert "lease_seconds" in _wait_error(page, "#queue-form")
    assert page.get_attribute("#f-lease_seconds", "aria-invalid") == "true"
    page.fill("#f-lease_seconds", "1200")
    page.fill("#f-double_read_fraction", "0.25")
    page.fill("#f-adjudication_box_f1", "0.6")
    page.fill("#f-adjudication_report_rouge", "0.35")
    page.fill("#f-validation_fraction", "0.2")
    page.click("#queue-form button[type=submit]")
    _wait_status(page, "#queue-form", "Saved")
    assert page.get_attribute("#f-lease_seconds", "aria-invalid") is None
    project.refresh_from_db()
    assert (project.lease_seconds, project.double_read_fraction) == (1200, 0.25)
    assert (project.adjudication_box_f1, project.adjudication_report_rouge) == (0.6, 0.35)
    assert project.validation_fraction == 0.2
    event = AuditEvent.objects.filter(action="project.update", actor_username="lena").latest("pk")
    assert event.detail["values"]["lease_seconds"] == [900, 1200]

    # Schema: a new colour changes no class (no warning); a new finding class does.
    first = page.locator("#schema-form tr.finding").first
    first.locator("input.name").fill("Pulmonary nodule")
    first.locator("input.color").fill("#00aa88")
    assert page.locator("#cold-start-warning").is_hidden()
    page.click("#add-section")
    section = page.locator("#schema-form tr.section").last
    section.locator("input.key").fill("comparison")
    section.locator("input.title").fill("Comparison")
    page.click("#add-finding")
    new = page.locator("#schema-form tr.finding").last
    new.locator("input.key").fill("atelectasis")
    new.locator("input.name").fill("Atelectasis")
    new.locator("input.hotkey").fill("1")  # nodule's hotkey already
    warning = page.locator("#cold-start-warning")
    assert warning.is_visible()
    assert "forces a cold start" in warning.inner_text()
    assert "version 1" in warning.inner_text()
    page.click("#schema-form button[type=submit]")
    assert "hotkey" in _wait_error(page, "#schema-form")
    assert new.locator("input.hotkey").get_attribute("aria-invalid") == "true"
    page.screenshot(path=str(artifacts_dir / "project-settings-page.png"), full_page=True)
    project.refresh_from_db()
    assert len(project.label_schema["findings"]) == 6  # nothing saved
    new.locator("input.hotkey").fill("7")
    page.click("#schema-form button[type=submit]")
    _wait_status(page, "#schema-form", "Schema saved")
    project.refresh_from_db()
    assert project.finding_keys[-1] == "atelectasis"
    assert project.label_schema["findings"][0]["name"] == "Pulmonary nodule"
    assert project.label_schema["findings"][0]["color"] == "#00aa88"
    assert project.label_schema["report_sections"][-1] == {
        "key": "comparison",
        "title": "Comparison",
    }
    assert page.locator("#cold-start-warning").is_hidden()  # saved: nothing pending
    event = AuditEvent.objects.filter(action="project.update", actor_username="lena").latest("pk")
    assert event.detail["finding_keys_changed"] is True

    # Reordering the classes forces a cold start too.
    page.locator("#schema-form tr.finding").nth(1).get_by_role("button", name="Move up").click()
    assert page.locator("#cold-start-warning").is_visible()


def test_model_owner_changes_the_loop_and_sees_the_rest_read_only(
    page, live_server, project, member, artifacts_dir, frontend_built
):
    member("otto", "model_owner")
    _open_settings(page, live_server, project, "otto")
    assert page.locator("#schema.read-only").count() == 1
    assert page.locator("#queue.read-only").count() == 1
    assert page.locator("#f-lease_seconds").is_disabled()
    assert page.locator("#members").count() == 0  # leads and admins manage members

    # A floor outside [0, 1] is refused by the server, naming it; nothing is saved.
    page.fill("#f-model_config-report_metric_floor", "5")
    page.click("#loop-form button[type=submit]")
    assert "report_metric_floor" in _wait_error(page, "#loop-form")
    assert page.get_attribute("#f-model_config-report_metric_floor", "aria-invalid") == "true"
    assert loop_settings(project).model_config == {}

    page.fill("#f-model_config-report_metric_floor", "0.4")
    page.select_option("#f-acquisition_strategy", "fifo")
    page.fill("#f-auto_retrain_threshold", "20")
    page.fill("#f-model_config-train_steps", "500")
    page.fill("#f-model_config-box_precision_target", "0.8")
    page.fill("#f-model_config-box_precision_confidence", "0.95")
    page.select_option("#f-promotion_metric", "findings.auroc_macro")
    page.uncheck("#f-auto_promote")
    page.fill("#f-loop-min_validation_labels", "30")
    page.select_option("#f-loop-cold_start", "scratch")
    page.click("#loop-form button[type=submit]")
    _wait_status(page, "#loop-form", "Saved")
    page.screenshot(path=str(artifacts_dir / "project-settings-loop.png"), full_page=True)
    loop = loop_settings(project)
    assert loop.acquisition_strategy == "fifo"
    assert loop.auto_retrain_threshold == 20
    assert loop.promotion_metric == "findings.auroc_macro"
    assert loop.auto_promote is False
    assert loop.model_config == {
        "report_metric_floor": 0.4,
        "train_steps": 500,
        "box_precision_target": 0.8,
        "box_precision_confidence": 0.95,
    }
    assert (loop.min_validation_labels, loop.cold_start) == (30, "scratch")
    assert AuditEvent.objects.filter(action="loop.settings", actor_username="otto").exists()

    # The server refuses the lead's part to a model owner, whatever the page shows.
    refused = page.evaluate(
        """async (url) => {
          const config = document.getElementById('settings-config').textContent;
          const token = JSON.parse(config).csrfToken;
          const r = await fetch(url, {method: 'PATCH', credentials: 'same-origin',
            headers: {'Content-Type': 'application/json', 'X-CSRFToken': token},
            body: JSON.stringify({lease_seconds: 60})});
          return [r.status, (await r.json()).message];
        }""",
        f"/api/projects/{project.pk}/",
    )
    assert refused[0] == 403 and "lease_seconds" in refused[1]
    assert Project.objects.get(pk=project.pk).lease_seconds == 900


def test_a_refused_guard_value_leaves_the_other_loop_settings_unchanged(
    page, live_server, project, member, frontend_built
):
    """The Loop section is saved in one request: when the server refuses the promotion
    guard's value, the strategy and retrain threshold typed beside it are not stored either."""
    member("otto", "model_owner")
    _open_settings(page, live_server, project, "otto")
    loop = loop_settings(project)
    before = (loop.acquisition_strategy, loop.auto_retrain_threshold)
    writes: list[str] = []
    page.on("request", lambda r: writes.append(r.url) if r.method == "PATCH" else None)
    page.select_option("#f-acquisition_strategy", "fifo")
    page.fill("#f-auto_retrain_threshold", "17")
    page.fill("#f-loop-bootstrap_resamples", "10")  # the guard needs at least 1000
    page.click("#loop-form button[type=submit]")
    assert "bootstrap_resamples" in _wait_error(page, "#loop-form")
    assert page.get_attribute("#f-loop-bootstrap_resamples", "aria-invalid") == "true"
    assert [url.split(live_server.url)[-1] for url in writes] == [
        f"/api/projects/{project.pk}/loop-settings/"
    ]
    loop = loop_settings(project)
    assert (loop.acquisition_strategy, loop.auto_retrain_threshold) == before
    assert not LoopSettings.objects.filter(project=project, bootstrap_resamples=10).exists()

    page.fill("#f-loop-bootstrap_resamples", "2000")
    page.click("#loop-form button[type=submit]")
    _wait_status(page, "#loop-form", "Saved")
    loop = loop_settings(project)
    assert (loop.acquisition_strategy, loop.auto_retrain_threshold) == ("fifo", 17)
    assert LoopSettings.objects.get(project=project).bootstrap_resamples == 2000
    page.reload()
    page.wait_for_selector("#settings[data-state=ready]")
    assert page.input_value("#f-auto_retrain_threshold") == "17"


def test_lead_manages_members_but_cannot_grant_admin(
    page, live_server, project, member, make_user, frontend_built
):
    member("lena", "lead")
    member("ada", "admin")
    make_user("rita")
    _open_settings(page, live_server, project, "lena")
    roles = page.locator("#m-role option").evaluate_all("options => options.map(o => o.value)")
    assert "admin" not in roles and {"annotator", "reviewer", "lead", "model_owner"} <= set(roles)
    # An admin's membership cannot be removed by a lead either.
    assert page.locator("tr[data-username=ada][data-role=admin] button.remove").count() == 0

    page.fill("#m-username", "rita")
    page.select_option("#m-role", "reviewer")
    page.click("#member-form button[type=submit]")
    _wait_status(page, "#member-form", "rita")
    page.wait_for_selector("tr[data-username=rita][data-role=reviewer]")
    assert Membership.objects.filter(
        project=project, user__username="rita", role="reviewer"
    ).exists()

    # Asked directly, the server refuses the admin role to a lead.
    refused = page.evaluate(
        """async (url) => {
          const config = document.getElementById('settings-config').textContent;
          const token = JSON.parse(config).csrfToken;
          const r = await fetch(url, {method: 'POST', credentials: 'same-origin',
            headers: {'Content-Type': 'application/json', 'X-CSRFToken': token},
            body: JSON.stringify({username: 'rita', role: 'admin'})});
          return [r.status, (await r.json()).message];
        }""",
        f"/api/projects/{project.pk}/members/",
    )
    assert refused == [403, "Only a project admin can grant the admin role."]
    assert not Membership.objects.filter(project=project, user__username="rita", role="admin")

    # Removing rita's role.
    page.click("tr[data-username=rita][data-role=reviewer] button.remove")
    page.wait_for_selector("tr[data-username=rita]", state="detached")
    assert not Membership.objects.filter(project=project, user__username="rita").exists()


def test_an_annotator_is_refused_the_settings_page(page, live_server, project, member):
    member("ann", "annotator", "reviewer")
    log_in(page, live_server, "ann")
    assert page.locator(f"tr[data-project='{project.pk}'] >> text=Settings").count() == 0
    response = page.goto(f"{live_server.url}/projects/{project.pk}/settings/")
    assert response.status == 403
    assert "lead, model owner or admin" in page.inner_text("#refusal-reason")


def test_the_admin_loop_settings_form_offers_the_loops_lists_and_refuses_a_bad_value(
    page, live_server, project, make_user
):
    """Issue 18, item 3: the Django admin stored strategy and metric as free text; the loop
    settings' form (the loop's own since issue 19) offers the loop's strategies and metrics to
    pick from and refuses, at the field, what the API refuses (here a report floor outside
    [0, 1]), storing nothing."""
    make_user("root", is_staff=True, is_superuser=True)
    loop = update_loop_settings(project=project)
    log_in(page, live_server, "root")
    page.goto(f"{live_server.url}/admin/active_learning/loopsettings/{loop.pk}/change/")
    strategy = page.locator("select[name=acquisition_strategy]")
    metric = page.locator("select[name=promotion_metric]")
    assert strategy.count() == 1 and metric.count() == 1  # picked from a list, not typed
    offered = strategy.locator("option").evaluate_all("(os) => os.map((o) => o.value)")
    assert {"fifo", "random", "uncertainty-findings"} <= set(offered)
    assert "reports.finding_f1_micro" in metric.locator("option").evaluate_all(
        "(os) => os.map((o) => o.value)"
    )
    strategy.select_option("fifo")
    page.fill("textarea[name=model_config]", '{"report_metric_floor": 5}')
    page.click("input[name=_save]")
    page.wait_for_selector(".errornote")
    error = page.inner_text(".field-model_config .errorlist")
    assert "report_metric_floor" in error
    loop.refresh_from_db()
    assert loop.acquisition_strategy != "fifo" and loop.model_config == {}

    page.fill("textarea[name=model_config]", '{"report_metric_floor": 0.4}')
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    loop.refresh_from_db()
    assert loop.acquisition_strategy == "fifo"
    assert loop.model_config == {"report_metric_floor": 0.4}
