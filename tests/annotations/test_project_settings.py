"""Project settings through the API and the Django admin (issue 18, item 3): each part is
changed by the roles that own it (leads the schema and the queue, model owners the loop,
admins both); bad values are a 400 naming the field, never a 500; the admin's project form
checks what the API checks (strategy and metric from the loop's lists, the schema, the model's
floors); every change is audited with its old and new values."""

from __future__ import annotations

import json

import pytest

from active_learning.models import LoopSettings
from active_learning.services.loop_settings import EDITABLE, loop_settings, update_loop_settings
from annotations.models import AuditEvent, Project
from annotations.services import projects

pytestmark = pytest.mark.django_db


@pytest.fixture
def clients(member, api_for):
    return {
        "lead": api_for(member("lena", "lead")),
        "owner": api_for(member("otto", "model_owner")),
        "admin": api_for(member("ada", "admin")),
        "annotator": api_for(member("ann", "annotator")),
    }


def test_each_part_of_the_settings_is_changed_by_its_roles_only(project, clients):
    url = f"/api/projects/{project.pk}/"
    loop_url = f"/api/projects/{project.pk}/loop-settings/"
    queue, loop = {"lease_seconds": 600}, {"acquisition_strategy": "fifo"}
    assert clients["lead"].patch(url, queue, format="json").status_code == 200
    refused = clients["owner"].patch(url, queue, format="json")
    assert refused.status_code == 403 and "lease_seconds" in refused.json()["message"]
    assert "lead" in refused.json()["message"]
    assert clients["lead"].patch(loop_url, loop, format="json").status_code == 403
    assert clients["annotator"].patch(loop_url, loop, format="json").status_code == 403
    assert clients["owner"].patch(loop_url, loop, format="json").status_code == 200
    # The project's JSON shows the loop's settings, which its own endpoint does not change: a
    # request naming one is refused whole, and says where the setting is changed.
    assert clients["lead"].get(url).json()["acquisition_strategy"] == "fifo"
    mixed = clients["admin"].patch(
        url, {"lease_seconds": 1200, "auto_promote": False}, format="json"
    )
    assert mixed.status_code == 400
    assert "auto_promote" in mixed.json()["message"] and loop_url in mixed.json()["message"]
    project.refresh_from_db()
    assert project.lease_seconds == 600 and loop_settings(project).auto_promote is True
    both = clients["admin"].patch(
        loop_url, {"cold_start": "scratch", "auto_promote": False}, format="json"
    )
    assert both.status_code == 200 and both.json()["auto_promote"] is False
    assert clients["lead"].get(url).json()["auto_promote"] is False


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"model_config": {"report_metric_floor": 5}}, "report_metric_floor"),
        ({"model_config": {"report_finding_f1_floor": -0.1}}, "report_finding_f1_floor"),
        ({"model_config": {"box_precision_target": 0}}, "box_precision_target"),
        ({"model_config": {"box_precision_confidence": 1}}, "box_precision_confidence"),
        ({"model_config": {"box_precision_confidence": 0.3}}, "box_precision_confidence"),
        ({"model_config": {"finding_precision_target": 1.5}}, "finding_precision_target"),
        ({"model_config": {"train_steps": 2.5}}, "train_steps"),
        ({"model_config": {"train_steps": None}}, "train_steps"),
        ({"model_config": {"min_validation_positives": -1}}, "min_validation_positives"),
        ({"model_config": {"min_class_ap": True}}, "min_class_ap"),
        ({"model_config": []}, "model_config"),
        ({"auto_retrain_threshold": -1}, "auto_retrain_threshold"),
        ({"acquisition_strategy": ""}, "acquisition_strategy"),
        ({"promotion_metric": None}, "promotion_metric"),
        ({"training_epochs": "many"}, "training_epochs"),
    ],
)
def test_bad_loop_values_are_a_400_naming_the_field(project, clients, body, named):
    url = f"/api/projects/{project.pk}/loop-settings/"
    response = clients["owner"].patch(url, body, format="json")
    assert response.status_code == 400, response.content
    assert named in response.json()["message"]
    assert loop_settings(project).model_config == {}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"lease_seconds": "soon"}, "lease_seconds"),
        ({"lease_seconds": 10}, "lease_seconds"),
        ({"double_read_fraction": 2}, "double_read_fraction"),
        ({"validation_fraction": None}, "validation_fraction"),
        ({"adjudication_report_rouge": -1}, "adjudication_report_rouge"),
        ({"label_schema": "nodules"}, "label_schema"),
        ({"label_schema": None}, "label_schema"),
        ({"label_schema": [1, 2]}, "label_schema"),
        ({"label_schema": {"findings": "nodule", "report_sections": []}}, "label_schema"),
        ({"label_schema": {"findings": [{"key": 5}], "report_sections": [{"key": "x"}]}}, "key"),
        (
            {
                "label_schema": {
                    "findings": [{"key": "a", "hotkey": "1"}, {"key": "b", "hotkey": "1"}],
                    "report_sections": [{"key": "findings"}],
                }
            },
            "hotkey",
        ),
        (
            {
                "label_schema": {
                    "findings": [{"key": "a", "color": "red"}],
                    "report_sections": [{"key": "findings"}],
                }
            },
            "color",
        ),
    ],
)
def test_bad_queue_and_schema_values_are_a_400_naming_the_field(project, clients, body, named):
    response = clients["lead"].patch(f"/api/projects/{project.pk}/", body, format="json")
    assert response.status_code == 400, response.content
    assert named in response.json()["message"]


