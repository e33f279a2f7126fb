"""Operating points and the metrics they stand on, on hand-made scores and boxes with known
answers: the threshold is the lowest one that keeps the precision target, thin evidence shows
nothing (with its reason in words), and mAP/FROC/shown-box figures count what they claim."""

from __future__ import annotations

import pytest

from active_learning.ml import evaluate as ev
from active_learning.ml.builtin import operating_points as op


def test_threshold_is_the_lowest_score_that_keeps_the_precision_target():
    # Sorted by score: T T F T F F -> precision 1, 1, .67, .75, .6, .5
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    is_true = [True, True, False, True, False, False]
    threshold, precision, hits = op.lowest_threshold_for_precision(scores, is_true, 0.7)
    assert threshold == 0.6 and precision == pytest.approx(0.75) and hits == 3
    # A stricter target stops before the first false box.
    assert op.lowest_threshold_for_precision(scores, is_true, 0.8)[0] == 0.8


def test_the_threshold_never_goes_below_the_last_true_candidate_it_can_reach():
    # T T T T F F F: precision stays >= 0.5 down to the sixth (4/6), but below the fourth
    # nothing is gained: 0.6 keeps all four true candidates and none of the false ones.
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
    is_true = [True, True, True, True, False, False, False]
    threshold, precision, hits = op.lowest_threshold_for_precision(scores, is_true, 0.5)
    assert (threshold, precision, hits) == (0.6, 1.0, 4)
    # A tie that holds a true candidate counts as one threshold (both taken, 3 of 5).
    tied = op.lowest_threshold_for_precision([0.9, 0.8, 0.5, 0.5, 0.3], [1, 1, 1, 0, 0], 0.6)
    assert tied[0] == 0.5 and tied[1] == pytest.approx(0.75) and tied[2] == 3
    # All false: no threshold.
    assert op.lowest_threshold_for_precision([0.9, 0.5], [False, False], 0.1) == (None, None, 0)
    # Unreachable: the best box is false.
    assert op.lowest_threshold_for_precision([0.9, 0.1], [False, True], 0.7) == (None, None, 0)
    assert op.lowest_threshold_for_precision([], [], 0.7) == (None, None, 0)


def test_tied_scores_are_one_threshold():
    # 0.8 appears twice (one true, one false): cutting between them is impossible, so the
    # precision at 0.8 is 2/3, below 0.7 -> the threshold stays at 0.9.
    threshold, precision, _ = op.lowest_threshold_for_precision(
        [0.9, 0.8, 0.8], [True, True, False], 0.7
    )
    assert threshold == 0.9 and precision == 1.0


def test_precision_lower_bound_is_wilsons_one_sided_bound():
    # 8 of 10 at 95 % one-sided (z = 1.645): (p + z^2/2n - z sqrt(p(1-p)/n + z^2/4n^2)) /
    # (1 + z^2/n) = 0.541, worked by hand.
    bound = op.precision_lower_bound([8], [10], 0.95)
    assert bound[0] == pytest.approx(0.5408, abs=1e-3)
    # Confidence 0 is the plain precision; more candidates at the same precision, a higher bound.
    assert op.precision_lower_bound([8], [10], 0.0)[0] == pytest.approx(0.8)
    assert op.precision_lower_bound([80], [100], 0.95)[0] > bound[0]
    with pytest.raises(ValueError, match="confidence"):
        op.lowest_threshold_for_precision([0.9], [True], 0.7, confidence=1.0)
    # Below 0.5 the bound would lie above the precision (more lenient): refused.
    assert op.precision_lower_bound([8], [10], 0.3)[0] > 0.8
    with pytest.raises(ValueError, match="0 or in"):
        op.lowest_threshold_for_precision([0.9], [True], 0.7, confidence=0.3)


def test_a_threshold_held_up_by_few_boxes_must_be_surer():
    # T T T F T: plain precision 0.8 at the fifth box reaches 0.7, but at 75 % confidence its
    # lower bound (0.66 on 5 boxes) does not; the first three (all true, bound 0.87) do.
    scores, is_true = [0.9, 0.8, 0.7, 0.6, 0.5], [True, True, True, False, True]
    assert op.lowest_threshold_for_precision(scores, is_true, 0.7)[0] == 0.5
    threshold, precision, hits = op.lowest_threshold_for_precision(
        scores, is_true, 0.7, confidence=0.75
    )
    assert (threshold, precision, hits) == (0.7, 1.0, 3)
    # Precision 0.82 on 39 boxes is sure enough at 75 % (bound 0.76): the threshold goes down
    # to the last true box, as the plain precision's does.
    many_scores = [1 - i / 100 for i in range(40)]
    many_true = [i % 5 != 4 for i in range(40)]  # every fifth false, the last one too
    sure = op.lowest_threshold_for_precision(many_scores, many_true, 0.7, confidence=0.75)
    assert sure[0] == pytest.approx(many_scores[-2]) and sure[2] == 32


