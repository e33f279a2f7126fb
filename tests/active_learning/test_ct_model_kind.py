"""The project's modality picks the model kind (issue 21, part 4): a CT project's cycle trains
the 3D CT detector (``LoopSettings.model_kind`` empty: by modality), on its annotators' 3D
boxes read from the ingested series, and the version's metrics carry FROC at LUNA16's rates;
a project may name the kind itself, and an unknown kind is a 400 naming the known ones."""

from __future__ import annotations

import pytest
from django.test import override_settings

from active_learning.ml.metrics.boxes import LUNA16_FROC_RATES
from active_learning.models import RetrainingCycle, Suggestion
from active_learning.services import cycles, loop_settings, versions
from annotations.services import projects
from tests.support.ct_labels import labelled_ct_project
from tests.support.training import run_whole_cycle

pytestmark = pytest.mark.django_db


def test_the_modality_picks_the_kind_and_a_project_may_name_it(
    ct_project, project, make_user, api_for
):
    assert loop_settings.model_kind(ct_project) == "ct_retinanet3d"
    assert loop_settings.model_kind(project) == "builtin"  # a radiograph project (DX)
    owner = make_user("otto")
    projects.add_member(project=ct_project, user=owner, role="model_owner", added_by=None)
    client = api_for(owner)
    url = f"/api/projects/{ct_project.pk}/loop-settings/"
    bad = client.patch(url, {"model_kind": "crystal-ball"}, format="json")
    assert bad.status_code == 400
    assert "crystal-ball" in bad.json()["message"] and "ct_retinanet3d" in bad.json()["message"]
    assert loop_settings.model_kind(ct_project) == "ct_retinanet3d"
    good = client.patch(url, {"model_kind": "builtin"}, format="json")
    assert good.status_code == 200 and good.json()["model_kind"] == "builtin"
    assert loop_settings.model_kind(ct_project) == "builtin"


def test_a_ct_cycle_trains_the_3d_detector_and_reports_froc(
    ct_project, make_user, api_for, tmp_path
):
    labelled_ct_project(ct_project, make_user, api_for, tmp_path)

    with override_settings(MODELS_DIR=tmp_path / "models"):
        versions.clear_cache()
        cycle = run_whole_cycle(cycles.trigger_cycle(project=ct_project))
        versions.clear_cache()

    assert cycle.status == RetrainingCycle.Status.SUCCEEDED, cycle.error
    version = cycle.model_version
    assert version is not None
    assert version.model_kind == "ct_retinanet3d"
    assert len(cycle.label_snapshot) == 2 and version.metrics["validation_labels"] == 2
    curve = version.metrics["validation"]["froc"]
    assert set(curve) >= {f"sensitivity_at_{rate:g}_fp" for rate in LUNA16_FROC_RATES}
    assert curve["n_ground_truth"] == 2 and curve["n_images"] == 2
    points = version.metrics["validation"]["operating_points"]["boxes"]["nodule"]
    assert points["reliable"] is False and points["validation_positives"] == 2
    assert points["match_iou"] == pytest.approx(0.1)  # matched by 3D IoU, as FROC
    # The versions API (the Models page) shows the version's FROC as its evaluation stored it.
    owner = make_user("otto")
    projects.add_member(project=ct_project, user=owner, role="model_owner", added_by=None)
    listed = api_for(owner).get(f"/api/projects/{ct_project.pk}/model-versions/")
    assert listed.status_code == 200, listed.content
    evidence = {v["number"]: v["evidence"] for v in listed.json()}[version.number]
    for rate in LUNA16_FROC_RATES:
        shown = evidence["figures"][f"froc.sensitivity_at_{rate:g}_fp"]["value"]
        assert shown == curve[f"sensitivity_at_{rate:g}_fp"]
    assert evidence["figures"]["froc.froc_mean"]["value"] == curve["froc_mean"]
    assert evidence["froc_iou"] == pytest.approx(0.1)
    # Promoted (the guard asks for no validation labels here), it scores the two open cases.
    assert Suggestion.objects.filter(model_version=version).count() == 2
