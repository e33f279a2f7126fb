"""FROC per version (issue 21): a CT version's figures in the versions API (what the Models
page shows of each version) carry FROC, the LUNA16 measure (sensitivity at 1/8 ... 8 false
positives per scan and their mean), and mAP at 3D IoU 0.1, as its evaluation stored them, with
why one is missing; a radiograph version's figures do not."""

from __future__ import annotations

import pytest

from active_learning.ml.ct_detector.model import average_precision_3d
from active_learning.ml.metrics.boxes import LUNA16_FROC_RATES, froc
from active_learning.models import ModelVersion
from annotations.services import projects

pytestmark = pytest.mark.django_db

RATE_KEYS = [f"froc.sensitivity_at_{rate:g}_fp" for rate in LUNA16_FROC_RATES]


def _box(scan: str, z: float, score: float | None = None, x: float = 10.0) -> dict:
    row = {"image_id": scan, "finding": "nodule", "x": x, "y": 10.0, "z": z,
           "width": 6.0, "height": 6.0, "depth": 4.0}  # fmt: skip
    return row if score is None else {**row, "score": score}


def _validation(truth: list[dict], candidates: list[dict], scans: list[str]) -> dict:
    """What the CT detector's evaluation stores, from the same functions it calls."""
    curve = froc(truth, candidates, images=scans, rates=LUNA16_FROC_RATES, iou_threshold=0.1)
    ap = average_precision_3d(truth, candidates, ["nodule"], images=scans)
    return {"kind": "ct_retinanet3d", "volumes": len(scans),
            "froc": {**curve, "iou_threshold": 0.1}, "boxes": ap}  # fmt: skip


def _evidence(client, project) -> dict[int, dict]:
    response = client.get(f"/api/projects/{project.pk}/model-versions/")
    assert response.status_code == 200, response.content
    return {v["number"]: v["evidence"] for v in response.json()}


def test_a_ct_versions_figures_carry_froc_and_map_at_3d_iou_0_1(
    ct_project, project, make_user, api_for
):
    truth = [_box("A", 5.0), _box("B", 8.0)]
    candidates = [
        _box("A", 5.0 + 4.0 - 4.0 / 3.0, 0.9),  # a third of A's slices: 3D IoU 0.2
        _box("A", 12.0, 0.8),  # A's outline on other slices: a false positive
        _box("B", 20.0, 0.7),
        _box("B", 8.0, 0.6, x=10.5),
    ]
    validation = _validation(truth, candidates, ["A", "B"])
    ModelVersion.objects.create(
        project=ct_project,
        number=1,
        model_kind="ct_retinanet3d",
        metrics={"validation_labels": 2, "validation": validation},
    )
    # No lesion among the validation labels: FROC is not defined, and the page says why.
    empty = _validation([], [_box("C", 1.0, 0.5)], ["C"])
    ModelVersion.objects.create(
        project=ct_project,
        number=2,
        model_kind="ct_retinanet3d",
        metrics={"validation_labels": 1, "validation": empty},
    )
    ModelVersion.objects.create(
        project=project,
        number=1,
        metrics={"validation_labels": 2, "validation": {"boxes": {"map_50": 0.4}}},
    )
    owner = make_user("otto")
    for each in (ct_project, project):
        projects.add_member(project=each, user=owner, role="model_owner", added_by=None)
    client = api_for(owner)

    first = _evidence(client, ct_project)[1]
    figures = first["figures"]
    for rate, key in zip(LUNA16_FROC_RATES, RATE_KEYS, strict=True):
        stored = validation["froc"][f"sensitivity_at_{rate:g}_fp"]
        assert figures[key] == {"value": stored, "missing": ""}, key
    # One nodule of two at up to 1/2 false positive per scan, both from 1 per scan.
    assert [figures[key]["value"] for key in RATE_KEYS] == [0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0]
    assert figures["froc.froc_mean"]["value"] == pytest.approx(validation["froc"]["froc_mean"])
    assert figures["boxes.map_10"]["value"] == pytest.approx(validation["boxes"]["map_10"])
    assert figures["boxes.map_10"]["value"] > figures["boxes.map_50"]["value"]
    assert first["froc_iou"] == pytest.approx(0.1)

    second = _evidence(client, ct_project)[2]["figures"]
    assert second["froc.froc_mean"]["value"] is None
    assert "FROC needs at least one" in second["froc.froc_mean"]["missing"]
    assert "1 validation label" in second["froc.froc_mean"]["missing"]

    radiograph = _evidence(client, project)[1]
    assert not any(key.startswith("froc.") for key in radiograph["figures"])
    assert "boxes.map_10" not in radiograph["figures"] and radiograph["froc_iou"] is None
