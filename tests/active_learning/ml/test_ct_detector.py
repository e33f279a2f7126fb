"""The 3D CT detector (issue 21, part 4): MONAI's RetinaNet in 3D trained for a few steps on
tiny synthetic chest CT volumes finds a large nodule and its loss falls; operating thresholds
hide a class with thin validation evidence; FROC at LUNA16's rates on hand-made 3D boxes; a
saved version loads and predicts the same; the model contract's registry knows the kind."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from active_learning.ml import paired_bootstrap as pb
from active_learning.ml import synthetic_ct
from active_learning.ml.checkpoints import load_model
from active_learning.ml.ct_detector import KIND, CTDetector
from active_learning.ml.interface import (
    MODEL_KINDS,
    ModelInputError,
    TrainReport,
    UncertaintyOptions,
)
from active_learning.ml.metrics.boxes import LUNA16_FROC_RATES, froc
from active_learning.ml.volumes import LabelledVolume, VolumeInput
from medloop.metrics.boxes import iou_matrix_xyzwhd
from tests.support.ct_volumes import SLICES, TINY_CT, whole_nodule_series

TINY = dataclasses.replace(TINY_CT, min_validation_positives=3)


def _volumes(count: int, start: int) -> list[LabelledVolume]:
    """``count`` tiny volumes whose large nodule lies wholly inside the volume."""
    return [
        synthetic_ct.labelled_volume(s, case_id=f"ct{s.seed}")
        for s in whole_nodule_series(count, start)
    ]


@pytest.fixture(scope="module")
def trained() -> tuple[CTDetector, list[LabelledVolume], TrainReport]:
    volumes = _volumes(4, start=0)
    model = CTDetector(dataclasses.replace(TINY))
    report = model.train(lambda: iter(volumes))
    return model, volumes, report


def _best_iou(prediction, truth) -> float:
    boxes = [[b.x, b.y, b.z, b.width, b.height, b.depth] for b in prediction.candidates]
    if not boxes:
        return 0.0
    target = [[truth.x, truth.y, truth.z, truth.width, truth.height, truth.depth]]
    return float(iou_matrix_xyzwhd(boxes, target).max())


def test_the_detector_finds_a_large_nodule_after_a_short_training(trained):
    model, volumes, report = trained
    assert report.steps == TINY.train_steps and len(report.losses) == TINY.train_steps
    first, last = np.mean(report.losses[:5]), np.mean(report.losses[-5:])
    assert last < first, report.losses
    # Scoring as the Celery task does (sliding windows and the flipped pass) on one volume.
    predictions = model.predict(volumes[:1], uncertainty=UncertaintyOptions(box_stability=True))
    predictions += model.predict(volumes[1:], uncertainty=UncertaintyOptions(box_stability=False))
    for volume, prediction in zip(volumes, predictions, strict=True):
        (truth,) = volume.boxes
        assert _best_iou(prediction, truth) >= 0.3, (volume.case_id, prediction.candidates[:3])
        best = prediction.candidates[0]
        assert best.finding == "nodule" and 0.0 <= best.localization_instability <= 1.0
        assert 0.0 <= prediction.case_score <= 1.0
    # Boxes come back in the stack's voxels with a slice range inside the volume.
    top = predictions[0].candidates[0]
    assert top.z >= 0 and top.z + top.depth <= SLICES + 1e-6


def test_thin_validation_evidence_hides_the_class(trained):
    model, volumes, _ = trained
    # Before operating points are fitted, every candidate at or above the fallback display
    # threshold is shown (set to 0 here: the short training leaves modest scores).
    model.config.suggestion_score_threshold = 0.0
    options = UncertaintyOptions(box_stability=False)
    before = model.predict(volumes[:1], uncertainty=options)[0]
    assert before.boxes and before.boxes == before.candidates
    # Two validation nodules where the class needs three: nothing is shown, and it says why.
    points = model.fit_operating_points(_volumes(2, start=20))
    nodule = points["boxes"]["nodule"]
    assert nodule["reliable"] is False
    assert nodule["reason"] == "still learning: 2 of 3 validation examples labelled"
    assert points["findings"]["nodule"]["reliable"] is False
    after = model.predict(volumes[:1], uncertainty=options)[0]
    assert after.boxes == [] and after.candidates  # still scored, for metrics and the queue
    # The likely-miss term: the best candidate of a class nothing is shown for counts.
    assert after.case_score >= 0.6 * after.candidates[0].score - 1e-9


def test_a_saved_version_loads_and_predicts_the_same(trained, tmp_path):
    model, volumes, _ = trained
    model.save(tmp_path / "v1")
    loaded = load_model(tmp_path / "v1")
    assert isinstance(loaded, CTDetector) and MODEL_KINDS[KIND] is CTDetector
    options = UncertaintyOptions(box_stability=False)
    ours = model.predict(volumes[:1], uncertainty=options)[0]
    theirs = loaded.predict(volumes[:1], uncertainty=options)[0]
    assert [round(b.score, 5) for b in ours.candidates] == [
        round(b.score, 5) for b in theirs.candidates
    ]
    assert loaded.operating_points() == model.operating_points()


def test_an_image_that_is_not_a_volume_is_refused_by_name(trained):
    model, _, _ = trained
    flat = VolumeInput(case_id="xr1", image=np.zeros((64, 64)), voxel_spacing_mm=(1, 1, 1))
    with pytest.raises(ModelInputError, match="case xr1: the CT detector reads a volume"):
        model.predict([flat])


def test_froc_at_luna16_rates_on_hand_made_3d_boxes():
    """Two scans, one nodule each. Candidates by score: .9 hit on A; .8 on A with A's outline
    but on other slices (3D IoU 0: a false positive, though its 2D outline matches); .7 false
    on B; .6 hit on B; .5 false on B. False positives per scan after each: 0, .5, 1, 1, 1.5;
    nodules found: 1, 1, 1, 2, 2. So sensitivity is 1/2 up to 1/2 FP per scan, 1 from 1 FP."""

    def box(scan, z, score=None, x=10.0):
        row = {"image_id": scan, "finding": "nodule", "x": x, "y": 10.0, "z": z,
               "width": 6.0, "height": 6.0, "depth": 4.0}  # fmt: skip
        return row if score is None else {**row, "score": score}

    truth = [box("A", 5.0), box("B", 8.0)]
    candidates = [
        box("A", 5.5, 0.9),
        box("A", 12.0, 0.8),
        box("B", 20.0, 0.7),
        box("B", 8.0, 0.6, x=10.5),
        box("B", 0.0, 0.5, x=30.0),
    ]
    result = froc(truth, candidates, images=["A", "B"], rates=LUNA16_FROC_RATES,
                  iou_threshold=0.1)  # fmt: skip
    expected = {0.125: 0.5, 0.25: 0.5, 0.5: 0.5, 1.0: 1.0, 2.0: 1.0, 4.0: 1.0, 8.0: 1.0}
    for rate, sensitivity in expected.items():
        assert result[f"sensitivity_at_{rate:g}_fp"] == sensitivity
    assert result["froc_mean"] == pytest.approx((3 * 0.5 + 4 * 1.0) / 7)
    # False positives are per scan: the second nodule costs 2 of them, 1 per scan over A and
    # B, 2/3 per scan once a third scan with nothing on it is evaluated too.
    two = froc(truth, candidates, images=["A", "B"], rates=(0.75,), iou_threshold=0.1)
    three = froc(truth, candidates, images=["A", "B", "C"], rates=(0.75,), iou_threshold=0.1)
    assert (two["sensitivity_at_0.75_fp"], three["sensitivity_at_0.75_fp"]) == (0.5, 1.0)
    with pytest.raises(ValueError, match="mix 2D and 3D"):
        flat = {k: v for k, v in box("A", 5.0, 0.9).items() if k not in ("z", "depth")}
        froc(truth, [flat], images=["A"])


def test_the_stored_lung_nodule_measures_are_those_the_promotion_guard_recomputes(trained):
    # The CT detector stores FROC mean (LUNA16) and mAP at 3D IoU froc_iou; the promotion
    # guard's paired bootstrap recomputes both from the same predictions on the same volumes,
    # and on all of them (weights one) must find the stored figures.
    model, volumes, _ = trained
    stored = model.evaluate(volumes)
    assert stored["boxes"]["match_iou"] == TINY.froc_iou == 0.1
    froc_mean, map_at_match = stored["froc"]["froc_mean"], stored["boxes"]["map_at_match_iou"]
    assert froc_mean > 0 and map_at_match > 0  # the short training finds the nodules
    predictions = model.predict(volumes, uncertainty=UncertaintyOptions(box_stability=False))
    outcomes = pb.case_outcomes(predictions, volumes, model.finding_classes, match_iou=0.1)
    ones = np.ones(len(volumes))
    assert pb.froc_mean(outcomes, ones) == pytest.approx(froc_mean)
    assert pb.box_map_at_match_iou(outcomes, ones) == pytest.approx(map_at_match)
    # MONAI's 101-point mAP@0.1 is the same measure, interpolated otherwise.
    assert map_at_match == pytest.approx(stored["boxes"]["map_10"], abs=0.05)