def test_a_body_that_is_not_an_object_is_a_400(project, clients):
    response = clients["lead"].patch(f"/api/projects/{project.pk}/", [1, 2], format="json")
    assert response.status_code == 400


def test_changes_are_audited_with_old_and_new_values_and_the_cold_start(project, clients):
    url = f"/api/projects/{project.pk}/"
    clients["lead"].patch(url, {"lease_seconds": 300, "double_read_fraction": 0.0}, format="json")
    event = AuditEvent.objects.filter(action="project.update").latest("pk")
    assert event.actor_username == "lena"
    assert event.detail["fields"] == ["double_read_fraction", "lease_seconds"]
    assert event.detail["values"] == {"lease_seconds": [900, 300]}  # the fraction did not change

    schema = json.loads(json.dumps(project.label_schema))
    schema["findings"][0]["color"] = "#000000"
    clients["lead"].patch(url, {"label_schema": schema}, format="json")
    event = AuditEvent.objects.filter(action="project.update").latest("pk")
    assert event.detail["finding_keys_changed"] is False
    schema["findings"].reverse()
    clients["lead"].patch(url, {"label_schema": schema}, format="json")
    event = AuditEvent.objects.filter(action="project.update").latest("pk")
    assert event.detail["finding_keys_changed"] is True


def test_the_settings_page_tells_leads_and_owners_what_they_may_change(client, project, member):
    member("lena", "lead")
    member("otto", "model_owner")
    client.login(username="lena", password="correct horse battery")
    page = client.get(f"/projects/{project.pk}/settings/")
    config = page.context["config"]
    assert config["can"] == {"project": True, "loop": False, "viewMembers": True, "members": True}
    assert "admin" not in config["grantableRoles"]
    assert config["latestVersion"] is None
    assert config["modelDefaults"]["report_metric_floor"] == 0.3
    client.login(username="otto", password="correct horse battery")
    config = client.get(f"/projects/{project.pk}/settings/").context["config"]
    assert config["can"] == {"project": False, "loop": True, "viewMembers": False, "members": False}
    client.login(username="owner", password="correct horse battery")  # the creator: an admin
    config = client.get(f"/projects/{project.pk}/settings/").context["config"]
    assert "admin" in config["grantableRoles"]


# --- the Django admin -------------------------------------------------------------------------


def _project_form(project: Project, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        field: getattr(project, field)
        for field in (
            "name",
            "description",
            "modality",
            "double_read_fraction",
            "adjudication_box_f1",
            "adjudication_report_rouge",
            "validation_fraction",
            "lease_seconds",
        )
    }
    data.update(
        label_schema=json.dumps(project.label_schema),
        eligibility_rules="{}",
        dicom_calling_ae_titles="[]",
        dicomweb_url="",
        dicom_ae_title="",
        **{"memberships-TOTAL_FORMS": 0, "memberships-INITIAL_FORMS": 0},
    )
    data.update(changes)
    return data


