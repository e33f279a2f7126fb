"""The detector recipe's parts with known answers: focal loss over all anchors normalised by the
positives, the warm-up + cosine schedule, augmentation that keeps boxes and laterality words
consistent with the image, anchors fitted to the box priors, test-time views proportional to the
input size, and predictions that show only the candidates passing their operating point."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from active_learning.ml.builtin import BuiltinConfig, BuiltinModel
from active_learning.ml.builtin import operating_points as op
from active_learning.ml.builtin.anchors import fit_anchor_shapes
from active_learning.ml.builtin.augment import (
    flip_case,
    jitter_batch,
    swap_laterality,
    transform_boxes,
)
from active_learning.ml.builtin.inference import shown_mask, view_sizes
from active_learning.ml.builtin.model import warmup_cosine
from active_learning.ml.builtin.network import FastBoxSelector, FocalLossPerPositive, GIoULoss
from active_learning.ml.checkpoints import load_model
from active_learning.ml.datasets import synthetic_source
from active_learning.ml.interface import (
    Box,
    CasePrediction,
    LabelledCase,
    PredictedBox,
    UncertaintyOptions,
)


def test_focal_loss_is_summed_over_all_anchors_and_divided_by_the_positives():
    loss = FocalLossPerPositive(alpha=0.25, gamma=2.0)
    logits = torch.zeros(2, 1)  # p = 0.5 everywhere
    targets = torch.tensor([[1.0], [0.0]])
    ln2 = math.log(2)
    # Positive: alpha (1 - p)^2 ln 2; negative: (1 - alpha) p^2 ln 2; one positive anchor.
    expected = 0.25 * 0.25 * ln2 + 0.75 * 0.25 * ln2
    assert float(loss(logits, targets)) == pytest.approx(expected, rel=1e-5)
    # Two positive anchors halve it per positive: the sum doubles for the positive term only.
    two = loss(torch.zeros(3, 1), torch.tensor([[1.0], [1.0], [0.0]]))
    assert float(two) == pytest.approx((2 * 0.25 * 0.25 * ln2 + 0.75 * 0.25 * ln2) / 2, rel=1e-5)
    # Thousands of easy negatives (p ~ 0.0025) add almost nothing: no sampling needed.
    easy = torch.cat([torch.zeros(1, 1), torch.full((5000, 1), -6.0)])
    many = torch.cat([torch.ones(1, 1), torch.zeros(5000, 1)])
    assert float(loss(easy, many)) < 0.25 * 0.25 * ln2 + 0.01
    # No positive at all: divided by 1, not by 0.
    assert math.isfinite(float(loss(torch.zeros(4, 2), torch.zeros(4, 2))))


def test_giou_loss_is_zero_for_identical_boxes_and_grows_apart():
    giou = GIoULoss()
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    assert float(giou(box, box)) == pytest.approx(0.0, abs=1e-6)
    assert float(giou(box + 20, box)) > 1.0  # disjoint: 1 - IoU + the enclosing-area term
    assert float(giou(torch.zeros(0, 4), torch.zeros(0, 4))) == 0.0


def test_learning_rate_warms_up_then_decays_by_cosine():
    factor = [warmup_cosine(s, total=100, warmup=10, final_fraction=0.0) for s in range(101)]
    assert factor[0] == pytest.approx(1 / 11) and factor[9] == pytest.approx(10 / 11)
    assert factor[10] == pytest.approx(1.0)
    assert factor[55] == pytest.approx(0.5)
    assert factor[100] == pytest.approx(0.0)
    assert all(a >= b for a, b in itertools.pairwise(factor[10:]))


def _case(image: np.ndarray, boxes: tuple[Box, ...]) -> LabelledCase:
    return LabelledCase(
        case_id="flip",
        image=image,
        indication="Right chest pain.",
        history="Left lobectomy; RIGHT-sided port; bright light",
        boxes=boxes,
        findings={"effusion": True},
        report={"findings": "Small right pleural effusion.", "impression": "Right effusion."},
    )


def test_flip_mirrors_the_image_and_boxes_and_swaps_laterality_words():
    image = np.zeros((40, 60), dtype=np.uint16)
    image[5:15, 2:12] = 1000  # the lesion sits at x 2..12 (the image's left = patient's right)
    case = _case(image, (Box("effusion", 2, 5, 10, 10),))
    flipped = flip_case(case)
    assert flipped.boxes == (Box("effusion", 48, 5, 10, 10),)
    ys, xs = np.nonzero(flipped.image)
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (48, 58, 5, 15)
    assert flipped.indication == "Left chest pain."
    assert flipped.history == "Right lobectomy; LEFT-sided port; bright light"
    assert flipped.report == {
        "findings": "Small left pleural effusion.",
        "impression": "Left effusion.",
    }
    assert flip_case(flipped).report == case.report  # flipping twice gives the case back
    assert swap_laterality("bright, outright, leftover") == "bright, outright, leftover"


def test_scale_and_shift_move_boxes_with_the_image():
    boxes = torch.tensor([[40.0, 40.0, 60.0, 60.0], [0.0, 0.0, 6.0, 6.0]])
    moved, keep = transform_boxes(boxes, 1.1, 5.0, -3.0, 100)
    # About the centre 50: x 40 -> 50 + 1.1 * -10 + 5 = 44, 60 -> 66; y 40 -> 36, 60 -> 58.
    assert moved[0].tolist() == pytest.approx([44.0, 36.0, 66.0, 58.0])
    # The corner box is pushed mostly out of the image (y < 0): dropped.
    assert keep.tolist() == [True, False]
    # The image is warped the same way: the bright square lands where its box went.
    image = torch.zeros(1, 1, 128, 128)
    image[..., 40:60, 50:80] = 1.0
    target = [{"boxes": torch.tensor([[50.0, 40.0, 80.0, 60.0]]), "labels": torch.tensor([2])}]
    rng = np.random.default_rng(3)
    images, targets = jitter_batch(
        image, target, rng, scale_jitter=0.1, shift_fraction=0.06, contrast_jitter=0.0,
        brightness_jitter=0.0, gamma_range=(1.0, 1.0),
    )  # fmt: skip
    ys, xs = torch.nonzero(images[0, 0] > 0.5, as_tuple=True)
    found = [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]
    assert targets[0]["boxes"][0].tolist() == pytest.approx(found, abs=1.5)
    assert targets[0]["labels"].tolist() == [2]
    assert not torch.equal(targets[0]["boxes"], target[0]["boxes"])  # it did move


def test_anchor_shapes_follow_the_box_priors_and_the_input_size():
    small, large = fit_anchor_shapes(256), fit_anchor_shapes(512)
    assert len(small) == 3
    # The smallest anchor at 256 px is near the median nodule (about 7 px), not 24 px.
    assert 4 <= min(min(shape) for shape in small) <= 10
    for (w1, h1), (w2, h2) in zip(small, large, strict=True):
        assert 1.6 <= (w2 * h2 / (w1 * h1)) ** 0.5 <= 2.4  # twice the input, twice the anchors


def test_each_anchor_lies_over_the_image_cell_whose_scores_it_reads():
    """MedLoop's boxes are (x along the columns, y along the rows). Each anchor must sit over
    the feature-map cell whose classification score MONAI pairs with it; with MONAI's default
    "ij" layout every anchor sat over the transposed cell, so a lesion at (row, col) was taught
    at (col, row) and small lesions away from the diagonal were never learnt."""
    from active_learning.ml.builtin.network import build_detector

    config = BuiltinConfig(anchor_shapes=fit_anchor_shapes(256))
    detector = build_detector(config)
    image = torch.zeros(1, 1, 256, 256)
    with torch.no_grad():
        maps = detector.network(image)[detector.cls_key]
    anchors = detector.anchor_generator(image, maps)[0]
    classes = len(config.finding_classes)
    for level, row, column, anchor in [(0, 5, 40, 1), (1, 27, 3, 2), (2, 9, 2, 0)]:
        hot = [torch.zeros_like(m) for m in maps]
        hot[level][0, anchor * classes + 2, row, column] = 1.0  # class 2 of that anchor
        flat = detector._reshape_maps(hot)[0, :, 2]
        index = int(torch.nonzero(flat).item())
        x1, y1, x2, y2 = anchors[index].tolist()
        stride = 256 // maps[level].shape[-1]
        assert (x1 + x2) / 2 == pytest.approx(column * stride + stride / 2, abs=1)
        assert (y1 + y2) / 2 == pytest.approx(row * stride + stride / 2, abs=1)
        width, height = config.anchor_shapes[anchor]
        assert x2 - x1 == pytest.approx(width * 2**level, abs=1)
        assert y2 - y1 == pytest.approx(height * 2**level, abs=1)


def test_versions_saved_before_the_anchor_layout_setting_keep_the_layout_they_learnt():
    saved = BuiltinConfig().to_dict()
    assert saved["anchor_indexing"] == "xy"
    del saved["anchor_indexing"]
    assert BuiltinConfig.from_dict(saved).anchor_indexing == "ij"
    with pytest.raises(ValueError, match="anchor_indexing must be 'xy' or 'ij'"):
        BuiltinConfig.from_dict(saved | {"anchor_indexing": "yx"})


def test_test_time_views_are_small_rescales_at_every_input_size():
    for size in (128, 256, 512):
        sizes = view_sizes(size, (0.9, 1.1))
        assert len(sizes) == 2 and all(s % 32 == 0 for s in sizes)
        assert all(0.7 <= s / size <= 1.3 for s in sizes), (size, sizes)
        assert min(sizes) < size < max(sizes)


def test_only_candidates_of_reliable_classes_above_their_threshold_are_shown():
    classes = ("nodule", "mass")
    labels = np.array([0, 0, 1])
    scores = np.array([0.6, 0.3, 0.9])
    points = {
        "boxes": {
            "nodule": {"threshold": 0.5, "reliable": True},
            "mass": {"threshold": 0.2, "reliable": False},
        }
    }
    assert shown_mask(labels, scores, classes, points, 0.25).tolist() == [True, False, False]
    # Never fitted (an old version): the fixed display threshold.
    assert shown_mask(labels, scores, classes, None, 0.25).tolist() == [True, True, True]


def test_the_projects_precision_confidence_reaches_the_threshold_choice(monkeypatch):
    config = BuiltinConfig(
        input_size=128, vocab_size=400, report_max_tokens=24, batch_size=4, train_steps=2,
        warmup_steps=0, detection_score_threshold=0.0, seed=1, box_precision_confidence=0.9,
    )  # fmt: skip
    model = BuiltinModel(config)
    model.train(synthetic_source(seed=9, start=0, count=8, size=128))
    seen: list[float] = []
    real = op.fit_box_operating_points

    def recording(*args, **kwargs):
        seen.append(kwargs["confidence"])
        return real(*args, **kwargs)

    monkeypatch.setattr(op, "fit_box_operating_points", recording)
    model.fit_operating_points(list(synthetic_source(seed=9, start=100, count=3, size=128)()))
    assert seen == [0.9]
    with pytest.raises(ValueError, match="box_precision_confidence"):
        BuiltinConfig.from_dict({"box_precision_confidence": 1.0})


def test_fitted_operating_points_are_saved_and_applied_by_predict(tmp_path: Path):
    torch.manual_seed(0)
    config = BuiltinConfig(
        input_size=128, vocab_size=400, report_max_tokens=24, batch_size=4, train_steps=2,
        warmup_steps=0, detection_score_threshold=0.0, seed=1,
    )  # fmt: skip
    model = BuiltinModel(config)
    source = synthetic_source(seed=9, start=0, count=8, size=128)
    report = model.train(source)
    assert report.steps == 2
    cases = list(synthetic_source(seed=9, start=100, count=3, size=128)())
    fitted = model.fit_operating_points(cases)
    assert set(fitted) >= {"boxes", "findings", "report"}
    # Three validation reports are not enough to judge the drafts on, whatever they score.
    assert fitted["report"]["reports"] == 3 and fitted["report"]["min_reports"] == 20
    assert not fitted["report"]["reliable"]
    assert "judged on 3 validation reports, fewer than the 20 needed" in fitted["report"]["reason"]
    assert set(fitted["boxes"]) == set(config.finding_classes)
    # Hand-set points: one class shown above its median candidate score, the others hidden.
    options = UncertaintyOptions(box_stability=False)
    raw = model.predict(cases, uncertainty=options)
    found = [b.finding for p in raw for b in p.candidates]
    assert found, "a zero score threshold keeps the top candidates"
    shown_class = max(set(found), key=found.count)
    cut = float(np.median([b.score for p in raw for b in p.candidates if b.finding == shown_class]))
    points = {
        **fitted,
        "boxes": {
            name: {**fitted["boxes"][name], "threshold": cut, "reliable": name == shown_class}
            for name in config.finding_classes
        },
    }
    model._operating = points
    model.save(tmp_path / "v")
    loaded = load_model(tmp_path / "v")
    assert loaded.operating_points() == points
    for prediction in loaded.predict(cases, uncertainty=options):
        expected = [b for b in prediction.candidates if b.finding == shown_class and b.score >= cut]
        assert prediction.boxes == expected
        stored = prediction.as_suggestion()
        assert len(stored["uncertainty"]["candidates"]) == len(prediction.candidates)
        assert len(stored["boxes"]) == len(expected)
    assert loaded.evaluate(cases)["operating_points"] == points


def test_the_fast_box_selection_keeps_what_monais_keeps():
    from monai.apps.detection.utils.box_selector import BoxSelector

    generator = torch.Generator().manual_seed(3)
    settings = dict(score_thresh=0.05, topk_candidates_per_level=50, nms_thresh=0.3,
                    detections_per_img=24)  # fmt: skip
    boxes, logits = [], []
    for count in (400, 100, 25):  # three levels of anchors, six classes, overlapping boxes
        corner = torch.rand(count, 2, generator=generator) * 200
        size = 4 + torch.rand(count, 2, generator=generator) * 40
        boxes.append(torch.cat([corner, corner + size], dim=1))
        logits.append(torch.randn(count, 6, generator=generator) * 2 - 1)
    expected = BoxSelector(**settings).select_boxes_per_image(boxes, logits, (224, 224))
    got = FastBoxSelector(**settings).select_boxes_per_image(boxes, logits, (224, 224))
    assert len(expected[0]) == 24  # enough overlap and scores for NMS and the cap to matter
    assert torch.allclose(got[0], expected[0]) and torch.allclose(got[1], expected[1])
    assert torch.equal(got[2], expected[2])


def _two_effusion_cases() -> tuple[list, list]:
    from active_learning.ml import evaluate as ev

    truth = [ev.GroundTruthBox("a", "effusion", 10, 10, 20, 20)]
    candidates = [
        ev.PredictedBox("a", "effusion", 10, 10, 20, 20, 0.6),  # the lesion
        ev.PredictedBox("b", "effusion", 40, 40, 20, 20, 0.7),  # a false box, scored higher
    ]
    return truth, candidates


def test_the_fusion_weight_is_chosen_where_the_finding_head_helps_on_validation():
    from active_learning.ml.builtin.model import fitted_fusion

    classes = ["nodule", "effusion"]
    truth, candidates = _two_effusion_cases()
    # The case-level head is right: case a has an effusion, case b has none. Fusing it lifts
    # the true box above the false one; 0.1 is the smallest weight that does.
    right = {"a": {"nodule": 0.5, "effusion": 0.9}, "b": {"nodule": 0.5, "effusion": 0.1}}
    weight, fused = fitted_fusion(truth, candidates, right, classes, (0.0, 0.1, 0.2, 0.3))
    assert weight == 0.1
    assert fused[0].score == pytest.approx(0.6**0.9 * 0.9**0.1)
    assert fused[0].score > fused[1].score
    # The head is confidently wrong (what a few dozen labels can teach it): fusing it would
    # sink the true box, so the detector's own scores are kept.
    wrong = {"a": {"nodule": 0.5, "effusion": 0.02}, "b": {"nodule": 0.5, "effusion": 0.95}}
    weight, fused = fitted_fusion(truth, candidates, wrong, classes, (0.3, 0.0, 0.2))
    assert weight == 0.0
    assert [b.score for b in fused] == [0.6, 0.7]


def test_a_findings_probability_hears_the_detector_where_that_helps_on_validation():
    from active_learning.ml.builtin.inference import (
        fuse_finding_probabilities,
        top_detector_scores,
    )
    from active_learning.ml.builtin.model import fitted_finding_fusion

    # A case's best candidate per class: the raw detector score where the box has one.
    boxes = [
        PredictedBox("nodule", 0, 0, 4, 4, score=0.3, detector_score=0.8),
        PredictedBox("nodule", 9, 9, 4, 4, score=0.5, detector_score=0.4),
        PredictedBox("mass", 0, 0, 9, 9, score=0.6),
    ]
    assert top_detector_scores(boxes, ["nodule", "mass", "effusion"], 0.02).tolist() == [
        0.8, 0.6, 0.02
    ]  # fmt: skip
    # 200 cases of one class: the head cannot see the small lesion (its probability is noise
    # around the prevalence), the detector's best score can.
    rng = np.random.default_rng(4)
    y = (rng.random((200, 1)) < 0.3).astype(float)
    head = np.clip(0.3 + rng.normal(0, 0.05, y.shape), 0.01, 0.99)
    top = np.where(y == 1, rng.uniform(0.4, 0.9, y.shape), rng.uniform(0.02, 0.35, y.shape))
    mixed = fitted_finding_fusion(head, top, y, (0.0, 0.5, 1.0), min_positives=5)
    assert mixed["weight"] > 0 and mixed["scale"] > 0
    assert mixed["log_loss"][mixed["weight"]] < mixed["log_loss"][0.0] - 0.2
    config = BuiltinConfig(
        finding_detector_weight=mixed["weight"],
        finding_detector_scale=mixed["scale"],
        finding_detector_bias=mixed["bias"],
    )
    served = fuse_finding_probabilities(head, top, config)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y[:, 0], served[:, 0]) > 0.95 > roc_auc_score(y[:, 0], head[:, 0]) + 0.3
    # Weight 0 keeps the head's calibrated probabilities as they are.
    assert np.array_equal(fuse_finding_probabilities(head, top, BuiltinConfig()), head)
    # Where the head is calibrated (each case's finding drawn from its very probability) and
    # the detector's score is noise, nothing is mixed in.
    knows = 1 / (1 + np.exp(-rng.normal(-1.0, 2.0, (400, 1))))
    drawn = (rng.random(knows.shape) < knows).astype(float)
    noise = rng.uniform(0.02, 0.9, knows.shape)
    kept = fitted_finding_fusion(knows, noise, drawn, (0.0, 0.5, 1.0), min_positives=5)
    assert kept["weight"] == 0.0 and (kept["scale"], kept["bias"]) == (1.0, 0.0)
    # Too few labelled positives (unlabelled findings are NaN): nothing is fitted.
    few = np.full_like(y, np.nan)
    few[:4] = 1
    few[4:40] = 0
    assert fitted_finding_fusion(head, top, few, (0.0, 0.5), min_positives=5)["weight"] == 0.0
    with pytest.raises(ValueError, match="finding_detector_weight"):
        BuiltinConfig.from_dict({"finding_detector_weight_choices": [0.0, 1.5]})
    with pytest.raises(ValueError, match="finding_detector_scale"):
        BuiltinConfig.from_dict({"finding_detector_scale": -1.0})


def test_frozen_batch_norm_keeps_its_statistics_while_its_scale_still_learns():
    from active_learning.ml.builtin.model import freeze_batch_norm

    torch.manual_seed(0)
    layer = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    before = layer[1].running_mean.clone()
    layer.train()
    freeze_batch_norm(layer)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    out = layer(torch.randn(8, 1, 8, 8) * 5 + 3)
    out.square().mean().backward()
    optimizer.step()
    assert torch.equal(layer[1].running_mean, before)
    assert not layer[1].training and layer[0].training
    assert not torch.equal(layer[1].weight, torch.ones(4))
    # Not frozen: the statistics follow the batch.
    layer[1].train()
    layer(torch.randn(8, 1, 8, 8) * 5 + 3)
    assert not torch.equal(layer[1].running_mean, before)


def test_validation_chooses_the_detector_blend_between_the_start_and_the_trained_weights():
    torch.manual_seed(0)
    config = BuiltinConfig(
        input_size=128, vocab_size=400, report_max_tokens=24, batch_size=4, train_steps=2,
        warmup_steps=0, detection_score_threshold=0.0, seed=1,
        detector_interpolation_choices=(0.0, 0.5, 1.0), detector_blend_confidence=0.0,
    )  # fmt: skip
    model = BuiltinModel(config)
    model.train(synthetic_source(seed=9, start=0, count=8, size=128))
    assert model._start_detector is None, "a detector trained from nothing has no start to keep"
    network = model.network
    assert network is not None
    start = {k: v.clone() for k, v in network.detector.state_dict().items()}
    # Training on from learnt weights (as a cycle does from its parent) keeps the start ...
    model.train(synthetic_source(seed=9, start=8, count=8, size=128), max_steps=3)
    trained = {k: v.clone() for k, v in network.detector.state_dict().items()}
    moved = [
        k for k in start if start[k].is_floating_point() and not torch.equal(start[k], trained[k])
    ]
    assert moved
    model.fit_operating_points(list(synthetic_source(seed=9, start=100, count=6, size=128)()))
    blend = model.config.extra["detector_blend"]
    scores = {float(a): v for a, v in blend["validation_map50"].items()}
    assert set(scores) == {0.0, 0.5, 1.0}
    best = max(scores, key=lambda a: (scores[a], a))
    if scores[best] <= scores[0.0]:
        best = 0.0  # no gain over the start: the start is kept
    assert blend["trained_share"] == best
    # ... and the detector now holds that blend of the two.
    now = network.detector.state_dict()
    for key in moved:
        expected = best * trained[key] + (1 - best) * start[key]
        assert torch.allclose(now[key], expected, atol=1e-6), key
    assert model._start_detector is None, "the start is let go once a blend is chosen"


def test_without_blend_choices_the_trained_detector_is_kept():
    torch.manual_seed(0)
    config = BuiltinConfig(
        input_size=128, vocab_size=400, report_max_tokens=24, batch_size=4, train_steps=2,
        warmup_steps=0, detection_score_threshold=0.0, seed=1, detector_interpolation_choices=(),
    )  # fmt: skip
    model = BuiltinModel(config)
    model.train(synthetic_source(seed=9, start=0, count=8, size=128))
    model.train(synthetic_source(seed=9, start=8, count=8, size=128), max_steps=3)
    network = model.network
    assert network is not None
    trained = {k: v.clone() for k, v in network.detector.state_dict().items()}
    model.fit_operating_points(list(synthetic_source(seed=9, start=100, count=6, size=128)()))
    assert "detector_blend" not in model.config.extra
    assert all(torch.equal(v, trained[k]) for k, v in network.detector.state_dict().items())


def _blend_case(case_id: str, finding: str | None) -> LabelledCase:
    boxes = [Box(finding, 10, 10, 20, 20)] if finding else []
    return LabelledCase(case_id=case_id, image=np.zeros((1, 1)), boxes=boxes)


def _prediction(case_id: str, boxes: list[tuple[str, float, float]]) -> CasePrediction:
    """A prediction whose candidates are (finding, score, x) boxes of size 20 at y 10."""
    candidates = [PredictedBox(f, x, 10, 20, 20, score) for f, score, x in boxes]
    return CasePrediction(case_id, [], {}, {}, {}, [], {}, 0.0, candidates=candidates)


def test_the_start_is_left_only_for_a_blend_that_beats_it_beyond_noise():
    from active_learning.ml.builtin.model import choose_detector_blend

    classes = ["nodule", "effusion"]
    # 40 validation cases, 20 with an effusion at (10, 10). The start (alpha 0) finds half of
    # them, with a false box on every normal case that outscores its misses.
    cases = [_blend_case(f"c{i}", "effusion" if i < 20 else None) for i in range(40)]
    start = [
        _prediction(c.case_id, [("effusion", 0.8 if i < 10 else 0.2, 10 if i < 10 else 60)])
        if i < 20
        else _prediction(c.case_id, [("effusion", 0.5, 60)])
        for i, c in enumerate(cases)
    ]
    # The trained blend (alpha 1) finds every effusion above every false box: a gain on many
    # cases, beyond noise.
    good = [
        _prediction(c.case_id, [("effusion", 0.9, 10)])
        if i < 20
        else _prediction(c.case_id, [("effusion", 0.3, 60)])
        for i, c in enumerate(cases)
    ]
    # The average (alpha 0.5) is the start with one miss turned into a hit: a gain of one case.
    lucky = list(start)
    lucky[10] = _prediction("c10", [("effusion", 0.9, 10)])

    alpha, record = choose_detector_blend(
        {0.0: start, 0.5: lucky, 1.0: good}, cases, classes, confidence=0.8, resamples=300
    )
    assert alpha == 1.0
    assert record["p_not_better"] <= 0.2
    scores = {float(a): v for a, v in record["validation_map50"].items()}
    assert scores[1.0] > scores[0.5] > scores[0.0]

    # Only the lucky blend on offer: it scores higher, but not beyond noise, so the start stays.
    alpha, record = choose_detector_blend(
        {0.0: start, 0.5: lucky, 1.0: start}, cases, classes, confidence=0.8, resamples=300
    )
    assert alpha == 0.0
    assert record["p_not_better"] > 0.2
    # Confidence 0: the highest AP@0.5 outright.
    alpha, _ = choose_detector_blend(
        {0.0: start, 0.5: lucky, 1.0: start}, cases, classes, confidence=0.0, resamples=300
    )
    assert alpha == 0.5


def _detector(model: BuiltinModel) -> dict[str, torch.Tensor]:
    network = model.network
    assert network is not None
    return {k: v.detach().clone() for k, v in network.detector.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """The same weights and statistics (a blend takes its step counters from the trained
    weights)."""
    floating = [k for k in a if a[k].is_floating_point()]
    return set(a) == set(b) and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in floating)


@pytest.mark.parametrize("lineage", [True, False])
def test_a_cycle_whose_parent_stays_served_trains_on_from_its_own_weights(
    tmp_path: Path, lineage: bool
):
    from dataclasses import replace

    torch.manual_seed(0)
    config = BuiltinConfig(
        input_size=128, vocab_size=400, report_max_tokens=24, batch_size=4, train_steps=2,
        warmup_steps=0, detection_score_threshold=0.0, seed=1,
        detector_interpolation_choices=(0.0, 0.5, 1.0), detector_lineage=lineage,
    )  # fmt: skip
    model = BuiltinModel(config)
    model.train(synthetic_source(seed=9, start=0, count=8, size=128))
    parent = _detector(model)
    model.train(synthetic_source(seed=9, start=8, count=8, size=128), max_steps=3)
    trained = _detector(model)
    assert not _same(parent, trained)
    # Validation labels with no box: no blend beats the parent, so the parent stays served ...
    validation = [
        replace(case, boxes=()) for case in synthetic_source(seed=9, start=100, count=6, size=128)()
    ]
    model.fit_operating_points(validation)
    assert model.config.extra["detector_blend"]["trained_share"] == 0.0
    assert _same(_detector(model), parent)
    # ... and the trained weights are kept beside it, in the saved version too.
    model.save(tmp_path / "v1")
    assert (tmp_path / "v1" / "detector_lineage.safetensors").exists()
    child = load_model(tmp_path / "v1")
    assert isinstance(child, BuiltinModel)
    assert _same(_detector(child), parent), "the version serves its parent's detector"
    # The next cycle trains on from the trained weights (with the option on) and tests its
    # blends against what is served now.
    child.train(synthetic_source(seed=9, start=16, count=8, size=128), max_steps=0)
    assert child._start_detector is not None and _same(child._start_detector, parent)
    if lineage:
        assert _same(_detector(child), trained)
        assert child.config.extra["detector_trained_from"] == "lineage"
    else:
        assert _same(_detector(child), parent)
        assert "detector_trained_from" not in child.config.extra
    assert child._lineage_detector is None, "the lineage is used once"
    # A platform cycle builds a fresh model and warm-starts it from the version's folder.
    fresh = BuiltinModel(replace(config, extra={}))
    fresh.train(
        synthetic_source(seed=9, start=16, count=8, size=128), max_steps=0,
        warm_start=tmp_path / "v1",
    )  # fmt: skip
    assert fresh._start_detector is not None and _same(fresh._start_detector, parent)
    assert _same(_detector(fresh), trained if lineage else parent)


def test_a_version_serving_its_trained_weights_keeps_no_lineage(tmp_path: Path):
    torch.manual_seed(0)
    config = BuiltinConfig(
        input_size=128, vocab_size=400, report_max_tokens=24, batch_size=4, train_steps=2,
        warmup_steps=0, detection_score_threshold=0.0, seed=1,
        detector_interpolation_choices=(1.0,),
    )  # fmt: skip
    model = BuiltinModel(config)
    model.train(synthetic_source(seed=9, start=0, count=8, size=128))
    model.train(synthetic_source(seed=9, start=8, count=8, size=128), max_steps=2)
    model.fit_operating_points(list(synthetic_source(seed=9, start=100, count=6, size=128)()))
    model.save(tmp_path / "v1")
    assert not (tmp_path / "v1" / "detector_lineage.safetensors").exists()
    assert load_model(tmp_path / "v1")._lineage_detector is None  # type: ignore[attr-defined]


def test_a_lineage_that_does_not_fit_the_detector_is_refused(tmp_path: Path):
    import hashlib
    import json
    from dataclasses import replace

    from safetensors.torch import save_file

    from active_learning.ml.checkpoints import read_manifest
    from active_learning.ml.interface import CheckpointError

    torch.manual_seed(0)
    config = BuiltinConfig(
        input_size=128, vocab_size=400, report_max_tokens=24, batch_size=4, train_steps=2,
        warmup_steps=0, detection_score_threshold=0.0, seed=1,
        detector_interpolation_choices=(0.0, 1.0),
    )  # fmt: skip
    model = BuiltinModel(config)
    model.train(synthetic_source(seed=9, start=0, count=8, size=128))
    model.train(synthetic_source(seed=9, start=8, count=8, size=128), max_steps=2)
    validation = [
        replace(case, boxes=()) for case in synthetic_source(seed=9, start=100, count=4, size=128)()
    ]
    model.fit_operating_points(validation)
    model.save(tmp_path / "v1")
    folder = tmp_path / "v1"
    lineage = folder / "detector_lineage.safetensors"
    # Changed after the version was written: refused by the manifest's checksum, naming it.
    save_file({"head.weight": torch.zeros(3, 3)}, str(lineage))
    with pytest.raises(CheckpointError, match=r"detector_lineage\.safetensors does not match"):
        load_model(folder)
    # Written with the version but for another detector: refused by its shapes.
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["detector_lineage.safetensors"] = hashlib.sha256(
        lineage.read_bytes()
    ).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=r"detector_lineage\.safetensors does not fit"):
        BuiltinModel(replace(config, extra={}))._load_into(folder, read_manifest(folder))
