"""FROC per version on the Models page (issue 21): a CT version's row shows its FROC as its
evaluation stored it (sensitivity at LUNA16's 1/8 ... 8 false positives per scan, the mean,
mAP at 3D IoU 0.1, the 3D IoU a hit needs), a version without a lesion among its validation
labels says why FROC is missing, and a radiograph version's row has no FROC line."""

from __future__ import annotations

import pytest

from active_learning.ml.ct_detector.model import average_precision_3d
from active_learning.ml.metrics.boxes import LUNA16_FROC_RATES, froc
from active_learning.models import ModelVersion
from annotations.services import projects
from tests.support.browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _box(scan: str, z: float, score: float | None = None) -> dict:
    row = {"image_id": scan, "finding": "nodule", "x": 10.0, "y": 10.0, "z": z,
           "width": 6.0, "height": 6.0, "depth": 4.0}  # fmt: skip
    return row if score is None else {**row, "score": score}


def test_a_ct_versions_row_shows_its_froc(page, live_server, make_user, project, frontend_built):
    radiographs = project
    creator = make_user("ct-owner", is_staff=True)
    ct = projects.create_project(
        name="Chest CT", created_by=creator, modality="CT", validation_fraction=0.0
    )
    mona = make_user("mona")
    for each in (ct, radiographs):
        projects.add_member(project=each, user=mona, role="model_owner", added_by=None)
    # Two scans, one nodule each: A's found at 3D IoU 0.2 (.9), a false positive (.8), B's (.6).
    truth = [_box("A", 5.0), _box("B", 8.0)]
    candidates = [_box("A", 5.0 + 4.0 - 4.0 / 3.0, 0.9), _box("B", 20.0, 0.8), _box("B", 8.0, 0.6)]
    curve = froc(truth, candidates, images=["A", "B"], rates=LUNA16_FROC_RATES, iou_threshold=0.1)
    ap = average_precision_3d(truth, candidates, ["nodule"], images=["A", "B"])
    validation = {"froc": {**curve, "iou_threshold": 0.1}, "boxes": ap}
    ModelVersion.objects.create(
        project=ct, number=1, model_kind="ct_retinanet3d",
        metrics={"validation_labels": 2, "validation": validation},
    )  # fmt: skip
    empty = {"froc": {"froc_mean": None, "iou_threshold": 0.1}, "boxes": {"map_10": None}}
    ModelVersion.objects.create(
        project=ct, number=2, model_kind="ct_retinanet3d",
        metrics={"validation_labels": 1, "validation": empty},
    )  # fmt: skip

    ModelVersion.objects.create(
        project=radiographs, number=1, metrics={"validation_labels": 2, "validation": validation}
    )

    log_in(page, live_server, "mona")
    page.goto(f"{live_server.url}/projects/{ct.pk}/models/")
    page.wait_for_selector("#models-page[data-state=ready]")
    page.wait_for_selector("#versions tr[data-froc='1']")
    line = page.inner_text("#versions tr[data-froc='1'] [data-testid=froc]")
    assert "FROC (3D IoU ≥ 0.1)" in line, line
    assert f"mean sensitivity {curve['froc_mean']:.3f}" in line, line
    for rate, name in zip(
        LUNA16_FROC_RATES, ["1/8", "1/4", "1/2", "1", "2", "4", "8"], strict=True
    ):
        assert f"{curve[f'sensitivity_at_{rate:g}_fp']:.3f} at {name}" in line, (name, line)
    assert f"mAP@0.1 {ap['map_10']:.3f}" in line, line
    missing = page.inner_text("#versions tr[data-froc='2'] [data-testid=froc]")
    assert "FROC needs at least one" in missing, missing

    # A radiograph version (the built-in model): no FROC line, whatever its metrics hold.
    page.goto(f"{live_server.url}/projects/{radiographs.pk}/models/")
    page.wait_for_selector("#models-page[data-state=ready]")
    page.wait_for_selector("#versions tr[data-version='1']")
    assert page.locator("#versions tr[data-froc]").count() == 0