def _loop_form(loop: LoopSettings, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {"project": loop.project_id, "model_config": "{}"}
    data.update({name: getattr(loop, name) for name in EDITABLE if name != "model_config"})
    if not loop.auto_promote:
        data.pop("auto_promote")  # an unticked box is not sent
    data.update(changes)
    return data


@pytest.fixture
def loop(project) -> LoopSettings:
    return update_loop_settings(project=project)


def test_the_admin_picks_strategy_and_metric_from_the_loops_lists(admin_client, loop):
    page = admin_client.get(f"/admin/active_learning/loopsettings/{loop.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<select name="acquisition_strategy"' in html
    assert '<option value="uncertainty-findings"' in html
    assert '<select name="promotion_metric"' in html
    assert '<option value="reports.finding_f1_micro"' in html


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"acquisition_strategy": "smartest"}, "acquisition_strategy", "valid choice"),
        ({"promotion_metric": "accuracy"}, "promotion_metric", "valid choice"),
        (
            {"model_config": json.dumps({"report_metric_floor": 5})},
            "model_config",
            "report_metric_floor",
        ),
        ({"model_config": json.dumps({"wings": 2})}, "model_config", "wings"),
        ({"bootstrap_confidence": 0.2}, "bootstrap_confidence", "(0.5, 1)"),
    ],
)
def test_the_admin_refuses_what_the_api_refuses_at_the_field(
    admin_client, loop, changes, field, message
):
    response = admin_client.post(
        f"/admin/active_learning/loopsettings/{loop.pk}/change/", _loop_form(loop, **changes)
    )
    assert response.status_code == 200  # the form again, with its errors
    errors = response.context["adminform"].form.errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    after = LoopSettings.objects.get(pk=loop.pk)
    assert (after.acquisition_strategy, after.promotion_metric, after.model_config) == (
        loop.acquisition_strategy,
        loop.promotion_metric,
        loop.model_config,
    )


def test_the_admin_project_form_refuses_what_the_api_refuses_at_the_field(admin_client, project):
    for changes, field, message in [
        (
            {"label_schema": json.dumps({"findings": [], "report_sections": []})},
            "label_schema",
            "non-empty",
        ),
        ({"double_read_fraction": 1.5}, "double_read_fraction", "between 0 and 1"),
    ]:
        response = admin_client.post(
            f"/admin/annotations/project/{project.pk}/change/", _project_form(project, **changes)
        )
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors
        assert message in " ".join(errors[field]), errors
    assert Project.objects.get(pk=project.pk).label_schema == project.label_schema


