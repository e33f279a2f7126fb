"""A project's model settings are those of the kind it trains (issue 21): a CT project's
``model_config`` is checked against the 3D CT detector's settings, a radiograph project's
against the built-in model's; a key of the other kind, a wrong type or a value out of range is
a 400 naming the key and the kind, and nothing stored changes. The settings API shows the
effective kind (``model_kind`` "" stays "by modality") and the defaults of that kind, as the
settings page does. A promotion metric the kind cannot compute is a 400 naming it: a CT
project is promoted on FROC mean and mAP at its 3D match IoU, a radiograph project on its box,
finding and report metrics."""

from __future__ import annotations

import pytest

from active_learning.models import LoopSettings
from active_learning.services import loop_settings
from active_learning.services.metric_schema import CT_PROMOTION_METRICS
from annotations.models import AuditEvent
from annotations.services import projects
from annotations.services.errors import InvalidInput

pytestmark = pytest.mark.django_db

CT_KIND, DX_KIND = "ct_retinanet3d", "builtin"


@pytest.fixture
def owner(make_user, project, ct_project):
    """A model owner of both the radiograph (DX) project and the CT project."""
    user = make_user("otto")
    for each in (project, ct_project):
        projects.add_member(project=each, user=user, role="model_owner", added_by=None)
    return user


def _url(project) -> str:
    return f"/api/projects/{project.pk}/loop-settings/"


def _stored(project) -> tuple[dict, str, int]:
    row = LoopSettings.objects.filter(project=project).first()
    events = AuditEvent.objects.filter(action="loop.settings", project_id=project.pk).count()
    return (row.model_config if row else {}), (row.model_kind if row else ""), events


def test_a_ct_project_takes_the_ct_detectors_settings(ct_project, owner, api_for):
    client = api_for(owner)
    body = {"model_config": {"train_steps": 30, "patch_size": [16, 16, 24], "froc_iou": 0.2}}
    saved = client.patch(_url(ct_project), body, format="json")
    assert saved.status_code == 200, saved.content
    assert saved.json()["model_config"] == body["model_config"]
    assert loop_settings.loop_settings(ct_project).model_config == body["model_config"]
    # What the next cycle builds from these settings.
    from active_learning.ml.ct_detector import CTDetector
    from active_learning.ml.kinds import new_model

    model = new_model(CT_KIND, ["nodule"], body["model_config"])
    assert isinstance(model, CTDetector)
    assert model.config.train_steps == 30 and model.config.patch_size == (16, 16, 24)


@pytest.mark.parametrize(
    ("config", "named", "said"),
    [
        ({"report_metric_floor": 0.4}, "report_metric_floor", "not a setting"),  # 2D only
        ({"min_image_size": 64}, "min_image_size", "not a setting"),  # 2D only
        ({"train_steps": 2.5}, "train_steps", "whole number"),
        ({"froc_iou": 0}, "froc_iou", "(0, 1]"),
        ({"box_precision_target": "high"}, "box_precision_target", "a number"),
        ({"patch_size": [30, 32, 32]}, "patch_size", "multiples of 8"),
        ({"patch_size": [32, 32.5, 32]}, "patch_size", "whole number"),
        ({"augment": 1}, "augment", "true or false"),
    ],
)
def test_a_ct_project_refuses_what_the_ct_detector_does_not_take(
    ct_project, owner, api_for, config, named, said
):
    client = api_for(owner)
    first = client.patch(_url(ct_project), {"model_config": {"train_steps": 9}}, format="json")
    assert first.status_code == 200, first.content
    before = _stored(ct_project)
    refused = client.patch(
        _url(ct_project), {"model_config": config, "auto_retrain_threshold": 7}, format="json"
    )
    assert refused.status_code == 400, refused.content
    message = refused.json()["message"]
    assert named in message and CT_KIND in message and said in message, message
    assert _stored(ct_project) == before
    assert loop_settings.loop_settings(ct_project).auto_retrain_threshold != 7


def test_a_radiograph_project_takes_the_built_in_settings_and_refuses_the_ct_ones(
    project, owner, api_for
):
    client = api_for(owner)
    saved = client.patch(
        _url(project), {"model_config": {"report_metric_floor": 0.4}}, format="json"
    )
    assert saved.status_code == 200, saved.content
    before = _stored(project)
    for key, value in (("patch_size", [16, 16, 16]), ("froc_iou", 0.2)):
        refused = client.patch(_url(project), {"model_config": {key: value}}, format="json")
        assert refused.status_code == 400, refused.content
        message = refused.json()["message"]
        assert key in message and DX_KIND in message, message
    assert _stored(project) == before == ({"report_metric_floor": 0.4}, "", 1)


def test_a_new_kind_checks_the_stored_model_settings(ct_project, owner, api_for):
    client = api_for(owner)
    url = _url(ct_project)
    first = client.patch(url, {"model_config": {"patch_size": [16, 16, 16]}}, format="json")
    assert first.status_code == 200, first.content
    before = _stored(ct_project)
    # The built-in model has no patch size: switching kinds with it stored is refused...
    refused = client.patch(url, {"model_kind": DX_KIND}, format="json")
    assert refused.status_code == 400, refused.content
    assert "patch_size" in refused.json()["message"] and DX_KIND in refused.json()["message"]
    assert _stored(ct_project) == before
    # ... and accepted with settings the new kind takes, in the same request.
    body = {"model_kind": DX_KIND, "model_config": {"report_metric_floor": 0.4}}
    switched = client.patch(url, body, format="json")
    assert switched.status_code == 200, switched.content
    assert switched.json()["effective_model_kind"] == DX_KIND
    assert loop_settings.model_kind(ct_project) == DX_KIND


