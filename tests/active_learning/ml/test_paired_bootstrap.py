"""The paired bootstrap of the promotion guard: its metrics recomputed on weighted cases agree
with scikit-learn on the unweighted set, and a gain is called beyond noise only when the
paired interval excludes zero. For a CT project (issue 21) boxes match by 3D IoU at the
project's match IoU (0.1), and FROC mean (LUNA16) is recomputed per resample."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
from sklearn.metrics import precision_recall_curve, roc_auc_score

from active_learning.ml import paired_bootstrap as pb
from active_learning.ml.interface import Box, CasePrediction, LabelledCase, PredictedBox
from active_learning.ml.metrics.boxes import LUNA16_FROC_RATES, froc
from active_learning.ml.volumes import Box3D, PredictedBox3D

CLASSES = ["nodule", "effusion"]


def _prediction(case_id: str, boxes: list[PredictedBox], findings: dict[str, float]):
    return CasePrediction(
        case_id=case_id,
        boxes=boxes,
        findings=findings,
        finding_uncertainty={},
        report={"impression": ""},
        report_sentences=[],
        report_uncertainty={},
        case_score=0.0,
    )


def _case(case_id: str, boxes: list[Box], findings: dict[str, bool | None]) -> LabelledCase:
    return LabelledCase(
        case_id=case_id, image=np.zeros((1, 1)), boxes=boxes, findings=findings, report={}
    )


def test_box_ap_from_every_candidate_matches_a_ranking_of_true_and_false_positives():
    # One truth nodule per case; each case has a hit (IoU 1) and a miss, at made-up scores.
    rng = np.random.default_rng(3)
    predictions, cases, scores, hits = [], [], [], []
    for i in range(12):
        truth = Box("nodule", 10, 10, 20, 20)
        hit_score, miss_score = rng.uniform(0.05, 0.9, size=2)
        predictions.append(
            _prediction(
                str(i),
                [
                    PredictedBox("nodule", 10, 10, 20, 20, float(hit_score)),
                    PredictedBox("nodule", 80, 80, 20, 20, float(miss_score)),
                ],
                {},
            )
        )
        cases.append(_case(str(i), [truth], {}))
        scores += [hit_score, miss_score]
        hits += [1, 0]
    outcomes = pb.case_outcomes(predictions, cases, CLASSES)
    ap = pb.box_map50(outcomes, np.ones(12))
    # Every truth box is found by some candidate, so recall reaches 1 and sklearn's curve holds
    # every point; the VOC rule takes, at each recall, the best precision at that recall or more.
    precision, recall, _ = precision_recall_curve(hits, scores)  # recall decreasing
    envelope = np.maximum.accumulate(precision)
    assert ap == pytest.approx(float(np.sum(-np.diff(recall) * envelope[:-1])))
    # Only nodules have truth: effusion does not count in the mean.
    assert outcomes.truth_counts.sum(axis=0).tolist() == [12, 0]


def test_weighted_auroc_equals_sklearn_with_the_same_weights():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, size=40).astype(float)
    scores = np.round(rng.uniform(size=40), 1)  # ties on purpose
    weights = rng.integers(0, 4, size=40).astype(float)
    ours = pb._weighted_auroc(scores, labels, weights)
    assert ours == pytest.approx(roc_auc_score(labels, scores, sample_weight=weights))


def test_a_small_average_gain_within_noise_is_not_beyond_noise():
    serving = np.linspace(0.3, 0.6, 25)
    # Better on average (by 0.032), but case by case the difference swings by about 0.3:
    # 13 cases gain 0.32, 12 lose 0.28.
    candidate = serving + np.where(np.arange(25) % 2 == 0, 0.32, -0.28)
    result = pb.paired_bootstrap(
        pb.outcomes_from_values(candidate),
        pb.outcomes_from_values(serving),
        metric_name="mean",
        resamples=2000,
        seed=1,
    )
    assert result.difference == pytest.approx(0.032)
    assert result.low < 0 < result.high and not result.beyond_noise
    assert result.resamples_used == 2000 and 0.05 < result.p_not_better < 0.95


def test_a_clear_gain_is_beyond_noise_and_the_result_is_reproducible():
    rng = np.random.default_rng(0)
    serving = rng.uniform(0.2, 0.8, size=25)
    candidate = serving + 0.1 + rng.normal(0, 0.05, size=25)
    kwargs = {"metric_name": "mean", "resamples": 1000, "seed": 7}
    first = pb.paired_bootstrap(
        pb.outcomes_from_values(candidate), pb.outcomes_from_values(serving), **kwargs
    )
    again = pb.paired_bootstrap(
        pb.outcomes_from_values(candidate), pb.outcomes_from_values(serving), **kwargs
    )
    assert first.beyond_noise and first.low > 0.05 and first.p_not_better == 0.0
    assert first == again


def test_pairing_removes_case_difficulty():
    # Case difficulty varies a lot, the candidate is better by exactly 0.01 on every case:
    # unpaired, that gain would drown; paired, it is certain.
    difficulty = np.linspace(0.0, 0.9, 30)
    result = pb.paired_bootstrap(
        pb.outcomes_from_values(difficulty + 0.01),
        pb.outcomes_from_values(difficulty),
        metric_name="mean",
        resamples=1000,
    )
    assert result.low == pytest.approx(0.01) and result.beyond_noise


def test_an_unknown_metric_and_unpaired_outcomes_are_refused():
    values = pb.outcomes_from_values([0.1, 0.2])
    with pytest.raises(pb.UnsupportedMetric, match="bleu"):
        pb.paired_bootstrap(values, values, metric_name="reports.bleu_4")
    with pytest.raises(ValueError, match="same cases"):
        pb.paired_bootstrap(values, pb.outcomes_from_values([0.1]), metric_name="mean")


def _nodule(x: float, y: float, z: float, size: float = 10.0) -> Box3D:
    return Box3D("nodule", x, y, size, size, z=z, depth=size)


def _candidate(box: Box3D, score: float, *, dx: float = 0.0, dz: float = 0.0) -> PredictedBox3D:
    return PredictedBox3D(
        "nodule", box.x + dx, box.y, box.width, box.height, score, z=box.z + dz, depth=box.depth
    )


def _scan_prediction(case_id: str, candidates: list[PredictedBox3D]) -> CasePrediction:
    prediction = _prediction(case_id, [], {})
    prediction.candidates = candidates
    return prediction


def test_a_ct_candidate_beats_the_serving_version_at_3d_iou_0_1_but_not_at_0_5():
    # 20 scans, one 10x10x10 nodule each. The candidate finds every nodule 4 voxels off in x:
    # 3D IoU 600 / 1400 = 0.43, a hit at 0.1, a miss at 0.5. The serving version finds the
    # first 5 exactly (IoU 1) and on the other 15 boxes the right place in x and y but 20
    # slices away: 2D IoU 1, 3D IoU 0, a false positive at any 3D IoU.
    truth = _nodule(10, 10, 10)
    cases = [_case(str(i), [truth], {}) for i in range(20)]
    ours = [_scan_prediction(str(i), [_candidate(truth, 0.8, dx=4)]) for i in range(20)]
    theirs = [
        _scan_prediction(str(i), [_candidate(truth, 0.8, dz=0 if i < 5 else 20)]) for i in range(20)
    ]
    assert pb._overlaps(ours[0].candidates, [truth])[0, 0] == pytest.approx(3 / 7)

    candidate = pb.case_outcomes(ours, cases, ["nodule"], match_iou=0.1)
    serving = pb.case_outcomes(theirs, cases, ["nodule"], match_iou=0.1)

    def compare(metric_name: str, *parts: str) -> pb.BootstrapResult:
        return pb.paired_bootstrap(
            candidate, serving, metric_name=metric_name, resamples=1000, seed=3,
            combined_parts=parts or pb.COMBINED_PARTS,
        )  # fmt: skip

    at_01 = compare("boxes.map_at_match_iou")
    # AP at 0.1: the candidate's 20 hits give 1.0; the serving version's 5 hits, ranked first
    # among its equal scores, recall 5/20 at precision 1: 0.25.
    assert (at_01.candidate, at_01.serving) == (pytest.approx(1.0), pytest.approx(0.25))
    assert at_01.beyond_noise and (at_01.low or 0) > 0.5 and at_01.match_iou == 0.1
    # At IoU 0.5 (the radiograph measure) the same boxes say the opposite: no candidate box
    # counts, the serving version keeps its 0.25.
    at_05 = compare("boxes.map_50")
    assert (at_05.candidate, at_05.serving) == (pytest.approx(0.0), pytest.approx(0.25))
    assert not at_05.beyond_noise and at_05.high is not None and at_05.high < 0
    # FROC at 0.1: the candidate finds every nodule without a false positive (mean 1); the
    # serving version's 15 false positives come after its 5 hits at equal scores: 5/20 at
    # every rate, since at most 8 per scan are allowed (15 of them over 20 scans is 0.75).
    froc_01 = compare("froc.froc_mean")
    assert (froc_01.candidate, froc_01.serving) == (pytest.approx(1.0), pytest.approx(0.25))
    assert froc_01.beyond_noise
    # A CT project's combined: the mean of both, each part's value on all cases shown.
    combined = compare("combined", "froc.froc_mean", "boxes.map_at_match_iou")
    assert combined.beyond_noise and combined.difference == pytest.approx(0.75)
    assert combined.parts["froc.froc_mean"] == {"candidate": 1.0, "serving": 0.25}
    # The radiograph default (match at 0.5) is left as it was: no candidate box counts.
    default = pb.case_outcomes(ours, cases, ["nodule"])
    assert default.match_iou == 0.5 and not default.hits_at_match_iou().any()


def _froc_example() -> tuple[list[CasePrediction], list[LabelledCase]]:
    """Three scans: A with two nodules (one found at 0.9, a false positive at 0.7), B with one
    (a false positive at 0.8, found at 0.6), C with none (a false positive at 0.5)."""
    t1, t2, t3 = _nodule(0, 0, 0), _nodule(50, 50, 50), _nodule(20, 20, 20)
    far = _nodule(200, 200, 200)
    cases = [_case("A", [t1, t2], {}), _case("B", [t3], {}), _case("C", [], {})]
    predictions = [
        _scan_prediction("A", [_candidate(t1, 0.9, dx=1), _candidate(far, 0.7)]),
        _scan_prediction("B", [_candidate(far, 0.8), _candidate(t3, 0.6, dz=1)]),
        _scan_prediction("C", [_candidate(far, 0.5)]),
    ]
    return predictions, cases


def test_froc_mean_per_resample_equals_the_value_by_hand():
    predictions, cases = _froc_example()
    outcomes = pb.case_outcomes(predictions, cases, ["nodule"], match_iou=0.1)
    # All three scans: 3 nodules, false positives allowed 3 x rate. Up to rate 1/2 (1.5) none
    # of the first false positive's weight fits: 1 of 3 found; from rate 1 (3) all of them:
    # 2 of 3. Mean over the 7 LUNA16 rates: (3 x 1/3 + 4 x 2/3) / 7 = 11/21.
    assert pb.froc_mean(outcomes, np.ones(3)) == pytest.approx(11 / 21)
    # A resample drawing A once and B twice (C not at all): 4 nodules, 3 scans; B's false
    # positive at 0.8 weighs 2, so up to rate 1/2 only A's hit counts (1/4); from rate 1 the
    # two false positives (weight 3) are allowed and B's hit (weight 2) is in: 3/4.
    # (3 x 1/4 + 4 x 3/4) / 7 = 15/28.
    weights = np.array([1.0, 2.0, 0.0])
    assert pb.froc_mean(outcomes, weights) == pytest.approx(15 / 28)

    # The same as LUNA16's FROC of the box metrics on the resample's scans, B drawn twice.
    scans = {"A": 0, "B": 1, "B again": 1}
    truth = [{**asdict(b), "image_id": s} for s, i in scans.items() for b in cases[i].boxes]
    found = [
        {**asdict(b), "image_id": s} for s, i in scans.items() for b in predictions[i].candidates
    ]
    reference = froc(
        truth,
        found,
        images=list(scans),
        rates=LUNA16_FROC_RATES,
        iou_threshold=0.1,
    )
    assert reference["froc_mean"] == pytest.approx(15 / 28)
    # No nodule drawn (only C): FROC is not defined on that resample.
    assert pb.froc_mean(outcomes, np.array([0.0, 0.0, 3.0])) is None


def test_outcomes_matched_at_other_ious_are_not_compared():
    predictions, cases = _froc_example()
    at_01 = pb.case_outcomes(predictions, cases, ["nodule"], match_iou=0.1)
    at_05 = pb.case_outcomes(predictions, cases, ["nodule"])
    with pytest.raises(ValueError, match="same match IoU"):
        pb.paired_bootstrap(at_01, at_05, metric_name="froc.froc_mean")
    with pytest.raises(ValueError, match="match_iou"):
        pb.case_outcomes(predictions, cases, ["nodule"], match_iou=0.0)
    with pytest.raises(pb.UnsupportedMetric, match="bleu"):
        pb.paired_bootstrap(
            at_01,
            at_01,
            metric_name="combined",
            combined_parts=("froc.froc_mean", "reports.bleu_4"),
        )
