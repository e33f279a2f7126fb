"""A CT project's promotion guard (issue 21) compares versions on the lung nodule measures, FROC
mean (LUNA16: sensitivity at 1/8 ... 8 false positives per scan) and mAP, both with boxes
matched by 3D IoU at the project's ``froc_iou`` (0.1 by default), not on the radiographs' mAP
at IoU 0.5: ``combined`` is their mean for a CT version, and the paired bootstrap recomputes
them per resample from every candidate, as the version's evaluation stores them."""

from __future__ import annotations

import numpy as np
import pytest
from django.test import override_settings

from active_learning.ml.interface import CasePrediction, LabelledCase, PredictedBox
from active_learning.ml.volumes import Box3D, PredictedBox3D
from active_learning.models import ModelVersion, RetrainingCycle
from active_learning.services import cycles, loop_settings, promotion, versions
from annotations.services import projects
from tests.support.ct_labels import labelled_ct_project
from tests.support.training import run_whole_cycle

pytestmark = pytest.mark.django_db


def _scan(case_id: str, candidates: list[PredictedBox]) -> CasePrediction:
    return CasePrediction(
        case_id=case_id,
        boxes=[],
        findings={},
        finding_uncertainty={},
        report={},
        report_sentences=[],
        report_uncertainty={},
        case_score=0.0,
        candidates=candidates,
    )


def _shifted(box: Box3D, *, dx: float = 0.0, dz: float = 0.0) -> PredictedBox3D:
    return PredictedBox3D(
        "nodule", box.x + dx, box.y, box.width, box.height, 0.8, z=box.z + dz, depth=box.depth
    )


def _decision(ct_project) -> tuple[promotion.Evidence, promotion.Decision]:
    """The guard on 20 validation scans, one 10-voxel nodule each, under the project's
    settings now. The candidate finds every nodule 4 voxels off in x (3D IoU 3/7: a hit at
    0.1, a miss at 0.5); the serving version finds 5 exactly and puts its other 15 boxes over
    the nodule in x and y but 20 slices away (3D IoU 0)."""
    nodule = Box3D("nodule", 10, 10, 10, 10, z=10, depth=10)
    labels = [
        LabelledCase(case_id=str(i), image=np.zeros((1, 1)), boxes=[nodule]) for i in range(20)
    ]
    ours = [_scan(str(i), [_shifted(nodule, dx=4)]) for i in range(20)]
    theirs = [_scan(str(i), [_shifted(nodule, dz=0 if i < 5 else 20)]) for i in range(20)]
    loop = loop_settings.loop_settings(ct_project)
    evidence = promotion.compare_predictions(
        labels=labels,
        candidate=ours,
        serving=theirs,
        classes=["nodule"],
        serving_classes=["nodule"],
        kind=loop_settings.model_kind(ct_project),
        metric=loop.promotion_metric,
        loop=loop,
    )
    bootstrap = evidence.bootstrap or {}
    decision = promotion.decide(
        evidence=evidence,
        candidate_value=bootstrap.get("candidate"),
        serving_value=bootstrap.get("serving"),
        has_serving=True,
        loop=loop,
    )
    return evidence, decision


def test_a_ct_projects_guard_decides_on_froc_and_map_at_its_3d_match_iou(ct_project):
    # The defaults: combined, boxes matched at 3D IoU 0.1. FROC mean 1 vs 0.25 and mAP 1 vs
    # 0.25 (the serving version's 5 hits ranked first among equal scores): +0.75.
    evidence, decision = _decision(ct_project)
    assert decision.promote, decision.reason
    assert decision.reason.startswith(
        "gain beyond noise: combined (the mean of FROC mean (LUNA16) and mAP, both at 3D IoU "
        ">= 0.1) 1.0000 vs 0.2500"
    ), decision.reason
    b = evidence.bootstrap
    assert b is not None and b["match_iou"] == 0.1 and b["difference"] == pytest.approx(0.75)
    assert set(b["parts"]) == {"froc.froc_mean", "boxes.map_at_match_iou"}
    # On the radiographs' mAP at IoU 0.5 the same boxes make the serving version the better
    # one (0.25 vs 0): a project that chose it keeps its version.
    loop_settings.update_loop_settings(project=ct_project, promotion_metric="boxes.map_50")
    evidence, decision = _decision(ct_project)
    assert not decision.promote and "no gain beyond noise" in decision.reason
    assert "mAP at 3D IoU >= 0.5" in decision.reason, decision.reason
    assert evidence.bootstrap is not None and evidence.bootstrap["difference"] == -0.25
    # Matched at a 3D IoU of 0.5 (the project's froc_iou), the candidate's boxes miss too.
    loop_settings.update_loop_settings(
        project=ct_project, promotion_metric="combined", model_config={"froc_iou": 0.5}
    )
    evidence, decision = _decision(ct_project)
    assert not decision.promote and "3D IoU >= 0.5" in decision.reason, decision.reason
    assert evidence.bootstrap is not None and evidence.bootstrap["match_iou"] == 0.5


