"""The project's modality picks the model kind (issue 21, part 4): a CT project's cycle trains
the 3D CT detector (``LoopSettings.model_kind`` empty: by modality), on its annotators' 3D
boxes read from the ingested series, and the version's metrics carry FROC at LUNA16's rates;
a project may name the kind itself, and an unknown kind is a 400 naming the known ones."""

from __future__ import annotations

import pytest
from django.test import override_settings

from active_learning.ml import synthetic_ct
from active_learning.ml.metrics.boxes import LUNA16_FROC_RATES
from active_learning.models import RetrainingCycle, Suggestion
from active_learning.services import cycles, loop_settings, versions
from annotations.models import Case, Series
from annotations.series_stacks import stack_of
from annotations.services import ingest, projects
from tests.support.ct_volumes import whole_nodule_series
from tests.support.training import run_whole_cycle

pytestmark = pytest.mark.django_db


@pytest.fixture
def ct_project(make_user):
    owner = make_user("ct-owner", is_staff=True)
    return projects.create_project(
        name="Chest CT", created_by=owner, modality="CT", validation_fraction=0.0
    )


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


def _label(client, case, series, nodule_box) -> None:
    """An annotator's 3D box over the nodule's slices, drawn on its middle slice, submitted."""
    order = stack_of(series).instance_ids
    first = max(1, round(nodule_box.z) + 1)
    last = min(len(order), max(first, round(nodule_box.z + nodule_box.depth)))
    box = {
        "instance_id": order[(first + last) // 2 - 1],
        "x": round(nodule_box.x, 2),
        "y": round(nodule_box.y, 2),
        "width": round(nodule_box.width, 2),
        "height": round(nodule_box.height, 2),
        "finding": "nodule",
        "slices": [first, last],
    }
    url = f"/api/cases/{case.pk}/annotation/"
    opened = client.get(url)
    saved = client.put(url, {"boxes": [box]}, format="json", HTTP_IF_MATCH=opened["ETag"])
    assert saved.status_code == 200, saved.content
    submitted = client.post(f"{url}submit/", {}, format="json", HTTP_IF_MATCH=saved["ETag"])
    assert submitted.status_code == 200, submitted.content


def test_a_ct_cycle_trains_the_3d_detector_and_reports_froc(
    ct_project, make_user, api_for, tmp_path
):
    annotator = make_user("alice")
    projects.add_member(project=ct_project, user=annotator, role="annotator", added_by=None)
    client = api_for(annotator)
    chosen = whole_nodule_series(6, start=0)
    for n, series in enumerate(chosen):
        for path in synthetic_ct.write_series(
            synthetic_ct.slice_datasets(series), tmp_path / str(n)
        ):
            ingest.ingest_dicom_path(project=ct_project, path=path)
    cases = list(Case.objects.filter(project=ct_project).order_by("pk"))  # in ingest order
    labelled = []
    for _ in range(4):
        leased = client.post(f"/api/projects/{ct_project.pk}/next-case/")
        assert leased.status_code == 200, leased.content
        case = Case.objects.get(pk=leased.json()["id"])
        series = chosen[cases.index(case)]
        ct_series = Series.objects.get(study__case=case, modality="CT")
        (nodule,) = synthetic_ct.nodule_boxes(series)
        _label(client, case, ct_series, nodule)
        labelled.append(case.pk)
    # Two of the labelled cases are the project's validation cases (the keyed draw at ingest
    # holds none out at validation_fraction 0).
    Case.objects.filter(pk__in=labelled[2:]).update(is_validation=True)
    loop_settings.update_loop_settings(
        project=ct_project, model_config={"train_steps": 4}, min_validation_labels=0
    )

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