def test_a_class_no_threshold_of_which_is_sure_enough_says_so():
    point = op.box_operating_point(
        scores=[0.9, 0.8], is_true=[True, False], positives=6, ap50=0.5, target=0.7,
        min_positives=5, min_ap=0.1, confidence=0.9,
    )  # fmt: skip
    assert not point["reliable"]
    assert point["reason"] == "no score threshold reaches precision 0.70 with 90% confidence"


def test_a_class_with_few_validation_boxes_or_a_low_ap_is_not_shown():
    common = {"scores": [0.9, 0.5], "is_true": [True, True], "target": 0.7, "min_ap": 0.1}
    thin = op.box_operating_point(positives=3, ap50=0.9, min_positives=5, **common)
    assert not thin["reliable"] and thin["reason"] == (
        "still learning: 3 of 5 validation examples labelled"
    )
    weak = op.box_operating_point(positives=8, ap50=0.05, min_positives=5, **common)
    assert not weak["reliable"] and "below the floor of 0.10" in weak["reason"]
    good = op.box_operating_point(positives=8, ap50=0.4, min_positives=5, **common)
    assert good["reliable"] and good["threshold"] == 0.5
    assert good["precision"] == 1.0 and good["recall"] == pytest.approx(2 / 8)


def test_box_operating_points_from_boxes():
    truth = [ev.GroundTruthBox(f"c{i}", "nodule", 10, 10, 10, 10) for i in range(5)]
    candidates = [
        ev.PredictedBox(f"c{i}", "nodule", 10, 10, 10, 10, 0.9 - i / 10) for i in range(4)
    ]
    # A false box above the last true one, on a normal image.
    candidates.append(ev.PredictedBox("n0", "nodule", 50, 50, 10, 10, 0.75))
    points = op.fit_box_operating_points(
        truth, candidates, ["nodule", "mass"], ap50_per_class={"nodule": 0.7, "mass": None},
        target=0.7, min_positives=5, min_ap=0.1,
    )  # fmt: skip
    nodule = points["nodule"]
    assert nodule["reliable"] and nodule["threshold"] == pytest.approx(0.6)
    assert nodule["precision"] == pytest.approx(4 / 5) and nodule["recall"] == pytest.approx(4 / 5)
    assert not points["mass"]["reliable"] and points["mass"]["validation_positives"] == 0


def test_findings_prefill_only_above_a_probability_with_the_target_ppv():
    probabilities = [0.95, 0.9, 0.8, 0.7, 0.4, 0.3, 0.2, 0.1, 0.05, 0.01]
    labels = [1, 1, 1, 0, 1, 0, 0, 0, 0, 0]
    point = op.finding_operating_point(
        probabilities, labels, target=0.8, absent_target=0.9, min_positives=3
    )
    assert point["reliable"] and point["prefill_threshold"] == 0.4  # 4/5 = 0.8
    # Absent at or below 0.3: all five below are negative (NPV 1.0).
    assert point["absent_threshold"] == pytest.approx(0.3)
    few = op.finding_operating_point([0.9, 0.1], [1, 0], target=0.8, absent_target=0.9,
                                     min_positives=3)  # fmt: skip
    assert not few["reliable"] and few["prefill_threshold"] is None
    assert few["reason"] == "still learning: 1 of 3 validation examples labelled"