def test_a_ct_cycles_promotion_rests_on_the_lung_nodule_measures_it_stores(
    ct_project, make_user, api_for, tmp_path
):
    labelled_ct_project(ct_project, make_user, api_for, tmp_path)
    with override_settings(MODELS_DIR=tmp_path / "models"):
        versions.clear_cache()
        first = run_whole_cycle(cycles.trigger_cycle(project=ct_project))
        assert first.status == RetrainingCycle.Status.SUCCEEDED, first.error
        loop_settings.update_loop_settings(project=ct_project, model_config={"train_steps": 8})
        second = run_whole_cycle(cycles.trigger_cycle(project=ct_project))
        versions.clear_cache()
    assert second.status == RetrainingCycle.Status.SUCCEEDED, second.error
    v1, v2 = first.model_version, second.model_version
    assert v1 is not None and v2 is not None and v2.model_kind == "ct_retinanet3d"
    check = v2.promotion_check
    assert check["metric"] == "combined" and check["match_iou"] == pytest.approx(0.1)
    assert "FROC mean (LUNA16) and mAP, both at 3D IoU >= 0.1" in check["measure"]
    b = check["bootstrap"]
    assert b is not None and b["match_iou"] == pytest.approx(0.1) and b["cases"] == 2
    # The paired bootstrap recomputes what each version's evaluation stores: FROC mean and mAP
    # at 3D IoU 0.1 of the candidate, and of version 1 on the same validation scans.
    for version, side in ((v2, "candidate"), (v1, "serving")):
        stored = version.metrics["validation"]
        assert b["parts"]["froc.froc_mean"][side] == pytest.approx(stored["froc"]["froc_mean"])
        assert b["parts"]["boxes.map_at_match_iou"][side] == pytest.approx(
            stored["boxes"]["map_at_match_iou"]
        )
        assert stored["boxes"]["match_iou"] == pytest.approx(0.1)
    assert second.outcome["candidate"] == pytest.approx(b["candidate"])
    assert second.outcome["serving"] == pytest.approx(b["serving"])
    # The decision is the bootstrap's on those measures, and the version follows it.
    beyond = b["low"] is not None and b["low"] > 0
    assert check["passed"] is beyond and b["beyond_noise"] is beyond
    v2.refresh_from_db()
    expected = ModelVersion.Status.PROMOTED if beyond else ModelVersion.Status.CANDIDATE
    assert v2.status == expected
    # The Models page data shows the guard's numbers on the CT measure.
    owner = make_user("otto")
    projects.add_member(project=ct_project, user=owner, role="model_owner", added_by=None)
    listed = api_for(owner).get(f"/api/projects/{ct_project.pk}/model-versions/")
    assert listed.status_code == 200, listed.content
    evidence = {v["number"]: v["evidence"] for v in listed.json()}[v2.number]
    decision = evidence["decision"]
    assert decision["bootstrap"]["parts"] == b["parts"]
    assert decision["measure"] == check["measure"]
    assert "FROC mean (LUNA16)" in decision["reason"], decision["reason"]
    combined = evidence["figures"]["combined"]["value"]
    stored = v2.metrics["validation"]
    parts = [stored["froc"]["froc_mean"], stored["boxes"]["map_at_match_iou"]]
    defined = [p for p in parts if p is not None]
    assert combined == (pytest.approx(sum(defined) / len(defined)) if defined else None)