def test_the_admin_saves_valid_settings_normalised_and_audited(admin_client, project, loop):
    schema = {"findings": [{"key": "nodule"}], "report_sections": [{"key": "findings"}]}
    response = admin_client.post(
        f"/admin/annotations/project/{project.pk}/change/",
        _project_form(project, label_schema=json.dumps(schema)),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    response = admin_client.post(
        f"/admin/active_learning/loopsettings/{loop.pk}/change/",
        _loop_form(
            loop,
            acquisition_strategy="uncertainty-findings",
            promotion_metric="findings.auroc_macro",
            model_config=json.dumps({"report_metric_floor": 0.4}),
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    project.refresh_from_db()
    # Normalised as the API does: the name and colour filled in.
    assert project.label_schema["findings"] == [
        {"key": "nodule", "name": "Nodule", "color": "#ffffff", "hotkey": ""}
    ]
    loop.refresh_from_db()
    assert loop.acquisition_strategy == "uncertainty-findings"
    assert loop.promotion_metric == "findings.auroc_macro"
    assert loop.model_config == {"report_metric_floor": 0.4}
    changes = AuditEvent.objects.filter(action="admin.change", project_id=project.pk)
    assert {event.detail["model"] for event in changes} == {
        "annotations.Project",
        "active_learning.LoopSettings",
    }


def test_check_changes_is_what_update_project_applies(project):
    checked = projects.check_changes(
        project=project,
        changes={
            "label_schema": {"findings": [{"key": "mass"}], "report_sections": [{"key": "x"}]}
        },
    )
    assert checked["label_schema"]["findings"][0]["name"] == "Mass"
    assert projects.finding_keys_change(project, checked["label_schema"]) is True
    assert projects.finding_keys_change(project, project.label_schema) is False


@pytest.mark.parametrize(
    "bad",
    [
        {"bootstrap_resamples": 10},  # the guard refuses it
        {"model_config": {"report_metric_floor": 5}},  # the model's checks refuse it
        {"training_epochs": 0},  # out of range
        {"magic": 1},  # unknown
    ],
)
def test_the_loop_is_saved_in_one_request_and_a_bad_value_changes_nothing(project, clients, bad):
    """The settings page saves the loop's settings together: a value refused leaves all of
    them as they were (no half-write)."""
    url = f"/api/projects/{project.pk}/loop-settings/"
    before = clients["owner"].get(url).json()
    edit = {
        "acquisition_strategy": "fifo",
        "auto_retrain_threshold": 7,
        "promotion_metric": before["promotion_metric"],
        "auto_promote": False,
        "model_config": {"train_steps": 40},
        "min_validation_labels": 30,
        "cold_start": "scratch",
    }
    events = AuditEvent.objects.count()
    refused = clients["owner"].patch(url, {**edit, **bad}, format="json")
    assert refused.status_code == 400, refused.content
    assert next(iter(bad)) in refused.json()["message"]
    assert clients["owner"].get(url).json() == before
    stored = loop_settings(project)
    assert (stored.acquisition_strategy, stored.auto_retrain_threshold) != ("fifo", 7)
    assert stored.auto_promote is True and stored.model_config == {}
    assert AuditEvent.objects.count() == events

    saved = clients["owner"].patch(url, edit, format="json")
    assert saved.status_code == 200, saved.content
    body = saved.json()
    assert {name: body[name] for name in edit} == edit
    stored = loop_settings(project)
    assert (stored.acquisition_strategy, stored.auto_retrain_threshold) == ("fifo", 7)
    event = AuditEvent.objects.filter(actor_username="otto", action="loop.settings").latest("pk")
    assert event.detail["values"]["auto_retrain_threshold"] == [50, 7]
    assert event.detail["model_config"] == ["train_steps"]
    # Model owners and admins change them; a lead may not.
    refused = clients["lead"].patch(url, {"acquisition_strategy": "random"}, format="json")
    assert refused.status_code == 403


def test_the_admin_refuses_a_modality_whose_model_kind_cannot_take_the_stored_settings(
    admin_client, project
):
    # The radiograph project holds a built-in model setting; CT would train the 3D detector,
    # which has no such setting: the change is refused at the modality field, and nothing
    # changes.
    update_loop_settings(project=project, model_config={"report_metric_floor": 0.4})
    response = admin_client.post(
        f"/admin/annotations/project/{project.pk}/change/", _project_form(project, modality="CT")
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    message = " ".join(errors["modality"])
    assert "ct_retinanet3d" in message and "report_metric_floor" in message, message
    assert Project.objects.get(pk=project.pk).modality == project.modality
    # Without model settings of its own, the project may change its modality: the loop then
    # trains the kind the new modality picks.
    update_loop_settings(project=project, model_config={})
    response = admin_client.post(
        f"/admin/annotations/project/{project.pk}/change/", _project_form(project, modality="CT")
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Project.objects.get(pk=project.pk).modality == "CT"


def test_the_api_refuses_a_modality_change_by_name_and_accepts_the_same_modality(project, clients):
    url = f"/api/projects/{project.pk}/"
    refused = clients["lead"].patch(url, {"modality": "CT", "lease_seconds": 300}, format="json")
    assert refused.status_code == 400, refused.content
    assert "modality cannot be changed" in refused.json()["message"]
    after = Project.objects.get(pk=project.pk)
    assert (after.modality, after.lease_seconds) == (project.modality, project.lease_seconds)
    same = clients["lead"].patch(
        url, {"modality": project.modality, "lease_seconds": 300}, format="json"
    )
    assert same.status_code == 200, same.content
    assert Project.objects.get(pk=project.pk).lease_seconds == 300