def test_a_prefill_threshold_must_hold_beyond_the_noise_of_few_validation_cases():
    # The plain rule prefills down to 0.5, where 5 of 7 cases are positive (PPV 0.71, just over
    # the target by one case); at 0.75 confidence that cannot be told from noise, and the
    # threshold stays at 0.75 (4 of 4). Three negatives below every positive cannot show an
    # NPV of 0.9 either.
    probabilities = [0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.5, 0.3, 0.2, 0.1]
    labels = [1, 1, 1, 1, 0, 0, 1, 0, 0, 0]
    plain = op.finding_operating_point(
        probabilities, labels, target=0.7, absent_target=0.9, min_positives=5
    )
    assert plain["prefill_threshold"] == 0.5 and plain["absent_threshold"] == pytest.approx(0.3)
    sure = op.finding_operating_point(
        probabilities, labels, target=0.7, absent_target=0.9, min_positives=5, confidence=0.75
    )
    assert sure["reliable"] and sure["prefill_threshold"] == 0.75
    assert sure["absent_threshold"] is None
    # Two positives in three at the top: nothing at all can be promised.
    none = op.finding_operating_point(
        [0.9, 0.8, 0.7, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
        [1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
        target=0.7, absent_target=0.9, min_positives=5, confidence=0.75,
    )  # fmt: skip
    assert not none["reliable"] and "predictive value" in none["reason"]


def test_report_reliability_against_its_floor():
    assert op.report_operating_point(0.45, metric="rouge", floor=0.3)["reliable"]
    low = op.report_operating_point(0.1, metric="rouge", floor=0.3)
    assert not low["reliable"] and "below the floor" in low["reason"]
    assert not op.report_operating_point(None, metric="rouge", floor=0.3)["reliable"]
    nothing = op.unfitted(["nodule"], "no validation labels yet")
    assert not nothing["boxes"]["nodule"]["reliable"] and not nothing["report"]["reliable"]


def test_froc_counts_sensitivity_at_false_positives_per_image():
    # Two images, two lesions. Candidates by score: hit (a), false (a), false (b), hit (b).
    truth = [
        ev.GroundTruthBox("a", "mass", 0, 0, 20, 20),
        ev.GroundTruthBox("b", "mass", 0, 0, 20, 20),
    ]
    candidates = [
        ev.PredictedBox("a", "mass", 0, 0, 20, 20, 0.9),
        ev.PredictedBox("a", "mass", 50, 50, 20, 20, 0.8),
        ev.PredictedBox("b", "mass", 50, 50, 20, 20, 0.7),
        ev.PredictedBox("b", "mass", 1, 1, 20, 20, 0.6),
    ]
    result = ev.froc(truth, candidates, images=["a", "b"])
    # 0.5 FP/image allows 1 false box: sensitivity 1/2; 1 FP/image allows both: 2/2.
    assert result["sensitivity_at_0.5_fp"] == 0.5
    assert result["sensitivity_at_1_fp"] == 1.0 and result["sensitivity_at_4_fp"] == 1.0
    # The metrics come from every candidate: cutting at 0.75 would lose the second lesion.
    cut = ev.froc(truth, [c for c in candidates if c.score >= 0.75], images=["a", "b"])
    assert cut["sensitivity_at_4_fp"] == 0.5


def test_shown_box_metrics_on_hand_made_boxes():
    truth = [ev.GroundTruthBox("a", "nodule", 10, 10, 10, 10),
             ev.GroundTruthBox("b", "effusion", 0, 0, 40, 40)]  # fmt: skip
    shown = [
        ev.PredictedBox("a", "nodule", 11, 10, 10, 10, 0.9),  # IoU 0.82: kept
        ev.PredictedBox("a", "nodule", 11, 11, 10, 10, 0.8),  # duplicate: false
        ev.PredictedBox("b", "effusion", 30, 30, 40, 40, 0.7),  # IoU 0.03: false
        ev.PredictedBox("n", "mass", 0, 0, 5, 5, 0.6),  # on a normal image: false
    ]
    metrics = ev.shown_box_metrics(truth, shown, ["nodule", "effusion", "mass"],
                                   images=["a", "b", "n", "m"])  # fmt: skip
    assert metrics["precision_shown"] == pytest.approx(1 / 4)
    assert metrics["recall_shown_per_class"] == {"nodule": 1.0, "effusion": 0.0, "mass": None}
    assert metrics["recall_shown"] == pytest.approx(0.5)
    # Normal images: "n" (one box) and "m" (none) -> 0.5 false boxes per normal image.
    assert metrics["normal_images"] == 2
    assert metrics["false_boxes_per_normal_image"] == pytest.approx(0.5)
    assert ev.shown_box_metrics(truth, [], ["nodule"], images=["a"])["precision_shown"] is None


def test_drafts_that_state_the_wrong_findings_are_not_shown_whatever_their_word_overlap():
    """A draft that copies the reports' boilerplate ("The heart size is normal ...") passes a
    ROUGE-L floor; the clinical finding F1 of the drafts keeps it from the workspace."""
    kwargs = {"metric": "rouge", "floor": 0.3, "finding_f1_floor": 0.6}
    wrong = op.report_operating_point(0.8, finding_f1=0.25, **kwargs)
    assert not wrong["reliable"]
    assert "F1 0.25, below the floor of 0.60" in wrong["reason"]
    assert op.report_operating_point(0.8, finding_f1=0.7, **kwargs)["reliable"]
    silent = op.report_operating_point(0.8, finding_f1=None, **kwargs)
    assert not silent["reliable"] and "no validation report states a finding" in silent["reason"]
    both = op.report_operating_point(0.1, finding_f1=0.2, **kwargs)
    assert not both["reliable"] and both["reason"].startswith("rouge 0.10 is below")


def test_box_confidence_needs_the_detector_and_the_case_level_model_to_agree():
    import numpy as np

    from active_learning.ml.builtin.config import BuiltinConfig
    from active_learning.ml.builtin.inference import fuse_box_scores

    scores, labels = np.array([0.4, 0.4, 0.9]), np.array([0, 1, 1])
    probabilities = np.array([0.9, 0.1])  # finding 0 likely on this case, finding 1 unlikely
    fused = fuse_box_scores(scores, labels, probabilities, 0.3)
    assert fused == pytest.approx([0.4**0.7 * 0.9**0.3, 0.4**0.7 * 0.1**0.3, 0.9**0.7 * 0.1**0.3])
    # The same detector score ranks higher where the text, labs and image say "finding 0".
    assert fused[0] > fused[1]
    assert fuse_box_scores(scores, labels, probabilities, 0.0) == pytest.approx(scores)
    # A version saved before the fusion keeps the detector's scores its thresholds were fit on.
    saved = BuiltinConfig().to_dict()
    del saved["box_finding_weight"]
    assert BuiltinConfig.from_dict(saved).box_finding_weight == 0.0
    with pytest.raises(ValueError, match="box_finding_weight"):
        BuiltinConfig.from_dict({**saved, "box_finding_weight": 1.5})


def test_the_prefill_rule_and_its_predictive_values_on_labelled_cases():
    from active_learning.ml.metrics.findings import prefill, prefill_metrics

    point = {"reliable": True, "prefill_threshold": 0.6, "absent_threshold": 0.1}
    assert [prefill(p, point) for p in (0.6, 0.59, 0.1, 0.11, 0.95)] == [
        "present", None, "absent", None, "present"
    ]  # fmt: skip
    # Nothing from a point that is not reliable, a missing absent threshold, or junk JSON.
    assert prefill(0.9, {**point, "reliable": False}) is None
    assert prefill(0.05, {**point, "absent_threshold": None}) is None
    assert prefill("0.9", point) is None and prefill(float("nan"), point) is None
    assert prefill(0.9, {"reliable": True, "prefill_threshold": "high"}) is None
    assert prefill(0.9, None) is None
    # Nodule: present at 0.9 (true), 0.7 (false); absent at 0.05 (true), 0.08 (false); 0.3 open.
    # Effusion is not reliable: never prefilled, so it adds nothing but its pairs to coverage.
    labels = {"nodule": [1, 0, 0, 1, 0], "effusion": [1, 0, 0, 0, 0]}
    probabilities = {"nodule": [0.9, 0.7, 0.05, 0.08, 0.3], "effusion": [0.99] * 5}
    points = {"nodule": point, "effusion": {**point, "reliable": False}}
    result = prefill_metrics(labels, probabilities, points)
    nodule = result["per_class"]["nodule"]
    assert (nodule["present"], nodule["absent"], nodule["wrong"]) == (2, 2, 2)
    assert nodule["ppv"] == 0.5 and nodule["npv"] == 0.5 and nodule["coverage"] == 0.8
    effusion = result["per_class"]["effusion"]
    assert effusion["present"] == 0 and effusion["ppv"] is None and effusion["coverage"] == 0
    assert result["ppv"] == 0.5 and result["npv"] == 0.5
    assert result["wrong_per_case"] == pytest.approx(2 / 5)
    assert result["coverage"] == pytest.approx(4 / 10)
    with pytest.raises(ValueError, match="nodule: 5 labels but 4 probabilities"):
        prefill_metrics({"nodule": [1] * 5}, {"nodule": [0.5] * 4}, {"nodule": point})


def test_drafts_judged_on_too_few_validation_reports_are_not_shown():
    """A demo version judged on 3 validation reports (ROUGE-L 0.88, finding F1 0.89) drafted
    "normal chest" on a nodule case: a metric on a handful of reports is not evidence."""
    kwargs = {"metric": "rouge", "floor": 0.3, "finding_f1_floor": 0.6, "min_reports": 20}
    few = op.report_operating_point(0.88, finding_f1=0.89, reports=3, **kwargs)
    assert not few["reliable"]
    assert few["reason"] == (
        "the drafts are judged on 3 validation reports, fewer than the 20 needed; rouge 0.88 there"
    )
    assert few["reports"] == 3 and few["min_reports"] == 20 and few["finding_f1"] == 0.89
    one = op.report_operating_point(0.9, finding_f1=1.0, reports=1, **kwargs)
    assert "on 1 validation report," in one["reason"]
    enough = op.report_operating_point(0.88, finding_f1=0.89, reports=20, **kwargs)
    assert enough["reliable"] and enough["reason"].startswith("rouge 0.88 reaches the floor")
    # Enough reports do not excuse a wrong draft.
    assert not op.report_operating_point(0.88, finding_f1=0.2, reports=40, **kwargs)["reliable"]
    # 0 asks for nothing more than the floors.
    assert op.report_operating_point(
        0.88, finding_f1=0.89, reports=3, **{**kwargs, "min_reports": 0}
    )["reliable"]