def test_the_settings_api_shows_the_effective_kind_and_its_defaults(
    ct_project, project, owner, api_for
):
    client = api_for(owner)
    ct = client.get(_url(ct_project)).json()
    dx = client.get(_url(project)).json()
    # Stored "": by modality; the effective kind beside it.
    assert (ct["model_kind"], ct["effective_model_kind"]) == ("", CT_KIND)
    assert (dx["model_kind"], dx["effective_model_kind"]) == ("", DX_KIND)
    from active_learning.ml.builtin.config import BuiltinConfig
    from active_learning.ml.ct_detector.config import CTDetectorConfig

    ct_defaults, dx_defaults = CTDetectorConfig(), BuiltinConfig()
    assert ct["model_defaults"]["train_steps"] == ct_defaults.train_steps
    assert ct["model_defaults"]["froc_iou"] == ct_defaults.froc_iou
    assert "report_metric_floor" not in ct["model_defaults"]
    assert dx["model_defaults"]["train_steps"] == dx_defaults.train_steps
    assert dx["model_defaults"]["report_metric_floor"] == dx_defaults.report_metric_floor
    assert "froc_iou" not in dx["model_defaults"]
    # Named, the kind is what the API shows, and the defaults follow it.
    named = client.patch(_url(ct_project), {"model_kind": DX_KIND}, format="json").json()
    assert (named["model_kind"], named["effective_model_kind"]) == (DX_KIND, DX_KIND)
    assert "report_metric_floor" in named["model_defaults"]
    # read-only: a body naming it is refused as an unknown setting, nothing changes
    refused = client.patch(_url(project), {"effective_model_kind": CT_KIND}, format="json")
    assert refused.status_code == 400 and "effective_model_kind" in refused.json()["message"]
    assert loop_settings.model_kind(project) == DX_KIND


def test_the_settings_page_shows_the_defaults_of_the_projects_kind(
    client, ct_project, project, owner
):
    client.login(username="otto", password="correct horse battery")
    config = client.get(f"/projects/{ct_project.pk}/settings/").context["config"]
    assert config["modelKind"] == CT_KIND
    assert config["modelDefaults"] == loop_settings.model_defaults(CT_KIND)
    assert "froc_iou" in config["modelDefaults"]
    assert "report_metric_floor" not in config["modelDefaults"]
    # The operating points match boxes (and the AP floor is measured) at 3D IoU froc_iou.
    assert config["boxMatchIou"] == {"value": 0.1, "is3d": True}
    loop_settings.update_loop_settings(project=ct_project, model_config={"froc_iou": 0.25})
    config = client.get(f"/projects/{ct_project.pk}/settings/").context["config"]
    assert config["boxMatchIou"] == {"value": 0.25, "is3d": True}
    config = client.get(f"/projects/{project.pk}/settings/").context["config"]
    assert (config["modelKind"], config["boxMatchIou"]) == (DX_KIND, {"value": 0.5, "is3d": False})


def test_a_promotion_metric_the_kind_cannot_compute_is_refused_naming_it(
    ct_project, project, owner, api_for, client
):
    api = api_for(owner)
    # The settings page offers each project the metrics of its kind.
    client.login(username="otto", password="correct horse battery")
    ct_page = client.get(f"/projects/{ct_project.pk}/settings/").context["config"]
    assert ct_page["promotionMetrics"] == list(CT_PROMOTION_METRICS)
    dx_page = client.get(f"/projects/{project.pk}/settings/").context["config"]
    assert "findings.auroc_macro" in dx_page["promotionMetrics"]
    assert "froc.froc_mean" not in dx_page["promotionMetrics"]
    # The CT detector has no findings or report head: AUROC and BLEU are refused by name.
    for metric in ("findings.auroc_macro", "reports.bleu_4", "boxes.map_50_95"):
        refused = api.patch(_url(ct_project), {"promotion_metric": metric}, format="json")
        assert refused.status_code == 400, refused.content
        message = refused.json()["message"]
        assert metric in message and CT_KIND in message and "froc.froc_mean" in message, message
    assert loop_settings.loop_settings(ct_project).promotion_metric == "combined"
    # Its lung nodule measures are taken...
    for metric in ("froc.froc_mean", "boxes.map_at_match_iou", "boxes.map_50", "combined"):
        saved = api.patch(_url(ct_project), {"promotion_metric": metric}, format="json")
        assert saved.status_code == 200, saved.content
    # ... and refused for a radiograph project, which has no FROC per scan.
    for metric in ("froc.froc_mean", "boxes.map_at_match_iou"):
        refused = api.patch(_url(project), {"promotion_metric": metric}, format="json")
        assert refused.status_code == 400, refused.content
        assert metric in refused.json()["message"] and DX_KIND in refused.json()["message"]
    # A new kind checks the stored promotion metric too.
    api.patch(_url(ct_project), {"promotion_metric": "froc.froc_mean"}, format="json")
    before = _stored(ct_project)
    refused = api.patch(_url(ct_project), {"model_kind": DX_KIND}, format="json")
    assert refused.status_code == 400, refused.content
    assert "froc.froc_mean" in refused.json()["message"], refused.content
    assert _stored(ct_project) == before
    body = {"model_kind": DX_KIND, "promotion_metric": "findings.auroc_macro"}
    assert api.patch(_url(ct_project), body, format="json").status_code == 200
    # So does a modality change: CT cannot promote a radiograph project on AUROC.
    api.patch(_url(project), {"promotion_metric": "findings.auroc_macro"}, format="json")
    with pytest.raises(InvalidInput, match=r"findings\.auroc_macro.*ct_retinanet3d"):
        projects.check_modality_change(project, "CT")
